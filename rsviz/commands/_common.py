"""Arguments and loaders shared by CLI commands."""

from __future__ import annotations

import argparse
import os
import time

import torch

from rsviz.device import describe_device, resolve_device
from rsviz.errors import ImageError
from rsviz.images import SAMPLES, load_image_file, load_sample, preprocess, tensor_hash
from rsviz.models import DEFAULT_MODEL, REGISTRY, Classifier, load_checkpoint, load_model


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --checkpoint, --arch, --normalized-inside, --device."""
    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"registry model ({', '.join(REGISTRY)}); default {DEFAULT_MODEL}")
    parser.add_argument("--checkpoint", help="state dict file for --arch (loaded weights_only)")
    parser.add_argument("--arch", default="resnet50", help="torchvision architecture of --checkpoint")
    parser.add_argument("--normalized-inside", action="store_true",
                        help="the checkpoint's network normalises its own input")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda:0 ...")


def add_image_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", help=f"image file, or a sample name ({', '.join(SAMPLES)}) "
                                      "prefixed with 'sample:' e.g. sample:coffee")


def load_cli_model(args: argparse.Namespace) -> Classifier:
    device = resolve_device(args.device)
    if args.checkpoint:
        return load_checkpoint(args.arch, args.checkpoint, args.normalized_inside, device)
    return load_model(args.model, device)


def load_cli_image(spec: str, model: Classifier) -> tuple[torch.Tensor, str]:
    """Image tensor [3,H,W] preprocessed for the model, and its display name."""
    if spec.startswith("sample:"):
        loaded = load_sample(spec[len("sample:"):])
    elif not os.path.exists(spec) and spec in SAMPLES:
        loaded = load_sample(spec)
    else:
        if not os.path.exists(spec):
            raise ImageError(f"{spec}: no such file (samples: "
                             + ", ".join(f"sample:{s}" for s in SAMPLES) + ").")
        loaded = load_image_file(spec)
    info = model.info
    x = preprocess(loaded.original, info.input_size, info.resize, info.interpolation)
    return x, loaded.name


def context(model: Classifier, x: torch.Tensor, name: str) -> dict:
    """Metadata common to every JSON output."""
    return {"model": model.info.name, "model_id": model.info.model_id,
            "device": describe_device(model.device), "image": name, "image_hash": tensor_hash(x)}


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
