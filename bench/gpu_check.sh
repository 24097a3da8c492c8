#!/usr/bin/env bash
# GPU check of rsviz, for when a GPU is lent (at most 8 minutes: 300 + 90 + 90 s of sections). Writes a report.
#
#   bash bench/gpu_check.sh [REPORT.md]        (default: gpu_check_report.md)
#
# Sections, each under its own time limit:
#   1. sampling bench: Lite0 and ResNet50 (torchvision weights when present, else random
#      weights, same FLOPs), fp32 / bf16 / fp16 autocast where native, batch sweep, CUDA graphs
#      through torch.compile(mode="reduce-overhead") at the best batch; GFLOP/s and the fraction
#      of the model's FLOP-bound rate (measured dense matmul peak in that precision / FLOPs
#      per image); rsviz's own sampler (sample_votes) with the measured engine;
#   2. a boundary slice at the paper's G = 201 (adaptive, Lite0, σ = 0.25);
#   3. one HSJA attack against g_{σ,n} (σ = 0.25, n = 100, budget 200 queries).
# Without a CUDA GPU it says so and runs every section at smoke size on the CPU (tiny model,
# small grid and budget), so the script itself is checked anywhere.
set -u
cd "$(dirname "$0")/.."
REPORT=${1:-gpu_check_report.md}
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PY" -c "import torch, rsviz" 2>/dev/null; then
  echo "gpu_check: cannot import torch and rsviz with $PY (run 'make venv' first)" >&2
  exit 2
fi
GPU=$("$PY" -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')")
{
  echo "# rsviz GPU check — $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo
  if [ -n "$GPU" ]; then
    echo "Device: $GPU"; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | sed 's/^/    /'
  else
    echo "**No CUDA GPU found: every section ran at smoke size on the CPU; these are not GPU numbers.**"
  fi
  echo
} > "$REPORT"

section() {  # section NAME LIMIT_S PYTHON_CODE
  local name=$1 limit=$2 code=$3
  echo "## $name" >> "$REPORT"
  echo '```' >> "$REPORT"
  timeout "$limit" "$PY" -c "$code" >> "$REPORT" 2>&1
  local rc=$?
  [ $rc -eq 124 ] && echo "(stopped after ${limit} s)" >> "$REPORT"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && echo "(failed with exit status $rc)" >> "$REPORT"
  echo '```' >> "$REPORT"
  echo "gpu_check: $name done (exit $rc)"
}

COMMON='
import time, torch, torchvision
from rsviz.models import load_model, count_flops, Classifier, REGISTRY, spec_info
from rsviz.images import load_sample, preprocess
cuda = torch.cuda.is_available()
device = torch.device("cuda" if cuda else "cpu")
def sync():
    if cuda: torch.cuda.synchronize()
def model_named(name):
    if not cuda: return load_model("tiny_cnn", device)
    if name != "resnet50": return load_model(name, device)
    try: return load_model("resnet50.imagenet1k_v2", device)
    except Exception:
        spec = REGISTRY["resnet50.imagenet1k_v2"]
        net = torchvision.models.resnet50(weights=None)
        print("resnet50: torchvision weights absent, random weights (same FLOPs)")
        return Classifier(net, spec_info(spec, model_id="resnet50-random")).to(device)
def image(model):
    i = model.info
    return preprocess(load_sample("coffee").original, i.input_size, i.resize, i.interpolation).to(device)
'

section "1. Sampling bench" 300 "$COMMON"'
from rsviz.device import autocast
from rsviz.smoothing import sample_votes, make_generator
from rsviz import engines
def peak(dtype):
    n = 8192 if cuda else 512
    a = torch.randn(n, n, device=device, dtype=dtype); b = torch.randn(n, n, device=device, dtype=dtype)
    torch.mm(a, b); sync(); t = time.perf_counter()
    for _ in range(10): torch.mm(a, b)
    sync(); return 10 * 2 * n**3 / (time.perf_counter() - t)
precisions = ["fp32"] + (["bf16"] if cuda and torch.cuda.is_bf16_supported() else []) + (["fp16"] if cuda else [])
dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
peaks = {p: peak(dtypes[p]) for p in precisions}
print("measured matmul peak (TFLOP/s): " + ", ".join(f"{p} {v / 1e12:.1f}" for p, v in peaks.items()))
batches = [64, 128, 256, 512, 1024, 2048] if cuda else [8, 32]
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
            x = torch.rand((b, *shape), device=device).contiguous(memory_format=torch.channels_last)
            try:
                with torch.inference_mode(), autocast(device, p):
                    model(x); sync(); t = time.perf_counter()
                    for _ in range(3): model(x)
                    sync(); r = 3 * b / (time.perf_counter() - t)
            except torch.OutOfMemoryError:
                print(f"| {p} | {b} | out of memory | | |"); break
            best[p] = max(best.get(p, (0, 0)), (r, b))
            print(f"| {p} | {b} | {r:.0f} | {r * flops / 1e12:.2f} | {r * flops / peaks[p]:.0%} |")
    if cuda:
        p = "bf16" if "bf16" in best else "fp16"
        r0, b = best[p]
        try:
            graphed = torch.compile(model, mode="reduce-overhead")
            x = torch.rand((b, *shape), device=device).contiguous(memory_format=torch.channels_last)
            with torch.inference_mode(), autocast(device, p):
                t = time.perf_counter(); graphed(x); graphed(x); sync(); compile_s = time.perf_counter() - t
                t = time.perf_counter()
                for _ in range(3): graphed(x)
                sync(); r = 3 * b / (time.perf_counter() - t)
            print(f"CUDA graphs (torch.compile reduce-overhead), {p}, batch {b}: {r:.0f} img/s "
                  f"({r / r0:.2f}x eager {p}; compile {compile_s:.0f} s)")
        except Exception as e:
            print(f"CUDA graphs: failed ({type(e).__name__}: {e})")
    choice = engines.use_best_engine(model)
    x = image(model)[None]
    N = 20000 if cuda else 256
    sample_votes(model, x, 0.25, min(N, 2048), make_generator(0))
    rec = sample_votes(model, x, 0.25, N, make_generator(1))
    top = peaks.get(rec.precision, peaks["fp32"])
    print(f"rsviz sample_votes N={N}: {N / rec.seconds:.0f} passes/s, batch {rec.batch_size}, "
          f"precision {rec.precision}, engine {choice.summary()}; "
          f"{N / rec.seconds * flops / top:.0%} of the FLOP-bound rate")
'

section "2. Boundary slice at G = 201" 90 "$COMMON"'
from rsviz.slices import SliceConfig, compute_slice
from rsviz import engines
model = model_named("efficientnet_lite0")
engines.use_best_engine(model)
G = 201 if cuda else 21
config = SliceConfig(sigma=0.25, grid=G, ns=(10, 100), n_samples=100, mode="adaptive", extent=2.0)
t = time.perf_counter()
result = compute_slice(model, image(model), config)
s = time.perf_counter() - t
summary = result.summary()
passes = summary.get("forward_passes", 0)
print(f"G = {G}, sigma 0.25, N = 100, adaptive: {s:.1f} s, {passes:,} forward passes, {passes / max(s, 1e-9):.0f} passes/s")
'

section "3. HSJA against g" 90 "$COMMON"'
from rsviz.attacks import run_attack
from rsviz.attacks.oracle import OracleConfig
from rsviz.smoothing import forward_labels
from rsviz import engines
model = model_named("efficientnet_lite0")
engines.use_best_engine(model)
x = image(model)
y = int(forward_labels(model, x[None])[0])
budget = 200 if cuda else 30
t = time.perf_counter()
trace = run_attack(model, x, y, "hsja", OracleConfig(sigma=0.25, n=100 if cuda else 10, budget=budget), 0)
s = time.perf_counter() - t
last = trace.points[-1] if trace.points else None
passes, l2 = (last[1], last[2]) if last else (0, float("inf"))
print(f"HSJA vs g (sigma 0.25): {s:.1f} s, {budget} queries, success {trace.success}, "
      f"forward passes {passes:,}, best L2 {l2:.3f}")
'

echo "gpu_check: report written to $REPORT"
