"""Golden cases: every CLI view on the tiny CNN (and the analytic toys), fixed seeds, small budgets.

Each case is the argument list of `python -m rsviz ... --json`. The recorded JSON (NAME.json
beside this file) drops only fields that depend on the host or the clock (VOLATILE) and
paths of written files. Floats compare with a relative tolerance of RTOL and an absolute one of
ATOL: tight enough that any change of an algorithm shows, loose enough for float32 rounding
that differs between CPU kernels. Re-record one case after an intended change with
`python -m tests.golden.record NAME` (and say why in the commit message).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RTOL = 1e-5
ATOL = 1e-7
# fields at the end of a white-box gradient search (fp32 iterations): AVX2 and AVX-512
# kernels round its sums differently, measured 1.0–1.2e-5 relative on ∂f's distance
WHITEBOX = ("boundary_f", "distance_xa", "bracket", "cos_angle", "grad_norm", "from_xo",
            "beyond_xa")
FIELD_RTOL = dict.fromkeys(WHITEBOX, 1e-4)
VOLATILE = {"seconds", "time", "device", "passes_per_s", "files", "out", "batch_size",
            "precision", "forward", "engine"}
# every case pins its forward identity, eager torch fp32 on the CPU (test_golden checks it)
PINNED = ["--device", "cpu", "--engine", "eager"]
TINY = ["--model", "tiny_cnn", *PINNED]

CASES: dict[str, list[str]] = {
    "predict": ["predict", "sample:coffee", *TINY],
    # σ given where the recording relied on the CLI's old default (0.25; now the model's)
    "smooth": ["smooth", "sample:coffee", *TINY, "--samples", "200", "--n0", "20", "--n", "10",
               "--sigma", "0.25"],
    "smooth_linear": ["smooth", "sample:chelsea", "--model", "linear_toy", *PINNED,
                      "--sigma", "0.5", "--samples", "300", "--n0", "20", "--n", "5"],
    "certify": ["certify", "sample:coffee", *TINY, "--n0", "16", "--n", "128",
                "--sigma", "0.25", "0.5"],
    "certify_ball": ["certify", "sample:rocket", "--model", "ball_toy", *PINNED,
                     "--n0", "16", "--n", "200", "--sigma", "0.25"],
    "slice": ["slice", "sample:coffee", *TINY, "--grid", "5", "--n", "5", "10", "--no-png",
              "--out", "{tmp}/slice"],
    "slice_dense": ["slice", "sample:chelsea", *TINY, "--grid", "5", "--n", "5", "--mode",
                    "dense", "--no-png", "--out", "{tmp}/slice_dense"],
    "profile": ["profile", "sample:coffee", *TINY, "--samples", "32", "--points", "6",
                "--n", "5", "10", "--attack-iters", "5", "--lanczos-steps", "4", "--probes", "2",
                "--slq-steps", "3", "--sigma", "0.25"],
    "dichotomy": ["dichotomy", "sample:coffee", *TINY, "--n", "5", "10", "--trials", "50",
                  "--steps", "6", "--grid", "16", "--samples", "32", "--sigma", "0.25"],
    "dichotomy_towards": ["dichotomy", "sample:coffee", *TINY, "--n", "5", "--trials", "30",
                          "--steps", "5", "--grid", "12", "--samples", "32",
                          "--segment", "towards", "--sigma", "0.25"],
    "attack_hsja": ["attack", "sample:coffee", *TINY, "--attack", "hsja", "--budget", "100"],
    "attack_hsja_g": ["attack", "sample:coffee", *TINY, "--attack", "hsja", "--budget", "100",
                      "--sigma", "0.25", "--n", "5", "--criterion", "shortcut"],
    "attack_surfree": ["attack", "sample:coffee", *TINY, "--attack", "surfree", "--budget",
                       "100", "--sigma", "0.25", "--n", "5"],
    "attack_rays": ["attack", "sample:coffee", *TINY, "--attack", "rays", "--budget", "100"],
    "study": ["study", str(HERE / "plan_tiny.yaml"), *PINNED, "--out", "{tmp}/study"],
    "theory": ["theory", "--n", "10", "--pa", "0.5", "--sigma", "0.25", "--p-lower", "0.9"],
    "theory_even": ["theory", "--n", "50", "--pa", "0.8"],
}


def normalize(value: Any) -> Any:
    """The JSON output without volatile fields (recursively)."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [normalize(v) for v in value]
    return value


def run_case(name: str, tmp: Path) -> dict:
    """Run one case in this process (one torch thread) and return its JSON (not normalised)."""
    import torch

    from rsviz.cli import main

    argv = [a.replace("{tmp}", str(tmp)) for a in CASES[name]] + ["--json"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        torch.set_num_threads(threads)
    if code != 0:
        raise AssertionError(f"{name}: exit {code}: {err.getvalue()[-500:]}")
    return json.loads(out.getvalue())


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where `actual` differs from `expected` (floats within RTOL/ATOL count as equal)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = [f"{path}/{k}: missing" for k in expected if k not in actual]
        out += [f"{path}/{k}: unexpected" for k in actual if k not in expected]
        for k in expected:
            if k in actual:
                out += differences(expected[k], actual[k], f"{path}/{k}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: length {len(actual)} != {len(expected)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual))
                for d in differences(e, a, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, (int, float)) \
            and not isinstance(actual, bool):
        rtol = FIELD_RTOL.get(path.rsplit("/", 1)[-1], RTOL)
        if math.isclose(expected, actual, rel_tol=rtol, abs_tol=ATOL):
            return []
        return [f"{path}: {actual!r} != {expected!r}"]
    if expected != actual or type(expected) is not type(actual):
        return [f"{path}: {actual!r} != {expected!r}"]
    return []


def golden_path(name: str) -> Path:
    return HERE / f"{name}.json"
