"""Dense vs adaptive boundary slices: forward passes, time, agreement of the ideal-g_σ maps.

    .venv/bin/python bench/slices.py                       # Lite0 on 'coffee', G=21, N=64
    .venv/bin/python bench/slices.py --model tiny_cnn --grid 61 --sigma 0.05
    .venv/bin/python bench/slices.py --floor               # + a second dense run (noise floor)

Both runs use the same plane (same `seed`); the adaptive run draws its noise with another
seed, so the agreement includes the sampling noise of both maps. `--floor` adds a second dense
run with fresh noise: the agreement of two dense maps is the best any method can reach.
Timings on a shared CPU are noisy: read the ratio of forward passes first.

Near a tie between two classes no finite N decides g_σ's label, so two dense runs disagree
there too (the noise floor). The script therefore also prints the agreement on the points whose
dense label is *decided*: the dense top class holds a majority of the N votes against all other
classes together, significant at the sign-test level α (P[Bin(N, 1/2) ≥ k_top] ≤ α, a
conservative version of the adaptive mode's own test).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binom

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rsviz.images import DEFAULT_SAMPLE, load_sample, preprocess  # noqa: E402
from rsviz.jobs import StderrProgress  # noqa: E402
from rsviz.models import load_model  # noqa: E402
from rsviz.slices import SliceConfig, agreement, compute_slice  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--image", default=DEFAULT_SAMPLE)
    parser.add_argument("--grid", type=int, default=21)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--extent", type=float, default=None)
    parser.add_argument("--n0", type=int, default=16)
    parser.add_argument("--coarse", type=int, default=4)
    parser.add_argument("--alpha", type=float, default=0.001,
                        help="level of the adaptive sequential test (and of 'decided' below)")
    parser.add_argument("--floor", action="store_true", help="also run a second dense pass")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = load_model(args.model)
    info = model.info
    x = preprocess(load_sample(args.image).original, info.input_size, info.resize,
                   info.interpolation)
    base = SliceConfig(sigma=args.sigma, ns=tuple(args.n), grid=args.grid,
                       n_samples=args.samples, extent=args.extent, n0=args.n0,
                       coarse=args.coarse, alpha=args.alpha, seed=0)
    runs = {}
    plan = [("dense", 0), ("adaptive", 1)] + ([("dense", 2)] if args.floor else [])
    for mode, noise_seed in plan:
        config = SliceConfig(**{**base.__dict__, "mode": mode, "noise_seed": noise_seed,
                                "extent": runs["dense", 0].extent if runs else args.extent})
        started = time.perf_counter()
        result = compute_slice(model, x, config, progress=StderrProgress(mode))
        seconds = time.perf_counter() - started
        runs[mode, noise_seed] = result
        print(f"{mode:9s} noise seed {noise_seed}: {result.forward_passes:8,d} forward passes, "
              f"{seconds:7.1f} s ({result.forward_passes / seconds:6.0f} passes/s)", flush=True)
    dense, adaptive = runs["dense", 0], runs["adaptive", 1]
    t_dense, t_adaptive = dense.seconds, adaptive.seconds
    print(f"\nmodel {args.model}, image {args.image}, G = {args.grid}, N = {args.samples}, "
          f"σ = {args.sigma}, extent ±{dense.extent}, n0 = {args.n0}, coarse = {args.coarse}")
    print(f"classes in the slice: {dense.class_names}")
    print(f"passes   dense / adaptive = {dense.forward_passes:,} / {adaptive.forward_passes:,} "
          f"= {dense.forward_passes / adaptive.forward_passes:.1f}x fewer")
    print(f"time     dense / adaptive = {t_dense:.1f} s / {t_adaptive:.1f} s "
          f"= {t_dense / t_adaptive:.1f}x (shared CPU: noisy)")
    print(f"agreement of the ideal g_σ label maps: {agreement(dense.g_labels, adaptive.g_labels):.4f}")
    sure = binom.sf(np.round(dense.p_top * args.samples) - 1, args.samples, 0.5) <= args.alpha
    print(f"agreement where the dense label is decided ({sure.mean():.1%} of the points): "
          f"{agreement(dense.g_labels[sure], adaptive.g_labels[sure]):.4f}")
    print(f"agreement of f maps (sanity, must be 1): {agreement(dense.f_labels, adaptive.f_labels):.4f}")
    if args.floor:
        other = runs["dense", 2].g_labels
        print(f"noise floor (two dense runs): {agreement(dense.g_labels, other):.4f}, "
              f"where decided: {agreement(dense.g_labels[sure], other[sure]):.4f}")
    samples = adaptive.samples
    print(f"adaptive points: filled {np.mean(samples == 0):.1%}, n0 votes "
          f"{np.mean(samples == args.n0):.1%}, more than n0 and less than N "
          f"{np.mean((samples > args.n0) & (samples < args.samples)):.1%}, "
          f"full N {np.mean(samples >= args.samples):.1%}")
    for n in adaptive.draw_exact:
        print(f"  g_σ,{n}: exact realisations at {adaptive.draw_exact[n].mean():.1%} of the "
              f"points (the rest inferred: fewer than n votes drawn)")
    diff = np.abs(dense.p_y - adaptive.p_y)
    print(f"|p̂_y dense − p̂_y adaptive|: mean {diff.mean():.4f}, max {diff.max():.3f}")


if __name__ == "__main__":
    main()
