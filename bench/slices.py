"""Dense vs adaptive boundary slices: forward passes, time, agreement of the ideal-g_σ maps.

    .venv/bin/python bench/slices.py                       # Lite0 on 'coffee', G=21, N=64
    .venv/bin/python bench/slices.py --model tiny_cnn --grid 61 --samples 200 --extent 24
    .venv/bin/python bench/slices.py --floor               # + a second dense pass (noise floor)
    .venv/bin/python bench/slices.py --grid 41 --samples 200 --n 10 50 200 --dense-points 600
    .venv/bin/python bench/slices.py --target chelsea --grid 41 --samples 100 --dense-points 400
    .venv/bin/python bench/slices.py --json slices.json   # + the numbers and the machine's fingerprint

Both runs use the same plane (same `seed`); the adaptive run draws its noise with another
seed, so the agreement includes the sampling noise of both maps. `--floor` adds a second dense
pass with fresh noise: the agreement of two dense maps is the best any method can reach.

`--dense-points K` runs the dense reference at K grid points drawn at random (seeded) instead
of all G²: the dense cost is then the exact formula G² + G²·N (not run), and the agreements
are estimated on those K points (binomial standard error printed). That makes large grids
affordable on a CPU.

Near a tie between two classes no finite N decides g_σ's label, so two dense runs disagree
there too (the noise floor). The script therefore also prints the agreement on the points whose
dense label is *decided*: the dense top class holds a majority of the N votes against all other
classes together, significant at the sign-test level α (P[Bin(N, 1/2) ≥ k_top] ≤ α, a
conservative version of the adaptive mode's own test).
Timings on a shared CPU are noisy: read the ratio of forward passes first.
"""

from __future__ import annotations

import time

import harness
import numpy as np
import torch
from scipy.stats import binom

from rsviz.images import DEFAULT_SAMPLE
from rsviz.progress import StderrProgress
from rsviz.slices import Plane, SliceConfig, SliceResult, compute_slice
from rsviz.smoothing import make_generator, sample_votes


def dense_at(model, x: torch.Tensor, result: SliceResult, config: SliceConfig,
             points: np.ndarray, seed: int,
             progress: StderrProgress) -> tuple[np.ndarray, np.ndarray]:
    """(top class, p̂_top) from `config`'s N fresh votes at the given flat grid points of
    `result`'s plane — exactly what the dense mode computes there."""
    G = result.grid
    plane = Plane(x.float().to(model.device), torch.from_numpy(result.e1).to(model.device),
                  torch.from_numpy(result.e2).to(model.device))
    generator = make_generator(seed, model.device)
    top = np.zeros(len(points), dtype=np.int64)
    p_top = np.zeros(len(points))
    chunk = max(1, 4096 // config.n_samples)
    for start in range(0, len(points), chunk):
        flat = points[start:start + chunk]
        xs = plane.points(result.u[flat % G], result.v[flat // G], config.clip)
        record = sample_votes(model, xs, config.sigma, config.n_samples,
                              generator, config.batch_size, config.precision)
        top[start:start + len(flat)] = record.top_class()
        p_top[start:start + len(flat)] = record.p_hat(top[start:start + len(flat)])
        progress.report(start + len(flat), len(points), "dense votes at sampled points")
    return top, p_top


def share(a: np.ndarray, b: np.ndarray) -> str:
    """Agreement of two label vectors, with its binomial standard error."""
    if len(a) == 0:
        return "— (no point)"
    p = float((a == b).mean())
    return f"{p:.4f} ± {np.sqrt(p * (1 - p) / len(a)):.4f} ({len(a)} points)"


def main() -> None:
    parser = harness.parser(__doc__, raw=True)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--image", default=DEFAULT_SAMPLE)
    parser.add_argument("--grid", type=int, default=21)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--extent", type=float, default=None)
    parser.add_argument("--target", default=None, metavar="SAMPLE",
                        help="slice towards this second sample image (direction 'image')")
    parser.add_argument("--n0", type=int, default=16)
    parser.add_argument("--coarse", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.001,
                        help="level of the adaptive sequential test (and of 'decided' below)")
    parser.add_argument("--floor", action="store_true", help="also run a second dense pass")
    parser.add_argument("--dense-points", type=int, default=None, metavar="K",
                        help="dense reference at K random grid points instead of all G²")
    args = parser.parse_args()
    harness.start(args)

    torch.manual_seed(0)
    model = harness.load(args.model)
    x = harness.image(model, args.image)
    target = harness.image(model, args.target) if args.target else None
    config = SliceConfig(sigma=args.sigma, ns=tuple(args.n), grid=args.grid,
                         direction="image" if target is not None else "random",
                         target=args.target or "",
                         n_samples=args.samples, extent=args.extent, n0=args.n0,
                         coarse=args.coarse, alpha=args.alpha, seed=0, mode="adaptive",
                         noise_seed=1)
    adaptive = compute_slice(model, x, config, target, progress=StderrProgress("adaptive"))
    print(f"adaptive: {adaptive.forward_passes:,} forward passes, {adaptive.seconds:.1f} s "
          f"({adaptive.forward_passes / adaptive.seconds:.0f} passes/s)", flush=True)
    G, N = args.grid, args.samples
    dense_config = SliceConfig(**{**config.__dict__, "mode": "dense", "noise_seed": 0,
                                  "extent": adaptive.extent})
    if args.dense_points:
        rng = np.random.default_rng(0)
        points = np.sort(rng.choice(G * G, size=min(args.dense_points, G * G), replace=False))
        started = time.perf_counter()
        top, p_top = dense_at(model, x, adaptive, dense_config, points, 0,
                              StderrProgress("dense"))
        dense_seconds = (time.perf_counter() - started) * G * G / len(points)
        dense_passes = G * G * (N + 1)
        floor = (dense_at(model, x, adaptive, dense_config, points, 2,
                          StderrProgress("dense 2"))[0]
                 if args.floor else None)
        how = f"estimated from {len(points)} random points"
    else:
        dense = compute_slice(model, x, dense_config, target, progress=StderrProgress("dense"))
        points = np.arange(G * G)
        top, p_top = dense.g_labels.ravel(), dense.p_top.ravel()
        dense_seconds, dense_passes = dense.seconds, dense.forward_passes
        floor = None
        if args.floor:
            floor_config = SliceConfig(**{**dense_config.__dict__, "noise_seed": 2})
            floor = compute_slice(model, x, floor_config, target,
                                  progress=StderrProgress("dense 2")).g_labels.ravel()
        how = "all points"
    ours = adaptive.g_labels.ravel()[points]
    sure = binom.sf(np.round(p_top * N) - 1, N, 0.5) <= args.alpha

    print(f"\nmodel {args.model}, image {args.image}"
          f"{f' towards {args.target}' if args.target else ''}, G = {G}, N = {N}, "
          f"σ = {args.sigma}, "
          f"extent ±{adaptive.extent}, n0 = {args.n0}, coarse = {args.coarse}, "
          f"α = {args.alpha}; dense reference: {how}")
    print(f"classes in the slice: {adaptive.class_names}")
    print(f"passes   dense / adaptive = {dense_passes:,} / {adaptive.forward_passes:,} "
          f"= {dense_passes / adaptive.forward_passes:.1f}x fewer")
    print(f"time     dense / adaptive = {dense_seconds:.1f} s / {adaptive.seconds:.1f} s "
          f"= {dense_seconds / adaptive.seconds:.1f}x (shared CPU: noisy)")
    print(f"agreement of the ideal g_σ labels:        {share(top, ours)}")
    print(f"  where the dense label is decided:       {share(top[sure], ours[sure])}")
    if floor is not None:
        print(f"noise floor (two dense runs):             {share(top, floor)}")
        print(f"  where the dense label is decided:       {share(top[sure], floor[sure])}")
    samples = adaptive.samples
    print(f"adaptive points: filled {np.mean(samples == 0):.1%}, n0 votes "
          f"{np.mean(samples == args.n0):.1%}, more than n0 and less than N "
          f"{np.mean((samples > args.n0) & (samples < N)):.1%}, full N {np.mean(samples >= N):.1%}")
    for n in adaptive.draw_exact:
        print(f"  g_σ,{n}: exact realisations at {adaptive.draw_exact[n].mean():.1%} of the "
              f"points (the rest inferred: fewer than n votes drawn)")
    harness.save(args.json, "slices", {
        "dense_passes": dense_passes, "adaptive_passes": adaptive.forward_passes,
        "passes_ratio": dense_passes / adaptive.forward_passes, "dense_seconds": dense_seconds,
        "adaptive_seconds": adaptive.seconds, "time_ratio": dense_seconds / adaptive.seconds,
        "agreement": float((top == ours).mean()), "points": len(points),
        "agreement_decided": float((top[sure] == ours[sure]).mean()) if sure.any() else None,
        "floor": None if floor is None else float((top == floor).mean())},
        model, image=args.image, target=args.target, grid=G, samples=N, sigma=args.sigma,
        ns=args.n, dense=how)


if __name__ == "__main__":
    main()
