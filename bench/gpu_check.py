"""GPU check of rsviz, for when a GPU is lent (at most 8 minutes: 300 + 90 + 90 s of sections).
Writes a Markdown report.

    .venv/bin/python bench/gpu_check.py [REPORT.md] [--json out.json]   (default: gpu_check_report.md)

Sections, each in its own process under its own time limit:
  1. sampling bench: Lite0 and ResNet50 (torchvision weights when present, else random
     weights, same FLOPs), fp32 / bf16 / fp16 autocast where native, batch sweep, CUDA graphs
     through torch.compile(mode="reduce-overhead") at the best batch; GFLOP/s and the fraction
     of the model's FLOP-bound rate (measured dense matmul peak in that precision / FLOPs
     per image); rsviz's own sampler (sample_votes) with the measured engine;
  2. a boundary slice at the paper's G = 201 (adaptive, Lite0, σ = 0.25);
  3. one HSJA attack against g_{σ,n} (σ = 0.25, n = 100, budget 200 queries).
Without a CUDA GPU it says so and runs every section at smoke size on the CPU (tiny model,
small grid and budget), so the script itself is checked anywhere.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import harness

ROOT = Path(__file__).resolve().parent.parent
NO_GPU = ("**No CUDA GPU found: every section ran at smoke size on the CPU; these are not GPU "
          "numbers.**")


# --------------------------------------------------------------------------- sections


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def model_named(name: str):
    """The section's model on the device: tiny_cnn without a GPU; ResNet50 with random weights
    (same FLOPs) when its torchvision weights are absent."""
    if not cuda():
        return harness.load("tiny_cnn", "cpu")
    if name != "resnet50":
        return harness.load(name, "cuda")
    try:
        return harness.load("resnet50.imagenet1k_v2", "cuda")
    except Exception:  # noqa: BLE001 - any missing-weights failure: random weights instead
        import torchvision

        from rsviz.models import REGISTRY, Classifier, spec_info

        net = torchvision.models.resnet50(weights=None)
        print("resnet50: torchvision weights absent, random weights (same FLOPs)")
        info = spec_info(REGISTRY["resnet50.imagenet1k_v2"], model_id="resnet50-random")
        return Classifier(net, info).to("cuda")


def matmul_peak(dtype, device) -> float:
    """FLOP/s of ten square matmuls in `dtype` (n = 8192 on a GPU, 512 on the CPU)."""
    import torch

    n = 8192 if device.type == "cuda" else 512
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b)
    harness.sync(device)
    started = time.perf_counter()
    for _ in range(10):
        torch.mm(a, b)
    harness.sync(device)
    return 10 * 2 * n ** 3 / (time.perf_counter() - started)


def sampling_section() -> None:
    """1. Batch sweep per precision, CUDA graphs at the best batch, rsviz's own sampler."""
    import torch

    from rsviz import engines
    from rsviz.device import autocast
    from rsviz.models import count_flops
    from rsviz.smoothing import make_generator, sample_votes

    gpu = cuda()
    device = torch.device("cuda" if gpu else "cpu")
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
    precisions = (["fp32"] + (["bf16"] if gpu and torch.cuda.is_bf16_supported() else [])
                  + (["fp16"] if gpu else []))
    peaks = {p: matmul_peak(dtypes[p], device) for p in precisions}
    print("measured matmul peak (TFLOP/s): "
          + ", ".join(f"{p} {v / 1e12:.1f}" for p, v in peaks.items()))
    batches = [64, 128, 256, 512, 1024, 2048] if gpu else [8, 32]
    for name in ["efficientnet_lite0", "resnet50"]:
        model = model_named(name).to(memory_format=torch.channels_last)
        flops = count_flops(model, device)
        shape = model.info.input_shape
        print(f"\n{model.info.model_id}: {flops / 1e9:.2f} GFLOP/image")
        print("| precision | batch | img/s | TFLOP/s | % of FLOP-bound rate |")
        print("|---|---|---|---|---|")
        best = {}
        for p in precisions:
            for b in batches:
                x = torch.rand((b, *shape), device=device).contiguous(
                    memory_format=torch.channels_last)
                try:
                    with torch.inference_mode(), autocast(device, p):
                        model(x)  # warm-up, then three timed forwards
                        timing = harness.interleaved(
                            {p: lambda r: [model(x) for _ in range(3)]}, 1, work=3 * b,
                            wait=lambda: harness.sync(device))
                except torch.OutOfMemoryError:
                    print(f"| {p} | {b} | out of memory | | |")
                    break
                r = timing[p].rate
                best[p] = max(best.get(p, (0, 0)), (r, b))
                print(f"| {p} | {b} | {r:.0f} | {r * flops / 1e12:.2f} | {r * flops / peaks[p]:.0%} |")
        if gpu:
            cuda_graphs(model, best, shape, device)
        choice = engines.use_best_engine(model)
        x = harness.image(model, "coffee")[None]
        n = 20000 if gpu else 256
        sample_votes(model, x, 0.25, min(n, 2048), make_generator(0))
        rec = sample_votes(model, x, 0.25, n, make_generator(1))
        top = peaks.get(rec.precision, peaks["fp32"])
        print(f"rsviz sample_votes N={n}: {n / rec.seconds:.0f} passes/s, batch "
              f"{rec.batch_size}, precision {rec.precision}, engine "
              f"{choice.summary() if choice else 'eager fp32'}; "
              f"{n / rec.seconds * flops / top:.0%} of the FLOP-bound rate")


def cuda_graphs(model, best: dict, shape, device) -> None:
    """CUDA graphs (torch.compile, mode "reduce-overhead") at the best eager batch in bf16
    (else fp16), against that eager rate."""
    import torch

    from rsviz.device import autocast

    p = "bf16" if "bf16" in best else "fp16"
    eager, b = best[p]
    try:
        graphed = torch.compile(model, mode="reduce-overhead")
        x = torch.rand((b, *shape), device=device).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), autocast(device, p):
            started = time.perf_counter()
            graphed(x)
            graphed(x)
            harness.sync(device)
            compile_s = time.perf_counter() - started
            timing = harness.interleaved({p: lambda r: [graphed(x) for _ in range(3)]}, 1,
                                         work=3 * b, wait=lambda: harness.sync(device))
        r = timing[p].rate
        print(f"CUDA graphs (torch.compile reduce-overhead), {p}, batch {b}: {r:.0f} img/s "
              f"({r / eager:.2f}x eager {p}; compile {compile_s:.0f} s)")
    except Exception as e:  # noqa: BLE001 - reported, the check goes on
        print(f"CUDA graphs: failed ({type(e).__name__}: {e})")


def slice_section() -> None:
    """2. An adaptive boundary slice at the paper's G = 201 (G = 21 without a GPU)."""
    from rsviz import engines
    from rsviz.slices import SliceConfig, compute_slice

    model = model_named("efficientnet_lite0")
    engines.use_best_engine(model)
    grid = 201 if cuda() else 21
    config = SliceConfig(sigma=0.25, grid=grid, ns=(10, 100), n_samples=100, mode="adaptive",
                         extent=2.0)
    started = time.perf_counter()
    result = compute_slice(model, harness.image(model, "coffee"), config)
    seconds = time.perf_counter() - started
    passes = result.summary().get("forward_passes", 0)
    print(f"G = {grid}, sigma 0.25, N = 100, adaptive: {seconds:.1f} s, {passes:,} forward "
          f"passes, {passes / max(seconds, 1e-9):.0f} passes/s")


def hsja_section() -> None:
    """3. One HSJA attack against g_{σ,n} (n = 100, 200 queries; n = 10, 30 without a GPU)."""
    from rsviz import engines
    from rsviz.attacks import run_attack
    from rsviz.attacks.oracle import OracleConfig
    from rsviz.smoothing import forward_labels

    gpu = cuda()
    model = model_named("efficientnet_lite0")
    engines.use_best_engine(model)
    x = harness.image(model, "coffee")
    y = int(forward_labels(model, x[None])[0])
    budget = 200 if gpu else 30
    started = time.perf_counter()
    trace = run_attack(model, x, y, "hsja",
                       OracleConfig(sigma=0.25, n=100 if gpu else 10, budget=budget), 0)
    seconds = time.perf_counter() - started
    last = trace.points[-1] if trace.points else None
    passes, l2 = (last[1], last[2]) if last else (0, float("inf"))
    print(f"HSJA vs g (sigma 0.25): {seconds:.1f} s, {budget} queries, success {trace.success}, "
          f"forward passes {passes:,}, best L2 {l2:.3f}")


SECTIONS = (("1. Sampling bench", 300, sampling_section),
            ("2. Boundary slice at G = 201", 90, slice_section),
            ("3. HSJA against g", 90, hsja_section))


# --------------------------------------------------------------------------- driver


def run_section(index: int, limit: float, threads: int | None) -> tuple[int, str]:
    """(exit status, output) of section `index` in its own process (with `threads` torch
    threads), stopped after `limit` seconds (status 124, as `timeout` says): a crash or a hung
    GPU loses only that section."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, str(Path(__file__).resolve()), "--section", str(index)]
    if threads:
        command += ["--threads", str(threads)]
    try:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=limit)
        return done.returncode, done.stdout
    except subprocess.TimeoutExpired as stopped:
        output = stopped.stdout or ""
        return 124, output.decode() if isinstance(output, bytes) else output


def header() -> str:
    """The report's title, and the device: the GPU (nvidia-smi's line) or the no-GPU notice."""
    import torch

    lines = [f"# rsviz GPU check — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", ""]
    if torch.cuda.is_available():
        lines.append(f"Device: {torch.cuda.get_device_name(0)}")
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                  "--format=csv"], capture_output=True, text=True, timeout=30)
            lines += [f"    {line}" for line in smi.stdout.splitlines()]
        except (OSError, subprocess.TimeoutExpired):
            pass
    else:
        lines.append(NO_GPU)
    return "\n".join(lines) + "\n\n"


def main() -> None:
    parser = harness.parser(__doc__, raw=True)
    parser.add_argument("report", nargs="?", default="gpu_check_report.md",
                        help="the Markdown report to write")
    parser.add_argument("--section", type=int, choices=range(1, len(SECTIONS) + 1),
                        help=argparse.SUPPRESS)  # internal: run one section in this process
    args = parser.parse_args()
    try:
        import torch  # noqa: F401

        import rsviz  # noqa: F401
    except ImportError as exc:
        print(f"gpu_check: cannot import torch and rsviz with {sys.executable} ({exc}; "
              "run 'make venv' first)", file=sys.stderr)
        sys.exit(2)
    harness.start(args)
    if args.section:
        SECTIONS[args.section - 1][2]()
        return
    report = Path(args.report)
    if not cuda():
        print("gpu_check: no CUDA GPU found: every section runs at smoke size on the CPU "
              "(these are not GPU numbers)")
    text = header()
    results = {}
    for index, (name, limit, _) in enumerate(SECTIONS, 1):
        status, output = run_section(index, limit, args.threads)
        text += f"## {name}\n```\n{output}" + ("" if output.endswith("\n") or not output
                                                 else "\n")
        if status == 124:
            text += f"(stopped after {limit} s)\n"
        elif status:
            text += f"(failed with exit status {status})\n"
        text += "```\n"
        report.write_text(text, encoding="utf-8")  # a section at a time, as it ends
        results[name] = {"exit": status, "output": output}
        print(f"gpu_check: {name} done (exit {status})", flush=True)
    print(f"gpu_check: report written to {report}")
    harness.save(args.json, "gpu_check", results, gpu=cuda(), report=str(report))


if __name__ == "__main__":
    main()
