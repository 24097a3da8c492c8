"""Choosing the forward engine of the vote sampler by measurement, fidelity first.

At first use per (model id, device, input size, threads, allocator, CPU flags), every candidate
engine runs the same `CHECK_INPUTS` noisy inputs (σ = `CHECK_SIGMA`) as eager fp32. A candidate
whose labels agree with eager fp32 on fewer than `MIN_AGREEMENT` of them is rejected, with the
reason kept for the page. Among the others the fastest (passes/s on those inputs) wins; its
batch size is then measured on noisy inputs of the real size. The choice, every candidate's
report and the reference labels are cached in `cache/engines/choices.json`, so later processes
only build the chosen engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from rsviz.device import LARGE_INPUT, tcmalloc_loaded
from rsviz.engines.candidates import Engine, EngineUnavailable, OpenVINO, candidates
from rsviz.models import Classifier

# 3: OpenVINO keeps to the torch thread budget; 4: it pins only with every physical core;
# 5: agreement reported over the inputs checked
SELECTION_VERSION = 5
# (2: batch rates averaged over repeated runs; 1: one run per size)
CHECK_INPUTS = 512
CHECK_SIGMA = 0.25
MIN_AGREEMENT = 0.999
CHECK_BATCH = 32
SWEEP = (4, 8, 16, 32, 64)  # images of ImageNet size; small inputs sweep SMALL_SWEEP
SMALL_SWEEP = (16, 64, 256, 1024)
STATUS_CHOSEN, STATUS_OK, STATUS_REJECTED = "chosen", "ok", "rejected"
STATUS_UNAVAILABLE, STATUS_FORCED_ONLY = "unavailable", "forced only"
Report = Callable[[str], None]


@dataclass
class CandidateReport:
    """What the selection learnt about one engine."""

    name: str
    status: str
    rate: float | None = None  # passes/s on the check inputs
    agreement: float | None = None  # fraction of labels equal to eager fp32
    reason: str = ""


@dataclass
class EngineChoice:
    """The engine the vote sampler uses, its measured batch size and rate."""

    name: str
    batch_size: int | None
    rate: float
    forced: bool = False
    cached: bool = False
    seconds: float = 0.0  # time the selection took (0 when read from the cache)
    reports: list[CandidateReport] = field(default_factory=list)
    machine: dict = field(default_factory=dict)

    def summary(self) -> str:
        batch = f" at batch {self.batch_size}" if self.batch_size else ""
        how = "forced" if self.forced else "measured"
        return f"{self.name}: {self.rate:.1f} passes/s{batch} ({how})"

    def rejected(self) -> list[CandidateReport]:
        return [r for r in self.reports if r.status == STATUS_REJECTED]


def cpu_flags() -> str:
    """The CPU's instruction-set flags (empty where /proc/cpuinfo is absent)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return platform.processor()


def machine_key(model: Classifier, input_shape: tuple[int, ...]) -> dict:
    """Everything a measured choice depends on."""
    try:
        import openvino
        ov_version = openvino.__version__
    except ImportError:
        ov_version = None
    device = model.device
    flags = cpu_flags()
    return {"model_id": model.info.model_id, "device": str(device),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "input_shape": list(input_shape), "threads": torch.get_num_threads(),
            "tcmalloc": tcmalloc_loaded(), "avx2": "avx2" in flags.split(),
            "avx512": "avx512f" in flags.split(),
            "cpu_flags_sha1": hashlib.sha1(flags.encode()).hexdigest()[:12],
            "torch": torch.__version__, "openvino": ov_version,
            "selection": SELECTION_VERSION}


def engines_dir() -> Path:
    from rsviz.cache import cache_dir
    return cache_dir() / "engines"


def _digest(key: dict) -> str:
    return hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _load_all(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _store(path: Path, digest: str, record: dict) -> None:
    from rsviz.storage import write_json_atomic
    records = _load_all(path)
    records[digest] = record
    try:
        write_json_atomic(path, records)
    except OSError:  # a read-only or full disk only costs a re-measurement next time
        pass


def check_inputs(input_shape: tuple[int, ...], count: int = CHECK_INPUTS,
                 sigma: float = CHECK_SIGMA, chunk: int = CHECK_BATCH) -> Iterator[torch.Tensor]:
    """The fixed noisy inputs of the fidelity check, in chunks: four smooth random images
    (low-frequency colour fields in [0, 1]) plus Gaussian noise of std σ, seeded."""
    generator = torch.Generator().manual_seed(20190208)
    c = input_shape[0]
    bases = torch.rand((4, c, 6, 6), generator=generator)
    if len(input_shape) == 3:
        bases = torch.nn.functional.interpolate(bases, size=input_shape[1:], mode="bilinear",
                                                align_corners=False)
    else:
        bases = bases.reshape(4, -1)[:, :int(np.prod(input_shape))].reshape(4, *input_shape)
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        index = torch.arange(start, start + size) % 4
        noise = torch.randn((size, *input_shape), generator=generator)
        yield bases[index] + sigma * noise


def _run_check(engine: Engine, input_shape: tuple[int, ...], count: int,
               reference: np.ndarray | None) -> tuple[np.ndarray, float]:
    """(labels, passes/s) of the engine on the check inputs; the first chunk is a warm-up.

    With a reference, stops as soon as too many labels disagree to reach MIN_AGREEMENT.
    """
    allowed = int(np.floor((1 - MIN_AGREEMENT) * count + 1e-9))
    labels, seconds, timed, wrong = [], 0.0, 0, 0
    for i, x in enumerate(check_inputs(input_shape, count)):
        started = time.perf_counter()
        out = engine.logits(x).argmax(1).cpu().numpy()
        if engine.model.device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0 or count <= CHECK_BATCH:
            seconds += time.perf_counter() - started
            timed += len(x)
        if reference is not None:
            done = sum(len(b) for b in labels)
            wrong += int((out != reference[done:done + len(out)]).sum())
            if wrong > allowed:
                labels.append(out)
                break
        labels.append(out)
    return np.concatenate(labels), timed / max(seconds, 1e-9)


def measure_batch(engine: Engine, input_shape: tuple[int, ...], sizes=SWEEP,
                  repeats: int = 2) -> tuple[int, float]:
    """(fastest batch size, its passes/s) on noisy inputs of the real size. Each size runs once
    to warm up, then `repeats` times; its rate is all those images over all that time (not the
    best run: cost estimates divide by it). Stops once a rate falls below half the best."""
    generator = torch.Generator().manual_seed(1)
    rates: dict[int, float] = {}
    for size in sizes:
        x = (torch.rand((size, *input_shape), generator=generator)
             + CHECK_SIGMA * torch.randn((size, *input_shape), generator=generator))
        engine.logits(x)
        started = time.perf_counter()
        for _ in range(repeats):
            engine.logits(x)
        if engine.model.device.type == "cuda":
            torch.cuda.synchronize()
        rates[size] = repeats * size / max(time.perf_counter() - started, 1e-9)
        if rates[size] < 0.5 * max(rates.values()):
            break
    best = max(rates, key=rates.__getitem__)
    return best, rates[best]


def _build(engine: Engine) -> str | None:
    """Prepare the engine; the reason it cannot run, or None."""
    reason = engine.unavailable(engine.model.device)
    if reason:
        return reason
    if isinstance(engine, OpenVINO):
        engine.ir_folder = engines_dir() / "openvino"
    try:
        engine.prepare()
    except EngineUnavailable as error:
        return str(error)
    except Exception as error:  # noqa: BLE001 - any failure of an optional engine = unavailable
        return f"{type(error).__name__}: {error}"
    return None


def choose_engine(model: Classifier, input_shape: tuple[int, ...] | None = None,
                  force: str | None = None, use_cache: bool = True,
                  count: int = CHECK_INPUTS, pool: list[Engine] | None = None,
                  report: Report | None = None) -> tuple[Engine | None, EngineChoice]:
    """Pick (and prepare) the forward engine for the vote sampler of `model`.

    Returns (engine, choice); engine is None when eager fp32 (the sampler's own torch path)
    is chosen. `force` names an engine to use if it passes the fidelity check ("auto" or None:
    the fastest). `pool` replaces the default candidates (tests).
    """
    shape = tuple(input_shape or model.info.input_shape)
    force = None if force in (None, "", "auto") else force
    report = report or (lambda message: None)
    key = machine_key(model, shape)
    digest, path = _digest({**key, "count": count}), engines_dir() / "choices.json"
    pool = pool if pool is not None else candidates(model, shape)
    by_name = {engine.name: engine for engine in pool}
    if force is not None and force not in by_name:
        raise ValueError(f"unknown engine {force!r}; choose from {', '.join(by_name)} or auto")
    cached = _load_all(path).get(digest) if use_cache else None
    failed: dict[str, str] = {}  # engines whose build failed here: name -> reason
    if cached is not None:
        choice = _from_record(cached, force)
        if choice is not None:
            engine = by_name.get(choice.name)
            if choice.name == "eager":
                return None, choice
            if engine is not None:
                reason = _build(engine)
                if reason is None:
                    engine.batch_size, engine.rate = choice.batch_size, choice.rate
                    return engine, choice
                # the cached choice cannot be rebuilt (a broken install, an IR that will not
                # compile): drop it and measure again without it, never run it unbuilt
                failed[choice.name] = f"failed to build: {reason}"
                report(f"engine {choice.name} failed to build ({reason}); measuring again")
    started = time.perf_counter()
    reports = {r["name"]: CandidateReport(**r) for r in (cached or {}).get("reports", [])}
    for name, reason in failed.items():
        reports[name] = _failed_report(reports.get(name), name, reason)
    reference = np.asarray(cached["reference"]) if cached and "reference" in cached else None
    eager, built = by_name["eager"], set()
    if reference is None or "eager" not in reports:
        report("measuring eager fp32 (the reference of the fidelity check)")
        _build(eager)
        reference, rate = _run_check(eager, shape, count, None)
        reports["eager"] = CandidateReport("eager", STATUS_OK, rate, 1.0, "reference")
    for engine in pool:
        name = engine.name
        if name in reports or name == "eager" or (force is not None and name != force):
            continue
        if not engine.in_auto and name != force:
            reports[name] = CandidateReport(name, STATUS_FORCED_ONLY, reason=_forced_only(engine))
            continue
        report(f"trying engine {name}")
        reason = _build(engine)
        if reason:
            reports[name] = CandidateReport(name, STATUS_UNAVAILABLE, reason=reason)
            continue
        built.add(name)
        labels, rate = _run_check(engine, shape, count, reference)
        # over the inputs checked: the check stops at the first disagreement too many, and
        # dividing by all `count` inputs reported bf16's 97 % as 6 % (docs/engines.md)
        agreement = float((labels == reference[:len(labels)]).mean())
        if agreement < MIN_AGREEMENT or len(labels) < count:
            stopped = "" if len(labels) == count else ", stopped there"
            reports[name] = CandidateReport(
                name, STATUS_REJECTED, rate, agreement,
                f"labels agree with eager fp32 on {agreement:.1%} of {len(labels)} noisy inputs "
                f"(σ = {CHECK_SIGMA}{stopped}); {MIN_AGREEMENT:.1%} of {count} needed")
        else:
            reports[name] = CandidateReport(name, STATUS_OK, rate, agreement)
    large = int(np.prod(shape)) >= LARGE_INPUT or model.device.type == "cuda"
    while True:  # the fastest engine that builds and runs; eager fp32 always does
        winner, forced_ok = _winner(reports, by_name, force)
        engine = by_name[winner.name]
        batch, rate = None, winner.rate or 0.0
        if winner.name == "eager":
            break
        built_now = None if winner.name in built else _build(engine)
        reason = f"failed to build: {built_now}" if built_now else None
        if reason is None:
            built.add(winner.name)
            report(f"measuring the batch size of {winner.name}")
            try:
                batch, rate = measure_batch(engine, shape, SWEEP if large else SMALL_SWEEP)
                break
            except Exception as error:  # noqa: BLE001 - an engine that fails = unavailable
                reason = f"failed to run: {type(error).__name__}: {error}"
        report(f"engine {winner.name} {reason}; using the next fastest")
        reports[winner.name] = _failed_report(winner, winner.name, reason)
        failed[winner.name] = reason
    for r in reports.values():
        if r.status == STATUS_CHOSEN:
            r.status = STATUS_OK
    winner.status = STATUS_CHOSEN
    if winner.name != "eager":
        engine.batch_size, engine.rate = batch, rate
    choice = EngineChoice(winner.name, batch, rate, forced=bool(forced_ok), cached=False,
                          seconds=time.perf_counter() - started,
                          reports=list(reports.values()), machine=key)
    if use_cache:
        record = dict(cached or {})
        record.update(reports=[asdict(r) for r in choice.reports], machine=key,
                      reference=reference.tolist())
        stored = {"name": choice.name, "batch_size": batch, "rate": rate}
        if force is None:
            record["choice"] = stored
        elif forced_ok:
            record["forced"] = {**record.get("forced", {}), force: stored}
        else:  # a forced choice that failed to build is dropped, not tried again next time
            record["forced"] = {k: v for k, v in record.get("forced", {}).items() if k != force}
        if record.get("choice", {}).get("name") in failed:  # nor an auto choice that failed
            record.pop("choice")
        _store(path, digest, record)
    return (None if winner.name == "eager" else engine), choice


def _winner(reports: dict[str, CandidateReport], by_name: dict[str, Engine],
            force: str | None) -> tuple[CandidateReport, bool]:
    """(the report of the engine to use, whether it is the forced one): the forced engine when
    it passed, else the fastest usable engine of the automatic choice."""
    ok = [r for r in reports.values() if r.status in (STATUS_OK, STATUS_CHOSEN)
          and r.name in by_name and by_name[r.name].in_auto]
    forced_ok = bool(force is not None and reports.get(force) and reports[force].status in (
        STATUS_OK, STATUS_CHOSEN))
    return (reports[force] if forced_ok else max(ok, key=lambda r: r.rate or 0.0)), forced_ok


def _failed_report(previous: CandidateReport | None, name: str, reason: str) -> CandidateReport:
    """The report of an engine that passed before but failed to build or run here."""
    return CandidateReport(name, STATUS_UNAVAILABLE, previous.rate if previous else None,
                           previous.agreement if previous else None, reason)


def cached_choice(model: Classifier, input_shape: tuple[int, ...] | None = None,
                  count: int = CHECK_INPUTS) -> EngineChoice | None:
    """The choice stored for this model and machine, without measuring (None: not measured)."""
    shape = tuple(input_shape or model.info.input_shape)
    digest = _digest({**machine_key(model, shape), "count": count})
    record = _load_all(engines_dir() / "choices.json").get(digest)
    return _from_record(record, None) if record else None


def _forced_only(engine: Engine) -> str:
    if engine.name == "compile":
        return "torch.compile takes about a minute per batch shape here; force it to try it"
    return "baseline for the benchmarks; force it to use it"


def _from_record(record: dict, force: str | None) -> EngineChoice | None:
    """The cached choice (auto, or the forced engine's), None when never measured."""
    reports = [CandidateReport(**r) for r in record.get("reports", [])]
    stored = record.get("choice") if force is None else record.get("forced", {}).get(force)
    if stored is None:
        return None
    return EngineChoice(stored["name"], stored.get("batch_size"), stored.get("rate", 0.0),
                        forced=force is not None, cached=True, reports=reports,
                        machine=record.get("machine", {}))


def environment_force() -> str | None:
    """The engine forced by $RSVIZ_ENGINE (None or "auto": measured)."""
    value = os.environ.get("RSVIZ_ENGINE", "").strip()
    return value or None
