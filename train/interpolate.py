"""Weight-space interpolation of the clean Lite0 and its noise-distilled copy (WiSE-FT).

θ(α) = (1 − α)·θ_clean + α·θ_noise, for α on a grid. Wortsman et al. (2022, "Robust fine-tuning
of zero-shot models") show that interpolating a fine-tuned network's weights with those of the
network it started from often keeps most of the fine-tuning's gain on the new distribution
(here: Gaussian noise) while recovering accuracy on the old one (clean images). Both networks
here share their BatchNorm running statistics (the distillation froze them), so θ(α) is a
network of the same architecture with the same normalisation, and no training is needed.

For every α, on the validation split of `train/distill_noise.py` (the same seeded 60 held-out
*training* images; the evaluation sample is never read):
- clean top-1 of f on the centre crop and `--crops` fixed augmented crops of each image;
- top-1 of g_σ (σ = `--sigma`, plurality of `--votes` votes, no clipping) on the centre crops,
  and f's mean top-1 under that noise;
with the same noise for every α (paired comparisons). The chosen α maximises the mean of
clean top-1 and g_σ top-1 (the two targets of the noise model), ties to the larger α; it is
written as a checkpoint that `train/export_weights.py` ships.

    git show d244349:rsviz/weights/efficientnet_lite0_noise.fp16.pt > /tmp/distilled.fp16.pt
    .venv/bin/python -m train.interpolate --distilled /tmp/distilled.fp16.pt --out train/runs/wise
    .venv/bin/python -m train.export_weights train/runs/wise/best.pt --note "..."
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

from rsviz.images import preprocess
from rsviz.imagesets import shared_folder
from rsviz.models import Classifier, load_model
from train.distill_noise import (RESIZE, SIZE, add_noise, augmented_crop, load_resized,
                                 read_folder, save_atomic, validation_split)


def load_distilled(path: str) -> Classifier:
    """Lite0 with the weights of `path`: a distillation checkpoint (its "student") or a
    network state dict as shipped in rsviz/weights/ (fp16, computed in fp32)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = load_model("efficientnet_lite0")
    if isinstance(state, dict) and "student" in state:
        model.load_state_dict(state["student"])
    else:
        model.net.load_state_dict({k: v.float() if v.is_floating_point() else v
                                   for k, v in state.items()})
    return model.eval()


def interpolate(clean: Classifier, noise: Classifier, alpha: float) -> Classifier:
    """A copy of `clean` with floating-point weights (1 − α)·clean + α·noise (buffers too)."""
    out = load_model("efficientnet_lite0")
    a, b = clean.state_dict(), noise.state_dict()
    if a.keys() != b.keys():
        raise ValueError("the two networks do not have the same parameters")
    out.load_state_dict({k: ((1 - alpha) * a[k].float() + alpha * b[k].float()).to(a[k].dtype)
                         if a[k].is_floating_point() else a[k] for k in a})
    return out.eval()


def top1(model: Classifier, x: torch.Tensor, y: torch.Tensor, batch: int = 32) -> float:
    """Fraction of the inputs `x` that `model` labels `y` (argmax of the logits), by batches."""
    with torch.inference_mode():
        labels = torch.cat([model(x[s:s + batch]).argmax(1) for s in range(0, len(x), batch)])
    return float((labels == y).float().mean())


def smoothed_top1(model: Classifier, x: torch.Tensor, y: torch.Tensor, sigma: float,
                  votes: int, seed: int, classes: int, batch: int = 32) -> tuple[float, float]:
    """(g_σ top-1 by plurality of `votes` votes, f's mean top-1 under the noise)."""
    generator = torch.Generator().manual_seed(seed)
    counts = torch.zeros((len(x), classes), dtype=torch.long)
    with torch.inference_mode():
        for _ in range(votes):
            for s in range(0, len(x), batch):
                xb = add_noise(x[s:s + batch], torch.full((len(x[s:s + batch]),), sigma),
                               generator)
                counts[s:s + batch] += torch.nn.functional.one_hot(
                    model(xb).argmax(1), classes)
    hits_f = float((counts.gather(1, y[:, None]).float() / votes).mean())
    return float((counts.argmax(1) == y).float().mean()), hits_f


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(shared_folder("imagenet-train")))
    p.add_argument("--distilled", required=True,
                   help="stage 1's network: train/runs/noise/best.pt or a shipped fp16 file")
    p.add_argument("--alphas", default="0,0.25,0.5,0.6,0.7,0.8,0.9,1")
    p.add_argument("--sigma", type=float, default=0.25)
    p.add_argument("--votes", type=int, default=32)
    p.add_argument("--crops", type=int, default=4, help="augmented crops per image (clean)")
    p.add_argument("--val", type=int, default=60, help="as train/distill_noise.py --val")
    p.add_argument("--seed", type=int, default=0, help="as train/distill_noise.py --seed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="train/runs/wise")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows = read_folder(args.data)  # refuses the evaluation sample
    torch.set_num_threads(args.threads)  # after the checks: a refused run changes nothing
    val_rows, _ = validation_split(rows, args.val, args.seed)  # the distillation's held-out split
    centre = torch.stack([preprocess(e.load(), SIZE, RESIZE, "bicubic") for e in val_rows])
    labels = torch.tensor([e.label for e in val_rows])
    augmented = [augmented_crop(load_resized(e), args.seed + 1000, i, k)
                 for i, e in enumerate(val_rows) for k in range(args.crops)]
    clean_x = torch.cat([centre, torch.stack(augmented)]) if augmented else centre
    clean_y = torch.cat([labels, labels.repeat_interleave(args.crops)])

    clean_net, noise_net = load_model("efficientnet_lite0"), load_distilled(args.distilled)
    classes = clean_net.info.num_classes
    table = []
    for alpha in [float(a) for a in args.alphas.split(",")]:
        started = time.time()
        model = interpolate(clean_net, noise_net, alpha)
        g, f_noisy = smoothed_top1(model, centre, labels, args.sigma, args.votes, args.seed,
                                   classes)
        row = {"alpha": alpha, "clean_top1": top1(model, clean_x, clean_y),
               "g_top1": g, "f_noisy_top1": f_noisy}
        row["score"] = (row["clean_top1"] + row["g_top1"]) / 2
        table.append(row)
        print(f"α = {alpha:.2f}: clean f {row['clean_top1']:.3f} ({len(clean_x)} crops), "
              f"g σ={args.sigma:g} {g:.3f}, f under noise {f_noisy:.3f} ({len(centre)} images, "
              f"{args.votes} votes); {time.time() - started:.0f} s", flush=True)
    best = max(table, key=lambda r: (round(r["score"], 9), r["alpha"]))
    print(f"chosen α = {best['alpha']:g} (max of (clean + g)/2 = {best['score']:.3f})")
    (out / "interpolation.json").write_text(json.dumps(
        {"args": vars(args), "table": table, "chosen": best}, indent=1))
    model = interpolate(clean_net, noise_net, best["alpha"])
    state = {"recipe": "WiSE-FT weight interpolation", "alpha": best["alpha"],
             "distilled": Path(args.distilled).name,
             "distilled_sha256": hashlib.sha256(Path(args.distilled).read_bytes()).hexdigest(),
             "validation": table}
    save_atomic({"student": model.state_dict(), "state": json.dumps(state)}, out / "best.pt")
    print(f"wrote {out / 'best.pt'}", file=sys.stderr)


if __name__ == "__main__":
    main()
