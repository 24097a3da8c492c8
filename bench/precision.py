"""Benchmark: top-1 agreement of bf16 (or fp16) autocast with fp32, clean and under noise.

On the 100 ImageNet images of ../shared/imagenet-sample (labels.csv: filename, class_index,
wnid, name), with EfficientNet-Lite0: the fraction of images whose top-1 label is the same in
fp32 and in the reduced precision, the top-1 accuracy of each, and the same agreement on noisy
copies x + σN (σ = 0.25, the same noise for both precisions). This is what decides whether the
engine may run in autocast ("auto" precision): votes are labels, so agreement is what matters.

    .venv/bin/python bench/precision.py [--folder ../shared/imagenet-sample] [--noisy 4]
        [--json out.json]
"""

from __future__ import annotations

import time
from pathlib import Path

import harness
import numpy as np
import torch

from rsviz.device import describe_device
from rsviz.smoothing import make_generator, precision_agreement


def load_folder(folder: Path, model) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """The folder's images (sorted by name) preprocessed for `model`, their labels from
    labels.csv where it has one (else −1), and their names."""
    rows = ({r["filename"]: int(r["class_index"]) for r in harness.labelled(folder)}
            if (folder / "labels.csv").exists() else {})
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
    xs = [harness.image(model, str(p)).cpu() for p in files]
    return torch.stack(xs), np.array([rows.get(p.name, -1) for p in files]), [p.name for p in files]


def vote_shift(model, x: torch.Tensor, sigma: float, copies: int, precision: str,
               batch_size: int) -> dict:
    """p̂ of the fp32 top class in fp32 and in `precision`, on the same noisy copies."""
    generator = make_generator(1, "cpu")
    diffs = []
    for xi in x:
        noisy = xi + sigma * torch.randn((copies, *xi.shape), generator=generator)
        _, ref, low = precision_agreement(model, noisy, precision, batch_size)
        top = np.bincount(ref).argmax()
        diffs.append(float((low == top).mean() - (ref == top).mean()))
    diffs = np.array(diffs)
    print(f"  p̂ of the fp32 top class, {precision} − fp32 on the same {copies} noisy copies of "
          f"{len(x)} images: mean {diffs.mean():+.4f}, max |Δ| {np.abs(diffs).max():.4f} "
          f"(binomial s.e. of p̂ at N = {copies}: ≤ {0.5 / np.sqrt(copies):.3f})")
    return {"mean": float(diffs.mean()), "max_abs": float(np.abs(diffs).max())}


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--folder", default=str(harness.sample_folder()))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--precisions", default="bf16", help="comma-separated: bf16,fp16")
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--noisy", type=int, default=4, help="noisy copies per image")
    parser.add_argument("--vote-images", type=int, default=10,
                        help="images on which p̂ of the fp32 top class is compared")
    parser.add_argument("--vote-copies", type=int, default=40, help="votes per such image")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    harness.start(args)
    folder = Path(args.folder)
    if not folder.is_dir():
        raise SystemExit(f"{folder}: no such folder (the ImageNet sample of ../shared).")
    model = harness.load(args.model, args.device)
    x, y, names = load_folder(folder, model)
    print(f"{model.info.name} on {describe_device(model.device)}: {len(x)} images from {folder}")
    generator = make_generator(0, "cpu")
    noisy = (x.repeat_interleave(args.noisy, 0)
             + args.sigma * torch.randn((len(x) * args.noisy, *x.shape[1:]), generator=generator))
    results = {}
    for precision in args.precisions.split(","):
        started = time.perf_counter()
        clean, ref, low = precision_agreement(model, x, precision, args.batch_size)
        flips = [f"{names[i]}: {model.info.class_name(int(ref[i]))} -> "
                 f"{model.info.class_name(int(low[i]))}" for i in np.flatnonzero(ref != low)]
        acc_ref = float((ref == y).mean()) if (y >= 0).all() else float("nan")
        acc_low = float((low == y).mean()) if (y >= 0).all() else float("nan")
        noisy_agree, nref, nlow = precision_agreement(model, noisy, precision, args.batch_size)
        print(f"\n{precision} autocast vs fp32 ({time.perf_counter() - started:.0f} s)")
        print(f"  clean images:   top-1 agreement {clean:.1%} ({int((ref == low).sum())}/{len(x)});"
              f" top-1 accuracy fp32 {acc_ref:.1%}, {precision} {acc_low:.1%}")
        for line in flips:
            print(f"    flipped: {line}")
        print(f"  noisy copies (σ = {args.sigma}, {args.noisy} per image): top-1 agreement "
              f"{noisy_agree:.2%} ({int((nref == nlow).sum())}/{len(nref)})")
        per_image = (nref == nlow).reshape(len(x), args.noisy).all(1)
        print(f"  images whose {args.noisy} noisy labels all agree: {per_image.mean():.1%}")
        results[precision] = {"clean_agreement": clean, "accuracy_fp32": acc_ref,
                              "accuracy": acc_low, "flipped": flips,
                              "noisy_agreement": noisy_agree,
                              "all_noisy_agree": float(per_image.mean())}
        if args.vote_images:
            results[precision]["vote_shift"] = vote_shift(
                model, x[:args.vote_images], args.sigma, args.vote_copies, precision,
                args.batch_size)
    harness.save(args.json, "precision", results, model, folder=str(folder), sigma=args.sigma,
                 noisy=args.noisy, images=len(x))


if __name__ == "__main__":
    main()
