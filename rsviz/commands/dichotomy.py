"""`rsviz dichotomy IMAGE`: binary searches against g_{σ,n}, per n (paper Fig. 3).

The view (and the choice of the segment) is rsviz.views.dichotomy, shared with the page.
"""

from __future__ import annotations

import argparse
from typing import Any

from rsviz.commands._common import (SIGMA_HELP, add_image_argument, add_model_arguments, context,
                                    field_defaults, inputs, load_cli_image, model_sigma, run_view,
                                    spaced)

NAME = "dichotomy"
HELP = "distribution of binary-search outputs against g_{σ,n} on a segment (paper Fig. 3)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.config import WHITEBOX_ITERATION_PASSES
    from rsviz.dichotomy import DichotomyConfig
    from rsviz.views.dichotomy import SEGMENTS, DichotomyRequest

    d, r = field_defaults(DichotomyConfig), field_defaults(DichotomyRequest)
    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--sigma", type=float, help=SIGMA_HELP)
    parser.add_argument("--n", type=int, nargs="+", default=list(d["n_values"]),
                        help="votes per query of g_{σ,n}, several allowed "
                             f"(default {spaced(d['n_values'])})")
    parser.add_argument("--trials", type=int, default=d["trials"], help="dichotomies per n")
    parser.add_argument("--steps", type=int, default=d["steps"], help="bisection steps k")
    parser.add_argument("--tolerance", type=float, default=d["tolerance"],
                        help="stop at this L2 resolution instead of a fixed --steps")
    parser.add_argument("--grid", type=int, default=d["grid"],
                        help="segment points measured once")
    parser.add_argument("--samples", type=int, default=d["n_samples"],
                        help="N noisy samples per point")
    parser.add_argument("--method", choices=["multinomial", "binomial"], default=d["method"],
                        help="how the simulation answers a query from p̂")
    parser.add_argument("--fit", choices=["probit", "none"], default=d["fit"],
                        help="smooth p̂_y along the segment by a probit fit (default) or not")
    parser.add_argument("--live", action="store_true", default=d["live"],
                        help="also run every trial against the model (costly; for validation)")
    parser.add_argument("--segment", choices=[*SEGMENTS, "auto"], default=r["kind"],
                        help="how B is chosen (whitebox: past the white-box boundary point, "
                             "auto is the same; whitebox and random fall back to towards "
                             "another image when they fail)")
    parser.add_argument("--towards", help="image or sample:name for --segment towards "
                                          "(default: the first sample f labels differently)")
    parser.add_argument("--extension", type=float, default=r["extension"],
                        help="push B this many σ past ∂g_σ (searched along the segment first; "
                             "with --past-f, past the boundary point of f)")
    parser.add_argument("--past-f", action="store_false", dest="past_gsigma",
                        default=r["past_gsigma"],
                        help="place B past ∂f only, without searching ∂g_σ")
    parser.add_argument("--attack-iters", type=int, default=r["attack_iters"],
                        help="gradient iterations of the white-box search for B (default "
                             f"{r['attack_iters']}; each costs about "
                             f"{WHITEBOX_ITERATION_PASSES} forward passes' time)")
    parser.add_argument("--seed", type=int, default=d["seed"])


def dichotomy_config(args: argparse.Namespace, sigma: float) -> Any:
    """The DichotomyConfig of the command line at noise level `sigma`."""
    from rsviz.dichotomy import DichotomyConfig

    return DichotomyConfig(sigma=sigma, n_values=tuple(args.n), trials=args.trials,
                           steps=args.steps, tolerance=args.tolerance, grid=args.grid,
                           n_samples=args.samples, method=args.method, fit=args.fit,
                           live=args.live, seed=args.seed)


def segment_options(args: argparse.Namespace) -> dict[str, Any]:
    """The DichotomyRequest fields of the command line that choose the segment."""
    return {"kind": args.segment, "extension": args.extension,
            "attack_iters": args.attack_iters, "past_gsigma": args.past_gsigma}


def run(args: argparse.Namespace) -> dict:
    from rsviz.views.base import inputs as view_inputs
    from rsviz.views.dichotomy import DichotomyRequest

    model, x, name = inputs(args)
    config = dichotomy_config(args, model_sigma(args, model))
    other, other_name = None, ""
    if args.towards and args.segment == "towards":
        other, other_name = load_cli_image(args.towards, model)
    request = DichotomyRequest(**view_inputs(model, x), config=config, **segment_options(args),
                               other=other, other_name=other_name)
    out = run_view(request, model, x, NAME)
    return {**context(model, x, name, request), **request.summary(out, model.info.class_name)}


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
