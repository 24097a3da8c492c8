"""Benchmark: forward passes of the lazy exact vote against the full n-vote of g_{σ,n}.

One query of g_{σ,n} costs n forward passes in full; `rsviz.smoothing.lazy_votes` stops as soon
as the remaining votes cannot change the plurality (same output distribution, see
tests/test_smoothing.py). Far from the boundary it needs about ⌊n/2⌋ + 1 passes; at the
boundary close to n. Measured on the linear classifier (exact p = Φ(δ/σ)) at several signed
distances δ from its boundary, T queries per point, and optionally on a real model.

    .venv/bin/python bench/lazy_vote.py [--n 10,50,100,1000] [--model efficientnet_lite0]
        [--rounds 1] [--json out.json]
"""

from __future__ import annotations

import harness
import torch
from scipy import stats

from rsviz.smoothing import lazy_votes, make_generator, sample_votes


def linear_table(ns: list[int], betas: list[float], T: int, sigma: float) -> list[dict]:
    """Mean forward passes per query of the lazy vote on the linear classifier, at signed
    distances β·σ from its boundary; prints the table and returns its cells."""
    model = harness.load("linear_toy")
    net = model.net
    w = net.w / net.w.norm()
    x0 = torch.full((w.numel(),), 0.5)
    x0 = x0 - (net.score(x0[None])[0] / net.w.norm()) * w
    print(f"linear classifier, σ = {sigma}, {T} queries per point; mean passes per query "
          "(lazy / full n) and saving")
    rows = []
    print(f"{'δ/σ':>6} {'p':>7} " + " ".join(f"{'n=' + str(n):>22}" for n in ns))
    for beta in betas:
        x = (x0 + beta * sigma * w).view(1, *model.info.input_shape).expand(T, -1, -1, -1)
        cells = []
        for n in ns:
            result = lazy_votes(model, x, sigma, n, make_generator(int(100 * beta) + n))
            mean = result.forward_passes / T
            cells.append(f"{mean:8.1f}/{n:<5} {1 - mean / n:6.1%}")
            rows.append({"beta": beta, "p": float(stats.norm.cdf(beta)), "n": n,
                         "mean_passes": mean})
        print(f"{beta:6.2f} {stats.norm.cdf(beta):7.4f} " + " ".join(f"{c:>22}" for c in cells))
    return rows


def real_model(name: str, n: int, queries: int, sigma: float, rounds: int) -> list[dict]:
    """Queries of g_{σ,n} on 'coffee': n·queries votes in full against the lazy vote, in
    interleaved rounds (work = queries, so the ratio is the time ratio full / lazy)."""
    model = harness.load(name)
    x = harness.image(model, "coffee")[None]
    sample_votes(model, x, sigma, 16, make_generator(9))  # warm-up
    timings = harness.interleaved({
        "full": lambda r: sample_votes(model, x, sigma, n * queries, make_generator(2 * r)),
        "lazy": lambda r: lazy_votes(model, x.expand(queries, -1, -1, -1), sigma, n,
                                     make_generator(2 * r + 1))}, rounds, work=queries)
    rows = harness.compare(timings, "full")
    full, lazy = timings["full"].results[-1], timings["lazy"].results[-1]
    print(f"\n{name} on 'coffee', σ = {sigma}, n = {n}, {queries} queries, {rounds} round(s): "
          f"full {full.forward_passes} passes in {sum(timings['full'].seconds):.1f} s, lazy "
          f"{lazy.forward_passes} passes in {sum(timings['lazy'].seconds):.1f} s "
          f"({1 - lazy.forward_passes / full.forward_passes:.0%} passes saved, time ratio "
          f"{rows[1]['ratio']:.2f}x); p̂ of the top class {full.p_hat(full.top_class())[0]:.3f}")
    return rows


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--n", default="10,50,100,1000")
    parser.add_argument("--betas", default="0,0.1,0.25,0.5,1,2,3")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--model", default=None, help="also measure a registry model")
    parser.add_argument("--model-n", type=int, default=100)
    parser.add_argument("--queries", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds on the model")
    args = parser.parse_args()
    harness.start(args)
    results = {"linear": linear_table([int(v) for v in args.n.split(",")],
                                      [float(v) for v in args.betas.split(",")],
                                      args.trials, args.sigma)}
    if args.model:
        results["model"] = real_model(args.model, args.model_n, args.queries, args.sigma,
                                      args.rounds)
    harness.save(args.json, "lazy_vote", results, sigma=args.sigma, trials=args.trials,
                 model=args.model, model_n=args.model_n, queries=args.queries)


if __name__ == "__main__":
    main()
