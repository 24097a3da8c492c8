"""Benchmark: forward passes of the lazy exact vote against the full n-vote of g_{σ,n}.

One query of g_{σ,n} costs n forward passes in full; `rsviz.smoothing.lazy_votes` stops as soon
as the remaining votes cannot change the plurality (same output distribution, see
tests/test_smoothing.py). Far from the boundary it needs about ⌊n/2⌋ + 1 passes; at the
boundary close to n. Measured on the linear classifier (exact p = Φ(δ/σ)) at several signed
distances δ from its boundary, T queries per point, and optionally on a real model.

    .venv/bin/python bench/lazy_vote.py [--n 10,50,100,1000] [--model efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import time

import torch
from scipy import stats


from rsviz.images import load_sample, preprocess  # noqa: E402
from rsviz.models import load_model  # noqa: E402
from rsviz.smoothing import lazy_votes, make_generator, sample_votes  # noqa: E402


def linear_table(ns: list[int], betas: list[float], T: int, sigma: float) -> None:
    model = load_model("linear_toy")
    net = model.net
    w = net.w / net.w.norm()
    x0 = torch.full((w.numel(),), 0.5)
    x0 = x0 - (net.score(x0[None])[0] / net.w.norm()) * w
    print(f"linear classifier, σ = {sigma}, {T} queries per point; mean passes per query "
          "(lazy / full n) and saving")
    print(f"{'δ/σ':>6} {'p':>7} " + " ".join(f"{'n=' + str(n):>22}" for n in ns))
    for beta in betas:
        x = (x0 + beta * sigma * w).view(1, *model.info.input_shape).expand(T, -1, -1, -1)
        cells = []
        for n in ns:
            result = lazy_votes(model, x, sigma, n, make_generator(int(100 * beta) + n))
            mean = result.forward_passes / T
            cells.append(f"{mean:8.1f}/{n:<5} {1 - mean / n:6.1%}")
        print(f"{beta:6.2f} {stats.norm.cdf(beta):7.4f} " + " ".join(f"{c:>22}" for c in cells))


def real_model(name: str, n: int, queries: int, sigma: float) -> None:
    model = load_model(name)
    info = model.info
    x = preprocess(load_sample("coffee").original, info.input_size, info.resize,
                   info.interpolation)[None]
    sample_votes(model, x, sigma, 16, make_generator(9))  # warm-up
    started = time.perf_counter()
    full = sample_votes(model, x, sigma, n * queries, make_generator(0))
    t_full = time.perf_counter() - started
    started = time.perf_counter()
    lazy = lazy_votes(model, x.expand(queries, -1, -1, -1), sigma, n, make_generator(1))
    t_lazy = time.perf_counter() - started
    print(f"\n{name} on 'coffee', σ = {sigma}, n = {n}, {queries} queries: full "
          f"{full.forward_passes} passes in {t_full:.1f} s, lazy {lazy.forward_passes} passes "
          f"in {t_lazy:.1f} s ({1 - lazy.forward_passes / full.forward_passes:.0%} passes "
          f"saved, time ratio {t_full / t_lazy:.2f}x); p̂ of the top class "
          f"{full.p_hat(full.top_class())[0]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="10,50,100,1000")
    parser.add_argument("--betas", default="0,0.1,0.25,0.5,1,2,3")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--model", default=None, help="also measure a registry model")
    parser.add_argument("--model-n", type=int, default=100)
    parser.add_argument("--queries", type=int, default=4)
    args = parser.parse_args()
    linear_table([int(v) for v in args.n.split(",")], [float(v) for v in args.betas.split(",")],
                 args.trials, args.sigma)
    if args.model:
        real_model(args.model, args.model_n, args.queries, args.sigma)


if __name__ == "__main__":
    main()
