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
        [--rounds 3] [--threads T] [--json out.json]
"""

from __future__ import annotations

import statistics
import time

import harness
import torch

from rsviz import engines
from rsviz.device import describe_device, tcmalloc_loaded
from rsviz.engines import select
from rsviz.engines.candidates import candidates
from rsviz.models import count_flops
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
    parser = harness.parser(__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--engines", default="eager_nchw,eager,openvino")
    parser.add_argument("--batches", default="1,8,16,32,64")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--check", type=int, default=512, help="inputs of the agreement check")
    parser.add_argument("--n", type=int, default=512, help="votes per sampler round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--part", choices=["both", "table", "sampler"], default="both",
                        help="table: part 1 only; sampler: part 2 only (each fits 10 minutes)")
    args = parser.parse_args()
    harness.start(args)
    model = harness.load(args.model)
    shape = model.info.input_shape
    flops = count_flops(model)
    peak = matmul_peak(torch.get_num_threads())
    flags = engines.cpu_flags().split()
    print(f"{args.model}: {flops / 1e9:.2f} GFLOP/image; {describe_device(model.device)}; "
          f"AVX2 {'avx2' in flags}, AVX-512 {'avx512f' in flags}, "
          f"tcmalloc {tcmalloc_loaded()}; fp32 matmul peak {peak:.1f} GFLOP/s")
    results = {"gflop_per_image": flops / 1e9, "fp32_matmul_peak_gflops": peak}
    if args.part != "sampler":
        results["engines"] = engine_table(args, model, shape, flops, peak)
    if args.part != "table" and args.n > 0:
        results["sampler"] = sampler_rounds(args, model)
    harness.save(args.json, "engines", results, model, part=args.part, n=args.n,
                 rounds=args.rounds, batches=args.batches, check=args.check)


def engine_table(args, model, shape, flops: float, peak: float) -> list[dict]:
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
    rows = []
    for name, (rates, agree, diff, setup) in results.items():
        for b, r in rates.items():
            ratio = f"{r / base:.2f}" if base else "-"
            print(f"| {name} | {b} | {r:.1f} | {r * flops / 1e9:.1f} | "
                  f"{r * flops / 1e9 / peak:.0%} | {agree:.2%} | {diff:.1e} | {ratio} |")
            rows.append({"engine": name, "batch": b, "rate": r, "ratio": r / base if base else None,
                         "agreement": agree, "max_logit_diff": diff, "setup_s": setup})
        print(f"  ({name}: setup {setup:.1f} s)")
    return rows


def sampler_rounds(args, model) -> list[dict]:
    """Part 2: rsviz's sampler, today's auto path against the chosen engine, interleaved."""
    x = harness.image(model, "coffee")[None]
    started = time.perf_counter()
    engine, choice = engines.choose_engine(model)
    print(f"\nchoose_engine: {choice.summary()} in {time.perf_counter() - started:.1f} s "
          f"(cached: {choice.cached})")
    for report in choice.reports:
        print(f"  {report.name}: {report.status} {report.rate or 0:.1f}/s {report.reason}")
    engines.attach(model, None)
    sample_votes(model, x, 0.25, args.n, make_generator(0))  # today's auto: tuning run

    def plain(r: int):
        engines.attach(model, None)
        return sample_votes(model, x, 0.25, args.n, make_generator(r))

    def fast(r: int):
        engines.attach(model, engine, choice)
        return sample_votes(model, x, 0.25, args.n, make_generator(r))

    timings = harness.interleaved({"auto": plain, "engine": fast}, args.rounds, work=args.n)
    rows = harness.compare(timings, "auto")
    auto, fast_ = timings["auto"], timings["engine"]
    for r, (a, b) in enumerate(zip(auto.results, fast_.results)):
        print(f"round {r}: auto {auto.round_rates()[r]:.1f} passes/s (batch {a.batch_size}), "
              f"engine {fast_.round_rates()[r]:.1f} passes/s (batch {b.batch_size}), "
              f"same votes {float((a.labels == b.labels).mean()):.2%}, "
              f"top class {a.top_class()[0]} / {b.top_class()[0]}")
    print(f"sampler speed-up (median of {args.rounds} rounds): "
          f"{rows[1]['median_round_ratio']:.1f}× (auto "
          f"{statistics.median(auto.round_rates()):.1f}, engine "
          f"{statistics.median(fast_.round_rates()):.1f} passes/s)")
    return rows


if __name__ == "__main__":
    main()
