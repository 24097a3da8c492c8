"""`rsviz dichotomy IMAGE`: binary searches against g_{σ,n}, per n (paper Fig. 3)."""

from __future__ import annotations

import argparse

import torch

from rsviz.commands._common import (Timer, add_image_argument, add_model_arguments, context,
                                    load_cli_image, load_cli_model)
from rsviz.config import to_dict
from rsviz.dichotomy import (DichotomyConfig, Segment, run_dichotomy, segment_past_whitebox,
                             segment_random, segment_towards, whitebox_available)
from rsviz.errors import RsvizError
from rsviz.images import SAMPLES
from rsviz.jobs import StderrProgress
from rsviz.models import Classifier
from rsviz.smoothing import forward_labels

NAME = "dichotomy"
HELP = "distribution of binary-search outputs against g_{σ,n} on a segment (paper Fig. 3)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--sigma", type=float, default=0.25, help="noise level σ (default 0.25)")
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100],
                        help="votes per query of g_{σ,n}, several allowed (default 10 50 100)")
    parser.add_argument("--trials", type=int, default=1000, help="dichotomies per n")
    parser.add_argument("--steps", type=int, default=12, help="bisection steps k")
    parser.add_argument("--tolerance", type=float,
                        help="stop at this L2 resolution instead of a fixed --steps")
    parser.add_argument("--grid", type=int, default=64, help="segment points measured once")
    parser.add_argument("--samples", type=int, default=128, help="N noisy samples per point")
    parser.add_argument("--method", choices=["multinomial", "binomial"], default="multinomial",
                        help="how the simulation answers a query from p̂")
    parser.add_argument("--fit", choices=["probit", "none"], default="probit",
                        help="smooth p̂_y along the segment by a probit fit (default) or not")
    parser.add_argument("--live", action="store_true",
                        help="also run every trial against the model (costly; for validation)")
    parser.add_argument("--segment", choices=["auto", "whitebox", "towards", "random"],
                        default="auto", help="how B is chosen (auto: past the white-box boundary "
                                             "point when available, else towards another sample)")
    parser.add_argument("--towards", help="image or sample:name for --segment towards "
                                          "(default: the first sample f labels differently)")
    parser.add_argument("--extension", type=float, default=3.0,
                        help="push B this many σ past the boundary point of f")
    parser.add_argument("--seed", type=int, default=0)


def choose_segment(args: argparse.Namespace, model: Classifier, x: torch.Tensor,
                   y: int) -> Segment:
    """The segment asked for on the command line (see --segment)."""
    kind = args.segment
    if kind == "auto":
        kind = "whitebox" if whitebox_available() else "towards"
    if kind == "whitebox":
        if not whitebox_available():
            raise RsvizError("--segment whitebox needs rsviz.whitebox, which is not installed.")
        return segment_past_whitebox(model, x, y, args.sigma, args.extension)
    if kind == "random":
        return segment_random(model, x, y, args.sigma, args.extension, args.seed)
    if args.towards:
        other, name = load_cli_image(args.towards, model)
        return segment_towards(model, x, y, other, args.sigma, args.extension, name)
    for name in SAMPLES:
        other, _ = load_cli_image(f"sample:{name}", model)
        if int(forward_labels(model, other[None])[0]) != y:
            return segment_towards(model, x, y, other, args.sigma, args.extension,
                                   f"sample:{name}")
    raise RsvizError("No sample image is classified differently from IMAGE: use --towards or "
                     "--segment random.")


def run(args: argparse.Namespace) -> dict:
    config = DichotomyConfig(sigma=args.sigma, n_values=tuple(args.n), trials=args.trials,
                             steps=args.steps, tolerance=args.tolerance, grid=args.grid,
                             n_samples=args.samples, method=args.method, fit=args.fit,
                             live=args.live,
                             seed=args.seed)
    model = load_cli_model(args)
    x, name = load_cli_image(args.image, model)
    y = int(forward_labels(model, x[None])[0])
    with Timer() as timer:
        segment = choose_segment(args, model, x, y)
        result = run_dichotomy(model, segment.a, segment.b, y, config, StderrProgress(NAME))
    return {**context(model, x, name), "config": to_dict(config), "class": y,
            "class_name": model.info.class_name(y), "segment": segment.kind,
            "segment_caption": segment.caption, **result.summary(), "seconds": timer.seconds}


def render(result: dict) -> str:
    lines = [f"{result['image']} — {result['model']}, class {result['class_name']}; "
             f"segment ({result['segment']}) of length {result['length']:.3f}, "
             f"k = {result['steps']} steps",
             f"  ∂f at {result['boundary_f']:.4f}, ∂g_σ at {result['boundary_g_sigma']:.4f} "
             f"± {result['boundary_g_sigma_std']:.4f} "
             f"(segment pass: {result['segment_forward_passes']:,} forward passes)"]
    for n, entry in result["per_n"].items():
        for mode, s in entry.items():
            lines.append(f"  n = {n:>4} {mode:9}: mean {s['mean']:.4f}  std {s['std']:.4f}  "
                         f"bias {s['bias']:+.4f}  wrong side {s['wrong_side']:.1%}  "
                         f"passes {s['forward_passes']:,}")
    if result.get("warning"):
        lines.append(f"  warning: {result['warning']}")
    return "\n".join(lines)
