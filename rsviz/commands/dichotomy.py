"""`rsviz dichotomy IMAGE`: binary searches against g_{σ,n}, per n (paper Fig. 3).

The view (and the choice of the segment) is rsviz.views.dichotomy, shared with the page.
"""

from __future__ import annotations

import argparse

from rsviz.commands._common import (SIGMA_HELP, add_image_argument, add_model_arguments, context,
                                    inputs, load_cli_image, model_sigma, run_view)

NAME = "dichotomy"
HELP = "distribution of binary-search outputs against g_{σ,n} on a segment (paper Fig. 3)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.config import WHITEBOX_ITERATION_PASSES
    from rsviz.views.dichotomy import DEFAULT_ATTACK_ITERS

    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--sigma", type=float, help=SIGMA_HELP)
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
    parser.add_argument("--segment", choices=["whitebox", "towards", "random", "auto"],
                        default="whitebox", help="how B is chosen (whitebox: past the white-box "
                                                 "boundary point, auto is the same; whitebox "
                                                 "and random fall back to towards another "
                                                 "image when they fail)")
    parser.add_argument("--towards", help="image or sample:name for --segment towards "
                                          "(default: the first sample f labels differently)")
    parser.add_argument("--extension", type=float, default=3.0,
                        help="push B this many σ past ∂g_σ (searched along the segment first; "
                             "with --past-f, past the boundary point of f)")
    parser.add_argument("--past-f", action="store_true",
                        help="place B past ∂f only, without searching ∂g_σ")
    parser.add_argument("--attack-iters", type=int, default=DEFAULT_ATTACK_ITERS,
                        help="gradient iterations of the white-box search for B (default "
                             f"{DEFAULT_ATTACK_ITERS}; each costs about "
                             f"{WHITEBOX_ITERATION_PASSES} forward passes' time)")
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> dict:
    from rsviz.dichotomy import DichotomyConfig
    from rsviz.views.base import inputs as view_inputs
    from rsviz.views.dichotomy import DichotomyRequest

    model, x, name = inputs(args)
    config = DichotomyConfig(sigma=model_sigma(args, model), n_values=tuple(args.n), trials=args.trials,
                             steps=args.steps, tolerance=args.tolerance, grid=args.grid,
                             n_samples=args.samples, method=args.method, fit=args.fit,
                             live=args.live, seed=args.seed)
    other, other_name = None, ""
    if args.towards and args.segment == "towards":
        other, other_name = load_cli_image(args.towards, model)
    request = DichotomyRequest(**view_inputs(model, x), config=config, kind=args.segment,
                               extension=args.extension, attack_iters=args.attack_iters,
                               past_gsigma=not args.past_f, other=other, other_name=other_name)
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
