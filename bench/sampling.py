"""Benchmark: forward passes per second of rsviz's vote sampling against a naive loop.

The naive loop follows Cohen et al.'s `Smooth._sample_noise` (repeat the image into a batch of
400, add fp32 Gaussian noise, forward in fp32, bincount). The hand-tuned reference is the best
configuration measured on an AVX512-BF16 machine (channels_last + bf16 autocast) swept over batch 16..128. The engine is
`rsviz.smoothing.sample_votes` with the batch size picked automatically (its first call tunes
the batch on the real work; later calls start at the tuned size). Same model, image, σ and N,
same process; the configurations run in interleaved rounds (ABBA order) so that a change of
load hits all of them. Timings on a shared machine are noisy: compare the ratios.

    .venv/bin/python bench/sampling.py [--model efficientnet_lite0] [--n 512] [--device cpu]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


from rsviz.device import autocast, cpu_supports_bf16, describe_device, resolve_device  # noqa: E402
from rsviz.images import load_sample, preprocess  # noqa: E402
from rsviz.models import count_flops, load_model  # noqa: E402
from rsviz.device import tcmalloc_loaded  # noqa: E402
from rsviz.smoothing import make_generator, sample_votes  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def naive_cohen(model, x, sigma, num, batch_size, generator):
    """Cohen et al.'s `_sample_noise`, fp32, contiguous (NCHW) layout."""
    counts = torch.zeros(model.info.num_classes, dtype=torch.long)
    remaining = num
    with torch.no_grad():
        while remaining > 0:
            this_batch = min(batch_size, remaining)
            remaining -= this_batch
            batch = x[None].repeat((this_batch, 1, 1, 1))
            noise = torch.randn(batch.shape, generator=generator, device=batch.device) * sigma
            predictions = model(batch + noise).argmax(1)
            counts += torch.bincount(predictions.cpu(), minlength=len(counts))
    return counts


def hand_tuned(model, x, sigma, num, batch_size, generator, precision):
    """channels_last + autocast at a fixed batch (docs/smoothing.md)."""
    counts = torch.zeros(model.info.num_classes, dtype=torch.long)
    remaining = num
    with torch.inference_mode(), autocast(x.device, precision):
        while remaining > 0:
            this_batch = min(batch_size, remaining)
            remaining -= this_batch
            noise = torch.randn((this_batch, *x.shape), generator=generator, device=x.device)
            batch = (x + sigma * noise).contiguous(memory_format=torch.channels_last)
            counts += torch.bincount(model(batch).argmax(1).cpu(), minlength=len(counts))
    return counts


def timed(fn, device) -> float:
    sync(device)
    started = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--n", type=int, default=512, help="N, samples per configuration")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--naive-batch", type=int, default=400, help="Cohen et al.'s default")
    parser.add_argument("--batches", default="16,32,64,128", help="hand-tuned sweep")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds (ABBA order); N is split between them")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 is steadier when the CPU is oversubscribed)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda" and args.batches == "16,32,64,128":
        args.batches = "128,256,512,1024"
    # the hand-tuned reference: bf16 autocast where the hardware has it (not rsviz's "auto")
    precision = "bf16" if device.type == "cuda" or cpu_supports_bf16() else "fp32"
    naive_model = load_model(args.model, device)  # stays in NCHW
    tuned_model = load_model(args.model, device).to(memory_format=torch.channels_last)
    engine_model = load_model(args.model, device)
    info = engine_model.info
    x = preprocess(load_sample("coffee").original, info.input_size, info.resize,
                   info.interpolation).to(device)
    flops = count_flops(engine_model, device)
    N = args.n
    print(f"model {info.name} on {describe_device(device)}; N = {N}, σ = {args.sigma}; "
          f"{flops / 1e9:.2f} GFLOP per forward; precision {precision}; "
          f"tcmalloc {'preloaded' if tcmalloc_loaded() else 'not loaded'}")

    rounds = max(1, args.rounds)
    per_round = N // rounds
    naive_batch = min(args.naive_batch, per_round)
    configs: list[tuple[str, object]] = [
        (f"naive Cohen loop (fp32, batch {naive_batch})",
         lambda g: naive_cohen(naive_model, x, args.sigma, per_round, naive_batch, g))]
    for b in (int(v) for v in args.batches.split(",")):
        configs.append((f"hand-tuned channels_last + {precision}, batch {b}",
                        lambda g, b=b: hand_tuned(tuned_model, x, args.sigma, per_round, b, g,
                                                  precision)))
    from rsviz.engines import engine_of, use_best_engine
    use_best_engine(engine_model)  # the vote sampler's engine, as the app attaches it
    engine = engine_of(engine_model)
    size = (engine.batch_size if engine is not None else None) or 16
    if engine is not None:  # its raw rate: premade noisy batches, labels only
        premade = (x[None] + args.sigma * torch.randn((size, *x.shape), device=device)).contiguous()
        configs.append((f"raw {engine.name} forward (premade batch {size})",
                        lambda g: [engine.logits(premade).argmax(1)
                                   for _ in range(max(1, per_round // size))]))
    records = []
    configs.append(("engine sample_votes (auto batch, tuning included)",
                    lambda g: records.append(sample_votes(engine_model, x[None], args.sigma,
                                                          per_round, g))))
    # warm-up: oneDNN builds its primitives per shape on the first call
    naive_cohen(naive_model, x, args.sigma, naive_batch, naive_batch, make_generator(1, device))
    for b in (int(v) for v in args.batches.split(",")):
        hand_tuned(tuned_model, x, args.sigma, b, b, make_generator(1, device), precision)
    seconds = {label: 0.0 for label, _ in configs}
    for r in range(rounds):  # ABBA order: load drifts hit every configuration alike
        order = configs if r % 2 == 0 else configs[::-1]
        for label, fn in order:
            seconds[label] += timed(lambda: fn(make_generator(r, device)), device)
        print(f"round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    rates = {label: rounds * per_round / t for label, t in seconds.items()}
    labels = list(rates)
    raw_key = next((k for k in labels if k.startswith("raw ")), None)
    raw = None
    if raw_key is not None:  # its passes: whole batches only
        rates[raw_key] = raw = rounds * max(1, per_round // size) * size / seconds[raw_key]
    for label, rate in rates.items():
        print(f"{label:<52} {rate:8.1f} passes/s  {rate * flops / 1e9:8.1f} GFLOP/s")
    naive, engine = rates[labels[0]], rates[labels[-1]]
    best_label = max((k for k in labels[1:-1] if k != raw_key), key=rates.__getitem__)
    best = rates[best_label]
    print()
    print(f"engine / naive:            {engine / naive:6.2f}x   (target ≥ 5x)")
    if raw is not None:
        print(f"sampler / raw engine:      {engine / raw:6.2f}    (target ≥ 0.80: noise, copies "
              "and vote counting cost at most a fifth)")
    print(f"engine / best hand-tuned:  {engine / best:6.2f}    (target ≥ 0.80; best: "
          f"{best_label.split(', ')[-1]}, engine picked batch {records[-1].batch_size})")
    if device.type == "cuda":
        peak = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
        name = torch.cuda.get_device_name(device)
        limit = next((v for k, v in peak.items() if k in name), None)
        if limit:
            print(f"engine at {engine * flops / limit:.1%} of the dense bf16 peak "
                  f"({limit / 1e12:.0f} TFLOP/s)")


if __name__ == "__main__":
    main()
