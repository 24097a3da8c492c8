"""The benchmarks' one harness: loading, interleaved timing rounds, a report with ratios, and a
JSON carrying the machine's fingerprint.

Every script in bench/ imports it (`import harness`: a script's own folder is on sys.path):

    args = harness.parser(__doc__).parse_args()        # --json PATH, --threads T
    model = harness.load("efficientnet_lite0", "auto", engine=True)
    x = harness.image(model, "coffee")
    timings = harness.interleaved({"naive": naive, "rsviz": ours}, rounds=4, work=512)
    rows = harness.compare(timings, baseline="naive")
    harness.print_report(rows, unit="passes/s")
    harness.save(args.json, "sampling", rows, model)

A candidate and its baseline run in the same process, in interleaved rounds (ABBA order), so
a change of load on a shared machine hits both alike: read the ratios, not the rates. Nothing
here is asserted on timings (tests/test_bench_harness.py checks the arithmetic only).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

AMX_FLAGS = ("amx_bf16", "amx_tile", "amx_int8")


# --------------------------------------------------------------------------- command line


def parser(doc: str | None, threads: int | None = None, raw: bool = False,
           json_option: bool = True) -> argparse.ArgumentParser:
    """The script's ArgumentParser (description: the docstring's first line, or all of it with
    `raw`) with the options every bench shares: --json (write the results and the machine's
    fingerprint there; left out with `json_option=False` by a script whose own results file
    carries the fingerprint) and --threads (torch threads; default `threads`, None: torch's)."""
    text = doc or ""
    out = argparse.ArgumentParser(
        description=text if raw else text.strip().splitlines()[0] if text.strip() else None,
        formatter_class=argparse.RawDescriptionHelpFormatter if raw else argparse.HelpFormatter)
    if json_option:
        out.add_argument("--json", default=None, metavar="PATH",
                         help="also write the results and this machine's fingerprint here")
    out.add_argument("--threads", type=int, default=threads,
                     help="torch threads" + (f" (default {threads})" if threads else ""))
    return out


def start(args: argparse.Namespace) -> None:
    """Apply the shared options before anything is measured (--threads)."""
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)


# --------------------------------------------------------------------------- loading


def load(name: str, device: str = "cpu", engine: bool = False):
    """The registry model `name` on `device` ("auto": CUDA when there is one), in eval mode;
    with `engine`, the vote sampler's engine attached as the app does (the cached choice, else
    measured once per model and machine)."""
    from rsviz import engines
    from rsviz.device import resolve_device
    from rsviz.models import load_model

    model = load_model(name, resolve_device(device))
    if engine:
        engines.use_best_engine(model)
    return model


def image(model, spec: str):
    """A sample photo's name or an image file's path, preprocessed for `model` ([3,H,W] in
    [0,1], on the model's device): the app's own input path."""
    from rsviz.views.inputs import load_image

    return load_image(spec, model)[0].to(model.device)


def sample_folder() -> Path:
    """The shared labelled ImageNet sample beside the checkout (the default image folder)."""
    from rsviz.imagesets import shared_folder

    return shared_folder("imagenet-sample")


def labelled(folder: str | Path) -> list[dict]:
    """The rows of `folder`/labels.csv (filename, class_index, ...), in file order; exits with
    a one-line message when there is none."""
    labels = Path(folder) / "labels.csv"
    if not labels.exists():
        sys.exit(f"{labels} not found: give a folder with labels.csv "
                 "(filename,class_index,...), e.g. the shared ImageNet sample.")
    with open(labels, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def sync(device) -> None:
    """Wait for the device's queued work (CUDA), so that a timer reads finished work."""
    import torch

    if getattr(device, "type", str(device)).startswith("cuda"):
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- rounds


@dataclass
class Timing:
    """One configuration's timed calls: `work` units per call (passes, images, queries), the
    seconds and the returned value of each round."""

    label: str
    work: float
    seconds: list[float] = field(default_factory=list)
    results: list[Any] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Work per second over all rounds (total work / total seconds)."""
        return self.work * len(self.seconds) / max(sum(self.seconds), 1e-12)

    def round_rates(self) -> list[float]:
        """Work per second of each round."""
        return [self.work / max(s, 1e-12) for s in self.seconds]


def interleaved(calls: dict[str, Callable[[int], Any]], rounds: int,
                work: float | dict[str, float] = 1.0,
                wait: Callable[[], None] | None = None) -> dict[str, Timing]:
    """Time each call once per round, the order reversed every other round (ABBA), so that a
    drift of the machine's load hits every configuration alike. A call receives the round
    index (seed its noise with it, so that every configuration sees the same draws); `work`
    is the units one call does (one number, or per label); `wait` runs before and after each
    call (CUDA: `lambda: sync(device)`). Returns the timings by label, in the order given."""
    timings = {label: Timing(label, work[label] if isinstance(work, dict) else float(work))
               for label in calls}
    items = list(calls.items())
    for r in range(max(1, rounds)):
        for label, call in (items if r % 2 == 0 else items[::-1]):
            if wait:
                wait()
            started = time.perf_counter()
            result = call(r)
            if wait:
                wait()
            timings[label].seconds.append(time.perf_counter() - started)
            timings[label].results.append(result)
    return timings


def compare(timings: dict[str, Timing], baseline: str,
            flops: float | None = None) -> list[dict]:
    """One row per configuration: its rate over all rounds, the ratio of that rate to the
    baseline's, the median of the per-round ratios (each round's pair ran back to back), and
    GFLOP/s when `flops` (per unit of work) is given."""
    base = timings[baseline]
    rows = []
    for label, timing in timings.items():
        per_round = [a / b for a, b in zip(timing.round_rates(), base.round_rates())]
        row = {"label": label, "baseline": baseline, "rounds": len(timing.seconds),
               "work": timing.work, "seconds": timing.seconds, "rate": timing.rate,
               "ratio": timing.rate / base.rate, "round_ratios": per_round,
               "median_round_ratio": statistics.median(per_round)}
        if flops:
            row["gflops"] = timing.rate * flops / 1e9
        rows.append(row)
    return rows


def print_report(rows: list[dict], unit: str = "per s") -> None:
    """The rows of `compare` as a table: rate, × the baseline overall and per round."""
    flops = any("gflops" in row for row in rows)
    base = "× " + rows[0]["baseline"][:20]
    head = f"{'configuration':<52} {unit:>12} {base:>24} {'median per round':>17}"
    print(head + (f" {'GFLOP/s':>9}" if flops else ""))
    for row in rows:
        line = (f"{row['label'][:52]:<52} {row['rate']:12.1f} {row['ratio']:24.2f} "
                f"{row['median_round_ratio']:17.2f}")
        print(line + (f" {row['gflops']:9.1f}" if flops else ""))


def ratio(rows: list[dict], label: str, other: str) -> float:
    """Rate of `label` over the rate of `other` (rows of `compare`)."""
    rate = {row["label"]: row["rate"] for row in rows}
    return rate[label] / rate[other]


# --------------------------------------------------------------------------- JSON


def fingerprint(model=None, precision: str | None = None) -> dict:
    """The machine and software a result was measured on: CPU and its flags (AVX2,
    AVX512-BF16, AMX), GPU, torch threads, torch and rsviz versions, date, and for a model the
    vote sampler's forward (engine, precision, batch) as `rsviz.engines.describe_forward` says."""
    import torch

    import rsviz
    from rsviz import engines
    from rsviz.engines.select import cpu_flags

    flags = set(cpu_flags().split())
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    out = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "cpu": platform.processor() or platform.machine(), "avx2": "avx2" in flags,
           "avx512f": "avx512f" in flags, "avx512_bf16": "avx512_bf16" in flags,
           "amx": any(f in flags for f in AMX_FLAGS), "gpu": gpu,
           "threads": torch.get_num_threads(), "torch": torch.__version__,
           "rsviz": rsviz.__version__, "python": platform.python_version(),
           "forward": None, "precision": precision}
    if model is not None:
        out["model"] = model.info.model_id
        out["device"] = str(model.device)
        # describing the forward settles the engine decision; never start a measurement for it
        if engines.needs_measurement(model):
            out["forward"] = "eager fp32 (no engine chosen)"
        else:
            out["forward"] = engines.describe_forward(model)
            out["precision"] = precision or engines.precision_of(model)
    return out


def _plain(value: Any) -> Any:
    """JSON for numpy scalars and arrays, paths and other objects (their str)."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def save(path: str | Path | None, bench: str, results: Any, model=None,
         precision: str | None = None, /, **settings: Any) -> dict | None:
    """Write {"bench", "machine" (the fingerprint of `model` at `precision`), "settings" (the
    keywords, any names), "results"} to `path` as JSON (nothing when `path` is None); returns
    what was written."""
    if not path:
        return None
    payload = {"bench": bench, "machine": fingerprint(model, precision), "settings": settings,
               "results": results}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=1, default=_plain) + "\n", encoding="utf-8")
    print(f"results written to {path}", file=sys.stderr)
    return payload
