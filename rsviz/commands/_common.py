"""Arguments and loaders shared by CLI commands.

Nothing heavy is imported at module level: rsviz.cli imports every command module to list
them, and builds the arguments of the chosen command only, so `--help` and light commands
start without torch (docs/architecture.md, "Fast start").
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

NORMALIZATIONS = ("auto", "imagenet", "cifar10", "mean-only", "none",
                  "custom")  # as rsviz.models has them


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model, --checkpoint, --arch, --normalization, --mean/--std, --device, --engine."""
    from rsviz.models import DEFAULT_MODEL, REGISTRY

    parser.add_argument("--model", default=DEFAULT_MODEL,
                        help=f"model reference: a registry name ({', '.join(REGISTRY)}), "
                             "torchvision:NAME[.WEIGHTS], timm:NAME[@FILE], hf-hub:ORG/REPO or "
                             f"checkpoint:PATH (docs/models.md); default {DEFAULT_MODEL}")
    parser.add_argument("--checkpoint", metavar="PATH",
                        help="checkpoint file on this machine (Cohen et al. ImageNet or CIFAR-10, "
                             "Madry et al.'s robustness library, RobustBench, torchvision state "
                             "dict; read weights_only); the same as --model checkpoint:PATH")
    parser.add_argument("--arch", default="auto",
                        help="architecture of a checkpoint: torchvision name, cifar_resnet110, "
                             "timm:NAME (default: from the file)")
    parser.add_argument("--normalization", default="auto", choices=NORMALIZATIONS,
                        help="input normalisation of --checkpoint (default: what the file says; "
                             "custom takes --mean and --std)")
    parser.add_argument("--mean", type=float, nargs=3, help="custom normalisation mean (RGB)")
    parser.add_argument("--std", type=float, nargs=3, help="custom normalisation std (RGB)")
    # same as --normalization none; accepted for old scripts, not shown in --help
    parser.add_argument("--normalized-inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda:0 ...")
    add_engine_argument(parser)


def add_engine_argument(parser: argparse.ArgumentParser) -> None:
    """--engine: the forward engine of the vote sampler (docs/engines.md)."""
    from rsviz.engines import ENGINE_NAMES

    parser.add_argument("--engine", default="auto", choices=("auto", *ENGINE_NAMES),
                        help="forward engine of the vote sampler; auto: the fastest that agrees "
                             "with eager fp32, measured once per model and machine")


def apply_engine(model: Any, name: str | None) -> None:
    """Attach the forced engine to `model` and say which one runs on stderr; "auto" leaves the
    choice to the vote sampler's first use (cached, or measured once)."""
    import sys

    from rsviz.engines import use_best_engine
    from rsviz.errors import ConfigError

    if name in (None, "auto"):
        return
    try:
        choice = use_best_engine(model, force=name, report=lambda m: print(
            f"engine: {m}", file=sys.stderr))
    except ValueError as exc:  # an engine this device does not offer
        raise ConfigError(f"--engine {name} is not available here ({exc})") from None
    if choice is None:
        print("engine: eager fp32 (forced)", file=sys.stderr)
    elif choice.name != name:
        why = next((r.reason for r in choice.reports if r.name == name), "")
        print(f"engine: {name} rejected ({why}); using {choice.summary()}", file=sys.stderr)
    else:
        print(f"engine: {choice.summary()}", file=sys.stderr)


def checkpoint_normalization(args: argparse.Namespace) -> str | tuple:
    """The --normalization choice as load_checkpoint takes it."""
    from rsviz.errors import ConfigError

    if args.normalized_inside:
        return "none"
    if args.normalization == "custom":
        if not (args.mean and args.std):
            raise ConfigError("--normalization custom needs --mean R G B and --std R G B.")
        return (tuple(args.mean), tuple(args.std))
    if args.mean or args.std:
        raise ConfigError("--mean/--std go with --normalization custom.")
    return args.normalization


def field_defaults(config_class: type) -> dict[str, Any]:
    """Field name -> default of a config dataclass or view request: the commands' argparse
    defaults are read here, so the CLI, the engine and the app share one value of each."""
    import dataclasses

    return {f.name: f.default for f in dataclasses.fields(config_class)
            if f.default is not dataclasses.MISSING}


def spaced(values: Any) -> str:
    """A default list as its command line spells it ("10 50 200")."""
    return " ".join(f"{v:g}" for v in values)


def add_image_argument(parser: argparse.ArgumentParser) -> None:
    from rsviz.images import SAMPLES

    parser.add_argument("image", help=f"image file, or a sample name ({', '.join(SAMPLES)}) "
                                      "prefixed with 'sample:' e.g. sample:coffee")


def load_cli_model(args: argparse.Namespace) -> Any:
    from rsviz.device import resolve_device
    from rsviz.models import load_checkpoint, load_model_ref

    device = resolve_device(args.device)
    if args.checkpoint:
        model = load_checkpoint(args.arch, args.checkpoint, checkpoint_normalization(args), device)
    else:
        model = load_model_ref(args.model, device, checkpoint_normalization(args), args.arch)
    apply_engine(model, getattr(args, "engine", "auto"))
    return model


SIGMA_HELP = ("noise level σ (default: the model's, as in the app: the σ a noise-trained model "
              "was trained with, else the paper's 0.05)")


def model_sigma(args: argparse.Namespace, model: Any) -> float:
    """--sigma, or when it is left out the model's default σ (`rsviz.models.default_sigma`, the
    one the app's sidebar starts with), said on stderr."""
    if args.sigma is not None:
        return args.sigma
    from rsviz.models import default_sigma

    sigma, why = default_sigma(model.info)
    print(f"{why} (--sigma to choose another)", file=sys.stderr)
    return sigma


def load_cli_image(spec: str, model: Any) -> tuple[Any, str]:
    """Image tensor [3,H,W] preprocessed for the model, and its display name."""
    from rsviz.views.inputs import load_image

    return load_image(spec, model)


def context(model: Any, x: Any, name: str, request: Any = None) -> dict:
    """Metadata common to every JSON output; with the view's request, its forward identity
    (the tag in "forward", the same in words in "engine")."""
    from rsviz.device import describe_device
    from rsviz.engines import describe_forward
    from rsviz.images import tensor_hash

    out = {"model": model.info.name, "model_id": model.info.model_id,
           "device": describe_device(model.device), "image": name, "image_hash": tensor_hash(x)}
    if request is not None:
        out.update(forward=request.forward, engine=describe_forward(model, request.forward))
    return out


def inputs(args: argparse.Namespace) -> tuple[Any, Any, str]:
    """The model, the image tensor and its name named on the command line."""
    model = load_cli_model(args)
    x, name = load_cli_image(args.image, model)
    return model, x, name


def run_view(request: Any, model: Any, x: Any, label: str) -> Any:
    """The request's result from the disk cache shared with the app, else computed with
    progress on stderr (and stored). Before computing, stderr gets the estimate the page shows
    before Start: the view's cost in forward passes and in seconds at the measured rate."""
    import sys

    from rsviz.cache import default_cache
    from rsviz.engines import describe_forward
    from rsviz.progress import StderrProgress
    from rsviz.views.base import estimate, run_cached

    hit = default_cache().get(request.key())
    if hit is not None:
        print(f"{label}: loaded from the disk cache ({request.key()})", file=sys.stderr)
        return hit
    guess = estimate(request, model)
    wait = guess.seconds
    shown = f"{wait:,.0f}" if wait >= 10 else f"{wait:.1f}"
    print(f"{label}: {guess.cost.describe()}, ≈ {shown} s {guess.describe()}; "
          f"f runs on {describe_forward(model, request.forward)}", file=sys.stderr)
    return run_cached(request, model, x, StderrProgress(label))[0]


class Timer:
    def __enter__(self) -> "Timer":
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
