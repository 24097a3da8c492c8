"""Forward engines: fidelity-first selection, the cached choice, agreement with eager fp32."""

import numpy as np
import pytest
import torch

from rsviz import engines
from rsviz.engines import select
from rsviz.engines.candidates import Engine, EagerNCHW, OpenVINO
from rsviz.smoothing import make_generator, sample_votes

pytestmark = pytest.mark.usefixtures("one_thread")
COUNT = 64  # check inputs in these tests (the real check uses 512)


class Permuted(Engine):
    """A deliberately wrong engine: fast, but its logits are a permutation of the classes."""

    name = "permuted"

    def logits(self, x):
        return super().logits(x).roll(1, dims=1)


class Slightly(Engine):
    """Wrong on exactly one check input: below 99.9 % agreement on 64 inputs."""

    name = "slightly"

    def __init__(self, model, shape):
        super().__init__(model, shape)
        self.calls = 0

    def logits(self, x):
        out = super().logits(x).clone()
        if self.calls == 1:
            out[0] = out[0].roll(1)
        self.calls += 1
        return out


def pool(model, *extra):
    shape = model.info.input_shape
    return [Engine(model, shape), EagerNCHW(model, shape), *(cls(model, shape) for cls in extra)]


def test_wrong_engines_are_rejected_with_a_reason(tiny_model):
    engine, choice = engines.choose_engine(tiny_model, count=COUNT,
                                           pool=pool(tiny_model, Permuted, Slightly))
    reports = {r.name: r for r in choice.reports}
    assert reports["permuted"].status == "rejected"
    assert reports["permuted"].agreement < 0.5
    assert "agree with eager fp32" in reports["permuted"].reason
    assert reports["slightly"].status == "rejected"
    assert reports["slightly"].agreement == pytest.approx(63 / 64)
    assert choice.name not in ("permuted", "slightly")
    assert reports["eager_nchw"].status == "forced only"


class EarlyWrong(Slightly):
    """Wrong on one input of the first chunk: the check stops after that chunk."""

    name = "early_wrong"

    def logits(self, x):
        self.calls += 1  # Slightly errs on its second call: this one on its first
        return super().logits(x)


def test_agreement_is_reported_over_the_inputs_checked(tiny_model):
    """An early stop reports the agreement of the inputs it saw (31/32), not that count over
    every input planned (31/64): the bug that showed bf16's ~97 % as 6 %."""
    _, choice = engines.choose_engine(tiny_model, count=COUNT, pool=pool(tiny_model, EarlyWrong))
    report = next(r for r in choice.reports if r.name == "early_wrong")
    assert report.status == "rejected"
    assert report.agreement == pytest.approx(31 / 32)
    assert "of 32 noisy inputs" in report.reason and "stopped there" in report.reason


def test_forcing_a_rejected_engine_falls_back_and_says_so(tiny_model):
    _, choice = engines.choose_engine(tiny_model, count=COUNT, force="permuted",
                                      pool=pool(tiny_model, Permuted))
    assert choice.name == "eager" and not choice.forced
    assert [r.name for r in choice.rejected()] == ["permuted"]


def test_forced_engine_is_used_and_unknown_names_refused(tiny_model):
    engine, choice = engines.choose_engine(tiny_model, count=COUNT, force="eager_nchw",
                                           pool=pool(tiny_model))
    assert choice.name == "eager_nchw" and choice.forced and isinstance(engine, EagerNCHW)
    assert choice.batch_size in select.SMALL_SWEEP and choice.rate > 0
    with pytest.raises(ValueError, match="unknown engine"):
        engines.choose_engine(tiny_model, count=COUNT, force="nope", pool=pool(tiny_model))


def test_choice_is_cached_on_disk_with_the_cpu_flags(tiny_model):
    _, first = engines.choose_engine(tiny_model, count=COUNT, force="eager_nchw",
                                     pool=pool(tiny_model))
    assert not first.cached
    stored = (select.engines_dir() / "choices.json").read_text()
    assert "cpu_flags_sha1" in stored and tiny_model.info.model_id in stored

    class Exploding(Engine):
        name = "exploding"

        def logits(self, x):  # a cache hit must not measure anything
            raise AssertionError("measured again")

    _, second = engines.choose_engine(tiny_model, count=COUNT, force="eager_nchw",
                                      pool=pool(tiny_model) + [Exploding(tiny_model, (3, 32, 32))])
    assert second.cached and second.name == "eager_nchw"
    assert second.batch_size == first.batch_size and second.rate == first.rate


def test_check_inputs_are_fixed_and_noisy():
    a = torch.cat(list(select.check_inputs((3, 8, 8), 40, 0.25, chunk=16)))
    b = torch.cat(list(select.check_inputs((3, 8, 8), 40, 0.25, chunk=16)))
    assert a.shape == (40, 3, 8, 8) and torch.equal(a, b)
    assert 0.2 < float((a - a.mean(0)).std()) < 0.4


def test_attached_engine_runs_the_vote_sampler_only(tiny_model):
    class Counting(Engine):
        name = "counting"
        calls = 0

        def logits(self, x):
            Counting.calls += 1
            return super().logits(x)

    points = torch.rand(2, *tiny_model.info.input_shape, generator=torch.Generator().manual_seed(0))
    plain = sample_votes(tiny_model, points, 0.25, 50, make_generator(3), batch_size=16)
    engine = Counting(tiny_model, tiny_model.info.input_shape)
    engine.prepare()
    engine.batch_size = 16
    engines.attach(tiny_model, engine)
    try:
        routed = sample_votes(tiny_model, points, 0.25, 50, make_generator(3))
        assert Counting.calls == 7  # 100 passes at the engine's batch of 16
        assert np.array_equal(plain.labels, routed.labels)
        with torch.enable_grad():  # gradients keep the torch module
            x = points[:1].clone().requires_grad_(True)
            tiny_model(x).sum().backward()
        assert Counting.calls == 7 and x.grad is not None
    finally:
        engines.attach(tiny_model, None)


def test_physical_cores_counts_hyperthread_siblings_once(tmp_path, monkeypatch):
    """4 logical CPUs on 2 cores with 2 threads each -> 2; a CPU outside the affinity mask is
    not counted; a sysfs that does not say falls back to the logical count."""
    from rsviz.device import physical_cores

    for cpu, siblings in enumerate(["0,2", "1,3", "0,2", "1,3", "4"]):
        folder = tmp_path / f"cpu{cpu}" / "topology"
        folder.mkdir(parents=True)
        (folder / "core_cpus_list").write_text(siblings + "\n")
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert physical_cores(str(tmp_path)) == 2
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    assert physical_cores(str(tmp_path)) == 3
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 7})
    assert physical_cores(str(tmp_path)) == 2  # cpu7 has no topology file: logical count


@pytest.mark.skipif(OpenVINO.unavailable(torch.device("cpu")) is not None,
                    reason="openvino not installed")
def test_openvino_agrees_with_eager_on_the_tiny_model(tiny_model):
    shape = tiny_model.info.input_shape
    engine = OpenVINO(tiny_model, shape)
    assert select._build(engine) is None
    x = torch.cat(list(select.check_inputs(shape, 128)))
    with torch.inference_mode():
        reference = tiny_model(x)
    out = engine.logits(x)
    assert out.shape == reference.shape and out.dtype == torch.float32
    assert float((out - reference).abs().max()) < 1e-4
    assert torch.equal(out.argmax(1), reference.argmax(1))


def test_openvino_keeps_to_the_thread_budget_and_pins_only_when_it_owns_the_machine(
        monkeypatch):
    """A one-thread process (a Ray worker, a background job) must not start a stream per core
    pinned to the same cores as its neighbours: threads follow torch, pinning needs every core."""
    from rsviz.engines.candidates import openvino_config

    monkeypatch.setattr("rsviz.engines.candidates.physical_cores", lambda: 4)
    one = openvino_config(1)
    assert one["INFERENCE_NUM_THREADS"] == 1 and one["ENABLE_CPU_PINNING"] is False
    every = openvino_config(4)
    assert every["INFERENCE_NUM_THREADS"] == 4 and every["ENABLE_CPU_PINNING"] is True
    assert one["INFERENCE_PRECISION_HINT"] == "f32"  # labels must match eager fp32
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert openvino_config()["INFERENCE_NUM_THREADS"] == 2
    finally:
        torch.set_num_threads(saved)


@pytest.mark.skipif(OpenVINO.unavailable(torch.device("cpu")) is not None,
                    reason="openvino not installed")
def test_openvino_engine_in_a_one_thread_process_uses_one_thread(tiny_model):
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        engine = OpenVINO(tiny_model, tiny_model.info.input_shape)
        assert select._build(engine) is None
        assert int(engine.compiled.get_property("INFERENCE_NUM_THREADS")) == 1
    finally:
        torch.set_num_threads(saved)


def test_tcmalloc_restart_plan(monkeypatch):
    from rsviz import allocator
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: "/lib/libtcmalloc_minimal.so.4")
    monkeypatch.setattr(allocator, "tcmalloc_in_process", lambda: False)
    monkeypatch.setattr(allocator, "openvino_installed", lambda: False)
    command, env = allocator.reexec_plan(["/x/rsviz/__main__.py", "smooth", "-n", "5"],
                                         {"LD_PRELOAD": "/lib/other.so"})
    assert command[1:] == ["-m", "rsviz", "smooth", "-n", "5"]
    assert env["LD_PRELOAD"] == "/lib/libtcmalloc_minimal.so.4 /lib/other.so"
    assert allocator.reexec_plan(["rsviz"], env) is None  # restarted once, never twice
    assert allocator.reexec_plan(["rsviz"], {"RSVIZ_TCMALLOC": "0"}) is None
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: None)
    assert allocator.reexec_plan(["rsviz"], {}) is None
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: "/lib/libtcmalloc_minimal.so.4")
    monkeypatch.setattr(allocator, "openvino_installed", lambda: True)  # aborts with tcmalloc
    assert allocator.reexec_plan(["rsviz"], {}) is None


def test_allocator_command_is_the_shells_rule(monkeypatch, capsys):
    """`make run` and .ci/run read the rule from `python -m rsviz.allocator`."""
    from rsviz import allocator
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: "/lib/libtcmalloc_minimal.so.4")
    monkeypatch.setattr(allocator, "openvino_installed", lambda: False)
    monkeypatch.delenv("RSVIZ_TCMALLOC", raising=False)
    assert allocator.main(["--preload"]) == 0
    assert capsys.readouterr().out == "/lib/libtcmalloc_minimal.so.4\n"
    monkeypatch.setattr(allocator, "openvino_installed", lambda: True)
    assert allocator.main(["--preload"]) == 0 and capsys.readouterr().out == ""
    assert allocator.main(["--path"]) == 0  # installed, though not preloaded
    assert capsys.readouterr().out == "/lib/libtcmalloc_minimal.so.4\n"
    monkeypatch.setattr(allocator, "find_tcmalloc", lambda: None)
    assert allocator.main(["--path"]) == 1 and capsys.readouterr().out == ""


def test_use_best_engine_keeps_eager_for_small_inputs_and_sizes_estimates(tiny_model):
    from rsviz.smoothing import estimate_rate
    assert engines.use_best_engine(tiny_model) is None and engines.engine_of(tiny_model) is None
    choice = engines.use_best_engine(tiny_model, force="eager_nchw", count=COUNT)
    try:
        assert choice.name == "eager_nchw" and engines.engine_of(tiny_model) is not None
        # cost estimates use the sampler's own rate through the engine (a sample_votes probe,
        # cached per engine), not the engine's selection rate, which leaves out noise and votes
        from rsviz.smoothing.batching import BatchTuner
        from rsviz.smoothing.votes import _PROBES
        rate = estimate_rate(tiny_model)
        key = BatchTuner(tiny_model, "fp32", tiny_model.info.input_shape).key
        assert key[-1] == "eager_nchw" and _PROBES[key] == rate > 0
        assert select.cached_choice(tiny_model, count=COUNT) is None  # forced, not measured auto
    finally:
        engines.attach(tiny_model, None)


def test_forced_choice_does_not_replace_the_measured_one(tiny_model):
    engines.choose_engine(tiny_model, count=COUNT, force="eager_nchw", pool=pool(tiny_model))
    assert select.cached_choice(tiny_model, count=COUNT) is None  # auto never measured yet
    _, auto = engines.choose_engine(tiny_model, count=COUNT, pool=pool(tiny_model))
    assert not auto.forced and auto.name == "eager"  # eager_nchw is forced-only
    assert select.cached_choice(tiny_model, count=COUNT).name == "eager"


def test_engines_build_while_another_is_attached(tiny_model):
    class Uncopyable:
        def __deepcopy__(self, memo):
            raise TypeError("cannot pickle 'CompiledModel' object")

    engines.attach(tiny_model, Uncopyable())
    try:
        engine = EagerNCHW(tiny_model, tiny_model.info.input_shape)
        assert select._build(engine) is None
        assert engines.engine_of(tiny_model) is not None  # still attached afterwards
    finally:
        engines.attach(tiny_model, None)


def _cli(*args, **env):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    return subprocess.run([sys.executable, "-m", "rsviz", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, **env})


def test_cli_engine_is_honoured_and_bad_names_are_one_line(tmp_path):
    tiny = ["sample:coffee", "--model", "tiny_cnn", "--device", "cpu", "--json"]
    cache = {"RSVIZ_CACHE_DIR": str(tmp_path)}
    proc = _cli("smooth", *tiny, "--samples", "40", "--n0", "10", "--engine", "eager_nchw",
                **cache)
    assert proc.returncode == 0, proc.stderr
    assert "engine: eager_nchw:" in proc.stderr and "(forced)" in proc.stderr
    assert '"eager_nchw"' in (tmp_path / "engines" / "choices.json").read_text()
    for bad in ("warp", "eager_fp16"):  # unknown name; an engine this CPU does not offer
        proc = _cli("predict", *tiny, "--engine", bad, **cache)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode != 0 and len(lines) == 1 and bad in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_cli_restarts_with_tcmalloc_when_installed_and_openvino_is_not():
    from rsviz.allocator import find_tcmalloc, openvino_installed
    args = ("predict", "sample:coffee", "--model", "tiny_cnn", "--device", "cpu", "--verbose")
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    expected = "tcmalloc" if find_tcmalloc() and not openvino_installed() else \
        "the C library's malloc"
    assert f"allocator: {expected}" in proc.stderr
    proc = _cli(*args, RSVIZ_TCMALLOC="0", LD_PRELOAD="")  # turned off: runs on, with glibc's malloc
    assert proc.returncode == 0 and "allocator: the C library's malloc" in proc.stderr


def test_openvino_is_unavailable_with_tcmalloc(monkeypatch):
    """OpenVINO aborts the process when tcmalloc is preloaded: it must never be tried then."""
    import openvino  # noqa: F401 - pinned in requirements.txt: missing, this fails

    import rsviz.device
    monkeypatch.setattr(rsviz.device, "tcmalloc_loaded", lambda: True)
    assert "tcmalloc" in OpenVINO.unavailable(torch.device("cpu"))
    monkeypatch.setattr(rsviz.device, "tcmalloc_loaded", lambda: False)
    assert OpenVINO.unavailable(torch.device("cpu")) is None


class SlowEager(Engine):
    """Eager fp32, slowed down: any working candidate measures faster."""

    def logits(self, x):
        import time
        time.sleep(0.02)
        return super().logits(x)


class Flaky(Engine):
    """Builds until `broken` is set (a broken install, an IR that no longer compiles); its
    logits refuse to run unbuilt, as OpenVINO's did ('no attribute requests')."""

    name = "flaky"
    broken = False

    def __init__(self, model, shape):
        super().__init__(model, shape)
        self.ready = False

    def prepare(self):
        if Flaky.broken:
            raise RuntimeError("IR does not compile")
        super().prepare()
        self.ready = True

    def logits(self, x):
        if not self.ready:
            raise AttributeError("'Flaky' object has no attribute 'requests'")
        return super().logits(x)


@pytest.fixture
def flaky(monkeypatch):
    monkeypatch.setattr(Flaky, "broken", False)
    return lambda model: [SlowEager(model, model.info.input_shape),
                          Flaky(model, model.info.input_shape)]


def test_cached_choice_that_fails_to_build_is_dropped_and_measured_again(tiny_model, flaky):
    _, first = engines.choose_engine(tiny_model, count=COUNT, pool=flaky(tiny_model))
    assert first.name == "flaky" and not first.cached  # measured faster than the slow eager
    Flaky.broken = True
    said = []
    engine, second = engines.choose_engine(tiny_model, count=COUNT, pool=flaky(tiny_model),
                                           report=said.append)
    assert engine is None and second.name == "eager" and not second.cached
    [failed] = [r for r in second.reports if r.name == "flaky"]
    assert failed.status == "unavailable"
    assert failed.reason == "failed to build: RuntimeError: IR does not compile"
    assert any("flaky failed to build" in m and "measuring again" in m for m in said), said
    # the dropped choice is replaced on disk: the next process reads eager, builds nothing
    assert select.cached_choice(tiny_model, count=COUNT).name == "eager"
    engine, third = engines.choose_engine(tiny_model, count=COUNT, pool=flaky(tiny_model))
    assert engine is None and third.cached and third.name == "eager"


def test_winner_that_fails_to_rebuild_falls_back_to_the_next(tiny_model, flaky):
    # a forced run measures flaky (and caches its report as usable) but no auto choice
    _, forced = engines.choose_engine(tiny_model, count=COUNT, force="flaky",
                                      pool=flaky(tiny_model))
    assert forced.name == "flaky" and forced.forced
    assert select.cached_choice(tiny_model, count=COUNT) is None
    Flaky.broken = True
    said = []
    # auto: the cached reports make flaky the winner, rebuilt without measuring; it fails
    engine, auto = engines.choose_engine(tiny_model, count=COUNT, pool=flaky(tiny_model),
                                         report=said.append)
    assert engine is None and auto.name == "eager"
    reports = {r.name: r for r in auto.reports}
    assert reports["flaky"].status == "unavailable" and "IR does not compile" in \
        reports["flaky"].reason
    assert reports["eager"].status == "chosen"
    assert any("flaky failed to build" in m and "next fastest" in m for m in said), said
    # forced again: the cached forced choice cannot be built either; eager, with the reason
    engine, again = engines.choose_engine(tiny_model, count=COUNT, force="flaky",
                                          pool=flaky(tiny_model))
    assert engine is None and again.name == "eager" and not again.forced
    assert "IR does not compile" in next(r.reason for r in again.reports if r.name == "flaky")
    import json
    [record] = json.loads((select.engines_dir() / "choices.json").read_text()).values()
    assert "flaky" not in record["forced"]  # dropped, not tried again next time
