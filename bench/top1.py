"""Top-1/top-5 accuracy of a registry model on a labelled image folder (default: the shared
ImageNet sample), proving the embedded model's weights and preprocessing are right.

    .venv/bin/python bench/top1.py [--images ../shared/imagenet-sample] [--model efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch


from rsviz.device import resolve_device  # noqa: E402
from rsviz.images import load_image_file, preprocess  # noqa: E402
from rsviz.models import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "imagenet-sample"
    parser.add_argument("--images", default=str(default))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    folder = Path(args.images)
    labels = folder / "labels.csv"
    if not labels.exists():
        sys.exit(f"{labels} not found: give --images a folder with labels.csv "
                 "(filename,class_index,...)")
    model = load_model(args.model, resolve_device(args.device))
    info = model.info
    rows = list(csv.DictReader(labels.open()))
    top1 = top5 = 0
    started = time.perf_counter()
    for row in rows:
        img = load_image_file(str(folder / row["filename"])).original
        x = preprocess(img, info.input_size, info.resize, info.interpolation)
        with torch.inference_mode():
            ranked = model(x[None].to(model.device))[0].topk(5).indices.tolist()
        truth = int(row["class_index"])
        top1 += ranked[0] == truth
        top5 += truth in ranked
    seconds = time.perf_counter() - started
    print(f"{args.model} on {len(rows)} images of {folder}: top-1 {top1 / len(rows):.1%}, "
          f"top-5 {top5 / len(rows):.1%} ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
