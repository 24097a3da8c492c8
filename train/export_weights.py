"""Export a distillation checkpoint as shipped fp16 weights (rsviz/weights/).

Writes rsviz/weights/<name>.fp16.pt (the network's state dict in fp16) and its manifest entry:
SHA-256, the σ it was trained for, and reference logits of the fp32 checkpoint on a fixed input
(uniform noise from torch.Generator seed 0) that tests compare the fp16 file against.

    .venv/bin/python -m train.export_weights train/runs/noise/best.pt
"""

from __future__ import annotations

import argparse
import io
import json
import re

import torch

from rsviz.models import load_model
from rsviz.weights import FOLDER, MANIFEST, sha256_of

NAME = "efficientnet_lite0_noise"


def reference_input() -> torch.Tensor:
    """The fixed input of the reference logits: [2, 3, 224, 224] uniform in [0,1], seed 0."""
    return torch.rand((2, 3, 224, 224), generator=torch.Generator().manual_seed(0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--trained-sigma", type=float, default=0.25)
    parser.add_argument("--note", default="", help="recipe summary stored in the manifest")
    args = parser.parse_args()
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    student = ckpt["student"]
    model = load_model("efficientnet_lite0")
    model.load_state_dict(student)
    with torch.inference_mode():
        logits = model(reference_input())
    net_state = {k[len("net."):]: v for k, v in student.items() if k.startswith("net.")}
    half = {k: v.half() if v.is_floating_point() else v for k, v in net_state.items()}
    buffer = io.BytesIO()
    torch.save(half, buffer)
    raw = buffer.getvalue()
    filename = f"{NAME}.fp16.pt"
    (FOLDER / filename).write_bytes(raw)
    entries = json.loads(MANIFEST.read_text()) if MANIFEST.exists() else {}
    entries[NAME] = {
        "file": filename, "sha256": sha256_of(raw), "bytes": len(raw),
        "trained_sigma": args.trained_sigma, "note": args.note,
        "training_state": json.loads(ckpt["state"]),
        "reference_input": "torch.rand((2, 3, 224, 224), generator=torch.Generator().manual_seed(0))",
        "reference_top20": [[[int(i), round(float(v), 5)] for v, i in zip(*row.topk(20))]
                            for row in logits],
    }
    text = json.dumps(entries, indent=1)
    text = re.sub(r"\[\s+(-?\d+),\s+(-?[\d.e-]+)\s+\]", r"[\1, \2]", text)  # one pair a line
    MANIFEST.write_text(text + "\n")
    print(f"wrote {FOLDER / filename} ({len(raw) / 1e6:.2f} MB, sha256 {sha256_of(raw)[:16]}…)")


if __name__ == "__main__":
    main()
