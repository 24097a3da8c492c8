"""Arguments and loaders shared by CLI commands.

Nothing heavy is imported at module level: rsviz.cli imports every command module to list
them, and builds the arguments of the chosen command only, so `--help` and light commands
start without torch (docs/architecture.md, "Fast start").
"""

from __future__ import annotations

import argparse
import time
from typing import Any


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --checkpoint, --arch, --normalized-inside, --device."""
    from rsviz.models import DEFAULT_MODEL, REGISTRY

    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"registry model ({', '.join(REGISTRY)}); default {DEFAULT_MODEL}")
    parser.add_argument("--checkpoint", help="state dict file for --arch (loaded weights_only)")
    parser.add_argument("--arch", default="resnet50", help="torchvision architecture of --checkpoint")
    parser.add_argument("--normalized-inside", action="store_true",
                        help="the checkpoint's network normalises its own input")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda:0 ...")


def add_image_argument(parser: argparse.ArgumentParser) -> None:
    from rsviz.images import SAMPLES

    parser.add_argument("image", help=f"image file, or a sample name ({', '.join(SAMPLES)}) "
                                      "prefixed with 'sample:' e.g. sample:coffee")


def load_cli_model(args: argparse.Namespace) -> Any:
    from rsviz.device import resolve_device
    from rsviz.models import load_checkpoint, load_model

    device = resolve_device(args.device)
    if args.checkpoint:
        return load_checkpoint(args.arch, args.checkpoint, args.normalized_inside, device)
    return load_model(args.model, device)


def load_cli_image(spec: str, model: Any) -> tuple[Any, str]:
    """Image tensor [3,H,W] preprocessed for the model, and its display name."""
    from rsviz.views.inputs import load_image

    return load_image(spec, model)


def context(model: Any, x: Any, name: str) -> dict:
    """Metadata common to every JSON output."""
    from rsviz.device import describe_device
    from rsviz.images import tensor_hash

    return {"model": model.info.name, "model_id": model.info.model_id,
            "device": describe_device(model.device), "image": name, "image_hash": tensor_hash(x)}


def inputs(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """The model, the image tensor and its name named on the command line."""
    model = load_cli_model(args)
    x, name = load_cli_image(args.image, model)
    return model, x, name


def run_view(request: Any, model: Any, x: Any, label: str) -> Any:
    """The request's result from the disk cache shared with the app, else computed with
    progress on stderr (and stored)."""
    from rsviz.jobs import StderrProgress
    from rsviz.views.base import run_cached

    result, cached = run_cached(request, model, x, StderrProgress(label))
    if cached:
        import sys

        print(f"{label}: loaded from the disk cache ({request.key()})", file=sys.stderr)
    return result


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
