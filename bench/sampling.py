"""Benchmark: forward passes per second of rsviz's vote sampling against a naive loop.

The naive loop follows Cohen et al.'s `Smooth._sample_noise` (repeat the image into a batch of
400, add fp32 Gaussian noise, forward in fp32, bincount). The hand-tuned reference is the best
configuration measured on an AVX512-BF16 machine (channels_last + bf16 autocast) swept over batch 16..128. The engine is
`rsviz.smoothing.sample_votes` with the batch size picked automatically (its first call tunes
the batch on the real work; later calls start at the tuned size). Same model, image, σ and N,
same process; the configurations run in interleaved rounds (ABBA order) so that a change of
load hits all of them. Timings on a shared machine are noisy: compare the ratios.

    .venv/bin/python bench/sampling.py [--model efficientnet_lite0] [--n 512] [--device cpu]
        [--rounds 2] [--threads T] [--json out.json]
"""

from __future__ import annotations

import harness
import torch

from rsviz.device import (autocast, cpu_supports_bf16, describe_device, resolve_device,
                          tcmalloc_loaded)
from rsviz.engines import engine_of
from rsviz.models import count_flops
from rsviz.smoothing import make_generator, sample_votes


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


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--n", type=int, default=512, help="N, samples per configuration")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--naive-batch", type=int, default=400, help="Cohen et al.'s default")
    parser.add_argument("--batches", default="16,32,64,128", help="hand-tuned sweep")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds (ABBA order); N is split between them")
    args = parser.parse_args()
    harness.start(args)
    device = resolve_device(args.device)
    if device.type == "cuda" and args.batches == "16,32,64,128":
        args.batches = "128,256,512,1024"
    # the hand-tuned reference: bf16 autocast where the hardware has it (not rsviz's "auto")
    precision = "bf16" if device.type == "cuda" or cpu_supports_bf16() else "fp32"
    naive_model = harness.load(args.model, args.device)  # stays in NCHW
    tuned_model = harness.load(args.model, args.device).to(memory_format=torch.channels_last)
    engine_model = harness.load(args.model, args.device, engine=True)  # as the app attaches it
    info = engine_model.info
    x = harness.image(engine_model, "coffee")
    flops = count_flops(engine_model, device)
    N = args.n
    print(f"model {info.name} on {describe_device(device)}; N = {N}, σ = {args.sigma}; "
          f"{flops / 1e9:.2f} GFLOP per forward; precision {precision}; "
          f"tcmalloc {'preloaded' if tcmalloc_loaded() else 'not loaded'}")

    rounds = max(1, args.rounds)
    per_round = N // rounds
    naive_batch = min(args.naive_batch, per_round)
    naive_label = f"naive Cohen loop (fp32, batch {naive_batch})"
    calls = {naive_label: lambda r: naive_cohen(naive_model, x, args.sigma, per_round,
                                                naive_batch, make_generator(r, device))}
    tuned_labels = []
    for b in (int(v) for v in args.batches.split(",")):
        tuned_labels.append(f"hand-tuned channels_last + {precision}, batch {b}")
        calls[tuned_labels[-1]] = lambda r, b=b: hand_tuned(
            tuned_model, x, args.sigma, per_round, b, make_generator(r, device), precision)
    engine = engine_of(engine_model)
    size = (engine.batch_size if engine is not None else None) or 16
    work = dict.fromkeys(calls, per_round)
    raw_label = None
    if engine is not None:  # its raw rate: premade noisy batches, labels only, whole batches
        premade = (x[None] + args.sigma * torch.randn((size, *x.shape), device=device)).contiguous()
        raw_label = f"raw {engine.name} forward (premade batch {size})"
        calls[raw_label] = lambda r: [engine.logits(premade).argmax(1)
                                      for _ in range(max(1, per_round // size))]
        work[raw_label] = max(1, per_round // size) * size
    engine_label = "engine sample_votes (auto batch, tuning included)"
    calls[engine_label] = lambda r: sample_votes(engine_model, x[None], args.sigma, per_round,
                                                 make_generator(r, device))
    work[engine_label] = per_round
    # warm-up: oneDNN builds its primitives per shape on the first call
    naive_cohen(naive_model, x, args.sigma, naive_batch, naive_batch, make_generator(1, device))
    for b in (int(v) for v in args.batches.split(",")):
        hand_tuned(tuned_model, x, args.sigma, b, b, make_generator(1, device), precision)
    timings = harness.interleaved(calls, rounds, work, wait=lambda: harness.sync(device))
    rows = harness.compare(timings, naive_label, flops)
    harness.print_report(rows, unit="passes/s")
    best_label = max(tuned_labels, key=lambda label: timings[label].rate)
    print()
    print(f"engine / naive:            {harness.ratio(rows, engine_label, naive_label):6.2f}x"
          "   (target ≥ 5x)")
    if raw_label is not None:
        print(f"sampler / raw engine:      {harness.ratio(rows, engine_label, raw_label):6.2f}"
              "    (target ≥ 0.80: noise, copies and vote counting cost at most a fifth)")
    print(f"engine / best hand-tuned:  {harness.ratio(rows, engine_label, best_label):6.2f}"
          f"    (target ≥ 0.80; best: {best_label.split(', ')[-1]}, engine picked batch "
          f"{timings[engine_label].results[-1].batch_size})")
    if device.type == "cuda":
        peak = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
        name = torch.cuda.get_device_name(device)
        limit = next((v for k, v in peak.items() if k in name), None)
        if limit:
            print(f"engine at {timings[engine_label].rate * flops / limit:.1%} of the dense "
                  f"bf16 peak ({limit / 1e12:.0f} TFLOP/s)")
    harness.save(args.json, "sampling", rows, engine_model, N=N, sigma=args.sigma,
                 rounds=rounds, hand_tuned_precision=precision)


if __name__ == "__main__":
    main()
