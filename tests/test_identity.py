"""The forward identity: settled once, in every key, record and study task; every path forced.

No outcome here depends on the CPU: each test attaches the engine or asks for the precision it
is about (bf16 autocast runs, slowly, on CPUs without native bf16 too).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rsviz import engines
from rsviz.engines import Engine, attach, forward_of
from rsviz.engines.candidates import EagerLowPrecision, EagerNCHW
from rsviz.errors import ConfigError, RsvizError
from rsviz.identity import Forward, describe_tag
from rsviz.smoothing import make_generator, sample_votes
from rsviz.views.base import inputs
from rsviz.views.image import VotesRequest

TORCH = torch.__version__


def votes(model, x, **changes):
    params = dict(sigma=0.25, n_samples=40, n0=8, seed=0, n=10, alpha=0.001)
    return VotesRequest(**inputs(model, x), **{**params, **changes})


@pytest.fixture
def x(tiny_model):
    return torch.rand(tiny_model.info.input_shape, generator=torch.Generator().manual_seed(0))


def bf16_engine(model):
    """The eager bf16 engine, built even where the CPU has no native bf16 (slow, exact)."""
    engine = EagerLowPrecision(model, model.info.input_shape, "bf16")
    engine.prepare()
    return engine


def test_tag_round_trip_and_words():
    forward = Forward("cpu", "fp32", "openvino", "2026.4.1", "2.14.1")
    assert Forward.parse(forward.tag()) == forward
    assert forward.describe(batch=4) == "OpenVINO fp32, batch 4, CPU"
    assert forward.with_precision("auto") == forward
    assert forward.with_precision("bf16") == Forward("cpu", "bf16", "eager", "", "2.14.1")
    with pytest.raises(ConfigError):
        Forward("cpu", "auto")
    assert "not recorded" in describe_tag("")


def test_auto_is_settled_on_the_attached_engine(tiny_model, x):
    attach(tiny_model, None)
    fp32 = votes(tiny_model, x)
    assert fp32.precision == "fp32" and fp32.forward == f"cpu/eager/fp32/torch-{TORCH}"
    attach(tiny_model, bf16_engine(tiny_model))
    bf16 = votes(tiny_model, x)
    assert bf16.precision == "bf16" and bf16.forward == f"cpu/eager/bf16/torch-{TORCH}"
    assert "auto" not in json.dumps(bf16.key())
    # an explicit precision is its own identity, whatever engine is attached
    assert votes(tiny_model, x, precision="fp32").forward == fp32.forward


def test_two_engines_or_precisions_never_share_a_cache_key(tiny_model, x):
    attach(tiny_model, None)
    eager = votes(tiny_model, x).key()
    nchw = EagerNCHW(tiny_model, tiny_model.info.input_shape)
    nchw.prepare()
    attach(tiny_model, nchw)
    other_engine = votes(tiny_model, x).key()
    attach(tiny_model, bf16_engine(tiny_model))
    other_precision = votes(tiny_model, x).key()
    assert len({eager, other_engine, other_precision}) == 3


def test_a_request_refuses_to_run_on_another_identity(tiny_model, x):
    nchw = EagerNCHW(tiny_model, tiny_model.info.input_shape)
    nchw.prepare()
    attach(tiny_model, nchw)
    request = votes(tiny_model, x)
    attach(tiny_model, None)
    with pytest.raises(ConfigError, match="now runs eager torch fp32"):
        request.check_inputs(tiny_model, x)


def test_vote_record_says_what_ran(tiny_model, x):
    """The bf16 path runs on any CPU; the record names it (the bug: OpenVINO's fp32 batch was
    reported as bf16)."""
    attach(tiny_model, bf16_engine(tiny_model))
    record = sample_votes(tiny_model, x[None], 0.25, 32, make_generator(0))
    assert record.precision == "bf16" and record.forward.startswith("cpu/eager/bf16/")
    attach(tiny_model, None)
    plain = sample_votes(tiny_model, x[None], 0.25, 32, make_generator(0))
    assert plain.precision == "fp32" and plain.forward.startswith("cpu/eager/fp32/")
    # bf16 labels are votes of the same classifier: mostly equal on this tiny CNN
    assert np.mean(record.labels == plain.labels) > 0.5


def test_forcing_openvino_gives_its_identity(tiny_model, x):
    import openvino  # noqa: F401 - pinned in requirements.txt: missing, this fails
    choice = engines.use_best_engine(tiny_model, force="openvino", count=64)
    assert choice is not None and choice.name == "openvino"
    forward = forward_of(tiny_model)
    assert forward.engine == "openvino" and forward.engine_version and forward.precision == "fp32"
    assert engines.describe_forward(tiny_model).startswith("OpenVINO fp32, batch ")
    assert votes(tiny_model, x).forward == forward.tag()


def test_match_forward_forces_the_task_engine_or_says_why(tiny_model):
    attach(tiny_model, None)
    bf16 = f"cpu/eager/bf16/torch-{TORCH}"
    if EagerLowPrecision.unavailable_for(tiny_model.device, "bf16") is None:
        assert engines.match_forward(tiny_model, bf16) == bf16
        assert forward_of(tiny_model).tag() == bf16
    else:  # no native bf16 here: a bf16 task cannot run, and says so
        with pytest.raises(RsvizError, match="not the task's"):
            engines.match_forward(tiny_model, bf16)
    attach(tiny_model, None)
    with pytest.raises(RsvizError, match="not the task's"):
        engines.match_forward(tiny_model, "cuda/eager/fp32/torch-0.0")


from tests.test_study import image_folder  # noqa: E402,F401 - the fixture


def test_study_task_ids_and_results_carry_the_identity(tiny_model, image_folder, tmp_path):
    from rsviz.study import run_study
    from tests.test_study import StandIn as Scripted, tiny_plan

    attach(tiny_model, None)
    plan = tiny_plan(image_folder, attacks=("a",), certify=None)
    study = run_study(plan, tmp_path / "fp32", model=tiny_model, attack_fn=Scripted())
    assert {r["forward"] for r in study.results} == {f"cpu/eager/fp32/torch-{TORCH}"}
    assert study.metadata()["forwards"] == [f"cpu/eager/fp32/torch-{TORCH}"]
    attach(tiny_model, bf16_engine(tiny_model))
    other = run_study(plan, tmp_path / "bf16", model=tiny_model, attack_fn=Scripted())
    assert not {r["task_id"] for r in study.results} & {r["task_id"] for r in other.results}


def test_opening_two_identities_keeps_them_apart(tiny_model, image_folder, tmp_path):
    from rsviz.study import open_many, run_study
    from tests.test_study import StandIn as Scripted, tiny_plan

    plan = tiny_plan(image_folder, attacks=("a",), certify=None)
    attach(tiny_model, None)
    run_study(plan, tmp_path / "cpu", model=tiny_model, attack_fn=Scripted())
    attach(tiny_model, bf16_engine(tiny_model))
    run_study(plan, tmp_path / "bf16", model=tiny_model, attack_fn=Scripted())
    both = open_many([tmp_path / "cpu", tmp_path / "bf16"])
    one = open_many([tmp_path / "cpu"])
    assert len(both.results) == 2 * len(one.results)
    models = {row["model"] for row in both.summary()}
    assert models == {f"{tiny_model.info.model_id} [eager torch fp32, CPU]",
                      f"{tiny_model.info.model_id} [eager torch bf16, CPU]"}
    assert {row["model"] for row in one.summary()} == {tiny_model.info.model_id}


def test_legacy_results_open_labelled_and_conflicts_are_refused(tiny_model, image_folder,
                                                                tmp_path):
    """Results stored before identities: read as they were ("legacy"); the same legacy task in
    two folders with different numbers is refused, never silently overwritten."""
    from rsviz.study import open_many, open_results, run_study
    from tests.test_study import StandIn as Scripted, tiny_plan

    attach(tiny_model, None)
    plan = tiny_plan(image_folder, attacks=("a",), certify=None)
    folders = []
    for name, shift in (("old_a", 0.0), ("old_b", 1.0)):
        run_study(plan, tmp_path / name, model=tiny_model, attack_fn=Scripted())
        for path in (tmp_path / name).rglob("*.json"):
            data = json.loads(path.read_text())
            if isinstance(data, dict) and "task_id" in data:  # as an old rsviz wrote it
                data.pop("forward")
                data["task_id"] = "legacy-" + data["image_hash"]
                if data.get("l2") is not None:
                    data["l2"] += shift
                path.write_text(json.dumps(data))
        folders.append(tmp_path / name)
    old = open_results(folders[0])
    assert old.results and all(r.get("forward") is None for r in old.results)
    assert {row["forward"] for row in old.summary()} == {"legacy"}
    with pytest.raises(RsvizError, match="open these folders separately"):
        open_many(folders)


def test_attacks_on_f_are_keyed_by_what_runs_them(tiny_model, x):
    """f's queries run fp32 through the engine when it runs fp32: an attack on f and the g run
    of a comparison both say the engine's identity and both run; under a bf16 engine the attack
    on f says eager fp32."""
    from rsviz.attacks import OracleConfig
    from rsviz.views.attack import AttackRequest, CompareRequest

    nchw = EagerNCHW(tiny_model, tiny_model.info.input_shape)
    nchw.prepare()
    attach(tiny_model, nchw)
    on_f = AttackRequest(**inputs(tiny_model, x), attack="hsja", config=OracleConfig(budget=5))
    assert on_f.forward.startswith("cpu/eager_nchw/fp32/")
    on_f.check_inputs(tiny_model, x)
    runs = CompareRequest(**inputs(tiny_model, x), attack="hsja",
                          config=OracleConfig(sigma=0.25, n=3, budget=5)).runs()
    assert runs["f"].forward == on_f.forward
    assert runs["g"].forward.startswith("cpu/eager_nchw/fp32/")
    runs["g"].check_inputs(tiny_model, x)
    attach(tiny_model, bf16_engine(tiny_model))
    try:
        on_f = AttackRequest(**inputs(tiny_model, x), attack="hsja", config=OracleConfig(budget=5))
        assert on_f.forward == f"cpu/eager/fp32/torch-{TORCH}"
        on_f.check_inputs(tiny_model, x)
    finally:
        attach(tiny_model, None)


def test_a_job_refuses_an_engine_switched_after_its_request(tiny_model, x):
    """The app's sessions share one model: a request built before another session switched the
    engine must not be computed and stored under its old key."""
    from rsviz.views.base import timed_run

    attach(tiny_model, None)
    request = votes(tiny_model, x)
    nchw = EagerNCHW(tiny_model, tiny_model.info.input_shape)
    nchw.prepare()
    attach(tiny_model, nchw)
    with pytest.raises(ConfigError, match="Build the request again"):
        timed_run(request, tiny_model, x)


def test_queries_of_f_go_through_an_fp32_engine(tiny_model, x):
    """The oracle of an attack on f asks the attached fp32 engine (what its key says), and the
    labels equal eager fp32's on these points."""
    from rsviz.attacks import OracleConfig
    from rsviz.attacks.oracle import Oracle
    from rsviz.smoothing import forward_labels

    nchw = EagerNCHW(tiny_model, tiny_model.info.input_shape)
    nchw.prepare()
    calls = []
    logits = nchw.logits
    nchw.logits = lambda batch: calls.append(len(batch)) or logits(batch)
    attach(tiny_model, nchw)
    try:
        points = torch.rand((6, *tiny_model.info.input_shape), generator=torch.Generator().manual_seed(1))
        y = int(forward_labels(tiny_model, x[None])[0])
        oracle = Oracle(tiny_model, x, y, OracleConfig(budget=10))
        decided = oracle.is_adversarial(points).numpy()
        assert sum(calls) == 6 and oracle.forward_passes == 6
        assert (decided == (forward_labels(tiny_model, points, precision="fp32") != y)).all()
    finally:
        attach(tiny_model, None)
