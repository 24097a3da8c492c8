"""Benchmark: images/s of every forward engine, and rsviz's vote sampler with and without one.

Part 1 (engines): for each engine and batch size, images/s on noisy inputs (σ = 0.25), the
achieved GFLOP/s (FLOPs from `rsviz.models.count_flops`), the fraction of this machine's fp32
matmul peak (measured here, same threads), label agreement with eager fp32 on the fidelity
check's inputs, and the ratio to eager fp32 NCHW at its best batch, all in one process.
Part 2 (sampler): `rsviz.smoothing.sample_votes` on a real photo, N votes, as today's `auto`
path runs it (no engine, the batch tuner after its tuning run) against the same call with the
engine that `rsviz.engines.choose_engine` picks, in interleaved rounds; the median per-round
ratio is the speed-up. Timings on a shared machine are noisy: compare the ratios.

    flock /tmp/rsviz-heavy.lock .venv/bin/python bench/engines.py [--model efficientnet_lite0]
        [--engines eager_nchw,eager,openvino] [--batches 8,16,32,64] [--check 512] [--n 512]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from rsviz import engines
from rsviz.device import describe_device, tcmalloc_loaded
from rsviz.engines import select
from rsviz.engines.candidates import candidates
from rsviz.images import load_sample, preprocess
from rsviz.models import count_flops, load_model
from rsviz.smoothing import make_generator, sample_votes


def matmul_peak(threads: int, size: int = 1536, seconds: float = 2.0) -> float:
    """Measured fp32 GFLOP/s of a square matmul (best of repeated runs)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        started = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * size ** 3 / (time.perf_counter() - started) / 1e9)
    return best


def rate(engine, shape, batch: int, repeats: int) -> float:
    """Images/s of the engine at one batch size: best of `repeats` timed runs after a warm-up."""
    generator = torch.Generator().manual_seed(batch)
    x = torch.rand((batch, *shape), generator=generator)
    x = x + 0.25 * torch.randn(x.shape, generator=generator)
    engine.logits(x)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        engine.logits(x)
        best = max(best, batch / (time.perf_counter() - started))
    return best


def agreement(engine, reference: list[torch.Tensor], shape, count: int) -> tuple[float, float]:
    """(label agreement, max |logit difference|) against eager fp32 NCHW's logits on the
    fidelity check's inputs."""
    same = total = 0
    worst = 0.0
    for x, b in zip(select.check_inputs(shape, count), reference):
        a = engine.logits(x)
        same += int((a.argmax(1) == b.argmax(1)).sum())
        total += len(x)
        worst = max(worst, float((a - b).abs().max()))
    return same / total, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--engines", default="eager_nchw,eager,openvino")
    parser.add_argument("--batches", default="1,8,16,32,64")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--check", type=int, default=512, help="inputs of the agreement check")
    parser.add_argument("--n", type=int, default=512, help="votes per sampler round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--part", choices=["both", "table", "sampler"], default="both",
                        help="table: part 1 only; sampler: part 2 only (each fits 10 minutes)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model)
    shape = model.info.input_shape
    flops = count_flops(model)
    peak = matmul_peak(torch.get_num_threads())
    flags = engines.cpu_flags().split()
    print(f"{args.model}: {flops / 1e9:.2f} GFLOP/image; {describe_device(model.device)}; "
          f"AVX2 {'avx2' in flags}, AVX-512 {'avx512f' in flags}, "
          f"tcmalloc {tcmalloc_loaded()}; fp32 matmul peak {peak:.1f} GFLOP/s")
    if args.part != "sampler":
        engine_table(args, model, shape, flops, peak)
    if args.part != "table" and args.n > 0:
        sampler_rounds(args, model)


def engine_table(args, model, shape, flops: float, peak: float) -> None:
    """Part 1: images/s per engine and batch, GFLOP/s, fraction of the peak, agreement."""
    pool = {e.name: e for e in candidates(model, shape)}
    wanted = [name for name in args.engines.split(",") if name in pool]
    reference = pool["eager_nchw"]
    select._build(reference)
    reference_logits = [reference.logits(x) for x in select.check_inputs(shape, args.check)]
    batches = [int(b) for b in args.batches.split(",")]
    results = {}
    for name in wanted:
        engine = pool[name]
        started = time.perf_counter()
        reason = select._build(engine) if engine is not reference else None
        if reason:
            print(f"{name}: unavailable ({reason})")
            continue
        setup = time.perf_counter() - started
        rates = {b: rate(engine, shape, b, args.repeats) for b in batches}
        agree, diff = agreement(engine, reference_logits, shape, args.check)
        results[name] = (rates, agree, diff, setup)
    base = max(results["eager_nchw"][0].values()) if "eager_nchw" in results else None
    print(f"\n| engine | batch | img/s | GFLOP/s | % fp32 peak | agreement ({args.check}) "
          f"| max logit diff | × eager NCHW (best batch) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (rates, agree, diff, setup) in results.items():
        for b, r in rates.items():
            ratio = f"{r / base:.2f}" if base else "-"
            print(f"| {name} | {b} | {r:.1f} | {r * flops / 1e9:.1f} | "
                  f"{r * flops / 1e9 / peak:.0%} | {agree:.2%} | {diff:.1e} | {ratio} |")
        print(f"  ({name}: setup {setup:.1f} s)")


def sampler_rounds(args, model) -> None:
    """Part 2: rsviz's sampler, today's auto path against the chosen engine, interleaved."""
    x = preprocess(load_sample("coffee").original, model.info.input_size, model.info.resize,
                   model.info.interpolation)[None]
    started = time.perf_counter()
    engine, choice = engines.choose_engine(model)
    print(f"\nchoose_engine: {choice.summary()} in {time.perf_counter() - started:.1f} s "
          f"(cached: {choice.cached})")
    for report in choice.reports:
        print(f"  {report.name}: {report.status} {report.rate or 0:.1f}/s {report.reason}")
    engines.attach(model, None)
    sample_votes(model, x, 0.25, args.n, make_generator(0))  # today's auto: tuning run
    ratios, plain_rates, engine_rates = [], [], []
    for round_ in range(args.rounds):
        engines.attach(model, None)
        plain = sample_votes(model, x, 0.25, args.n, make_generator(round_))
        engines.attach(model, engine, choice)
        fast = sample_votes(model, x, 0.25, args.n, make_generator(round_))
        same = float((plain.labels == fast.labels).mean())
        plain_rates.append(args.n / plain.seconds)
        engine_rates.append(args.n / fast.seconds)
        ratios.append(engine_rates[-1] / plain_rates[-1])
        print(f"round {round_}: auto {plain_rates[-1]:.1f} passes/s (batch {plain.batch_size}), "
              f"engine {engine_rates[-1]:.1f} passes/s (batch {fast.batch_size}), "
              f"same votes {same:.2%}, top class {plain.top_class()[0]} / {fast.top_class()[0]}")
    print(f"sampler speed-up (median of {args.rounds} rounds): {statistics.median(ratios):.1f}× "
          f"(auto {np.median(plain_rates):.1f}, engine {np.median(engine_rates):.1f} passes/s)")


if __name__ == "__main__":
    main()
