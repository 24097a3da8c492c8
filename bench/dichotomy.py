"""Forward passes of dichotomy trials: live queries vs the exact simulation from one segment pass.

    .venv/bin/python bench/dichotomy.py [--model tiny_cnn] [--trials 1000] [--n 10 50 100]
        [--json out.json]

The live side runs every query of every trial against the model (lazy exact votes, fresh
noise); the simulated side measures p̂ once on the segment (grid × N passes) and simulates all
trials for every n from it. Target: ≥ 100× fewer forward passes for 1 000 trials × 3 values
of n. The live side uses a cheap model (default tiny_cnn): with EfficientNet-Lite0 it would
take hours on a CPU. The Lite0 segment pass (what the page pays) is timed separately.
Wall times are noisy when other jobs share the CPU: read the ratios.
"""

from __future__ import annotations

import argparse
import time

import harness
import torch
from scipy import stats

from rsviz.dichotomy import DichotomyConfig, run_dichotomy, segment_towards
from rsviz.smoothing import forward_labels


def segment(model, image: str, other: str, sigma: float):
    """The segment from sample `image` towards sample `other` (extension 8), and f's label."""
    x, o = (harness.image(model, s) for s in (image, other))
    y = int(forward_labels(model, x[None])[0])
    return segment_towards(model, x, y, o, sigma, extension=8.0, name=other), y


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--model", default="tiny_cnn", help="model of the live comparison")
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--grid", type=int, default=64)
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--skip-lite0", action="store_true", help="skip the Lite0 segment pass")
    parser.add_argument("--lite0-only", action="store_true", help="only the Lite0 segment pass")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or min(2, torch.get_num_threads()))

    common = dict(sigma=args.sigma, n_values=tuple(args.n), trials=args.trials, steps=args.steps,
                  grid=args.grid, n_samples=args.samples)
    results = {}
    if not args.lite0_only:
        results["live_vs_simulated"] = live_vs_simulated(args, common)
    if not args.skip_lite0:
        results["lite0_segment_pass"] = lite0_segment_pass(args, common)
    print("(CPU shared with other jobs: timings are noisy, pass counts are exact.)")
    harness.save(args.json, "dichotomy", results, **common)


def live_vs_simulated(args: argparse.Namespace, common: dict) -> dict:
    """Every trial's queries live against the simulation from one segment pass, same model."""
    model = harness.load(args.model)
    seg, y = segment(model, "chelsea", "rocket", args.sigma)
    # the live run includes its own segment pass (its passes are not counted below)
    timings = harness.interleaved({
        "simulated": lambda r: run_dichotomy(model, seg.a, seg.b, y, DichotomyConfig(**common)),
        "live": lambda r: run_dichotomy(model, seg.a, seg.b, y,
                                        DichotomyConfig(**common, live=True, seed=1))}, rounds=1)
    rows = harness.compare(timings, "live")
    sim, live = timings["simulated"].results[0], timings["live"].results[0]
    sim_s, live_s = timings["simulated"].seconds[0], timings["live"].seconds[0]
    sim_passes = sim.profile.forward_passes
    live_passes = sum(r.forward_passes for r in live.live.values())
    print(f"model {args.model}, segment ‖B − A‖ = {sim.length:.3f}, {args.trials} trials × "
          f"n ∈ {args.n}, k = {sim.steps} steps, σ = {args.sigma}")
    print(f"{'n':>5} {'live passes':>12} {'live mean':>10} {'sim mean':>9} {'live std':>9} "
          f"{'sim std':>8} {'KS p':>7}")
    for n in args.n:
        a, b = live.stats(live.live[n]), sim.stats(sim.simulated[n])
        p = stats.ks_2samp(live.live[n].positions, sim.simulated[n].positions).pvalue
        print(f"{n:>5} {a['forward_passes']:>12,} {a['mean']:>10.4f} {b['mean']:>9.4f} "
              f"{a['std']:>9.4f} {b['std']:>8.4f} {p:>7.3f}")
    print(f"∂g_σ from the segment pass at {sim.t_g * sim.length:.4f} ± "
          f"{sim.t_g_std * sim.length:.4f} (sampling sd of p̂, shared by every simulated n)")
    print(f"forward passes: live {live_passes:,} vs simulation {sim_passes:,} "
          f"(one segment pass {args.grid} × {args.samples}) -> {live_passes / sim_passes:.0f}× fewer")
    print(f"wall time: live run {live_s:.1f} s vs simulated run {sim_s:.1f} s "
          f"-> {rows[0]['ratio']:.1f}× (noisy under parallel load)")
    return {"live_passes": live_passes, "simulated_passes": sim_passes,
            "passes_ratio": live_passes / sim_passes, "timing": rows}


def lite0_segment_pass(args: argparse.Namespace, common: dict) -> dict:
    """What the page pays on Lite0: one segment pass, every trial simulated from it."""
    lite = harness.load("efficientnet_lite0")
    started = time.perf_counter()
    seg, y = segment(lite, "coffee", "chelsea", args.sigma)
    seg_s = time.perf_counter() - started
    config = DichotomyConfig(**common)
    started = time.perf_counter()
    result = run_dichotomy(lite, seg.a, seg.b, y, config)
    lite_s = time.perf_counter() - started
    passes = result.profile.forward_passes
    print(f"Lite0 segment pass (+ fits, bootstrap, f's bisection): {passes:,} forward passes "
          f"in {lite_s:.1f} s "
          f"({passes / lite_s:.0f} passes/s; segment search {seg_s:.1f} s); "
          f"all {args.trials} trials × {len(args.n)} n simulated from it")
    worst = args.trials * result.steps * sum(args.n)
    print(f"  live on Lite0 would need up to {worst:,} passes "
          f"(~{worst / (passes / lite_s) / 3600:.1f} h at this rate; lazy votes save some)")
    for n, run in result.simulated.items():
        s = result.stats(run)
        print(f"  n = {n:>4}: mean {s['mean']:.3f} std {s['std']:.3f} bias {s['bias']:+.3f} "
              f"wrong side {s['wrong_side']:.1%}")
    if result.warning:
        print(f"  warning: {result.warning}")
    return {"passes": passes, "seconds": lite_s, "segment_seconds": seg_s,
            "simulated": {str(n): result.stats(run) for n, run in result.simulated.items()}}


if __name__ == "__main__":
    main()
