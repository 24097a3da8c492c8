"""Top-1/top-5 accuracy of a registry model on a labelled image folder (default: the shared
ImageNet sample), proving the embedded model's weights and preprocessing are right.

    .venv/bin/python bench/top1.py [--images ../shared/imagenet-sample] [--model efficientnet_lite0]
        [--device auto] [--json out.json]
"""

from __future__ import annotations

import time
from pathlib import Path

import harness
import torch


def main() -> None:
    parser = harness.parser(__doc__, raw=True)
    parser.add_argument("--images", default=str(harness.sample_folder()))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    harness.start(args)
    folder = Path(args.images)
    rows = harness.labelled(folder)
    model = harness.load(args.model, args.device)
    top1 = top5 = 0
    started = time.perf_counter()
    for row in rows:
        x = harness.image(model, str(folder / row["filename"]))
        with torch.inference_mode():
            ranked = model(x[None])[0].topk(5).indices.tolist()
        truth = int(row["class_index"])
        top1 += ranked[0] == truth
        top5 += truth in ranked
    seconds = time.perf_counter() - started
    print(f"{args.model} on {len(rows)} images of {folder}: top-1 {top1 / len(rows):.1%}, "
          f"top-5 {top5 / len(rows):.1%} ({seconds:.1f} s)")
    harness.save(args.json, "top1", {"images": len(rows), "top1": top1 / len(rows),
                                     "top5": top5 / len(rows), "seconds": seconds},
                 model, folder=str(folder))


if __name__ == "__main__":
    main()
