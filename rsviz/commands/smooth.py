"""`rsviz smooth IMAGE`: votes of the smoothed classifier on one image.

Samples like Cohen et al.'s CERTIFY (n0 selection votes, then N recorded votes) and derives
from the N votes: p̂ of the top class with its two-sided Clopper–Pearson interval, N // n
independent draws of g_{σ,n}, P[g_{σ,n} ≠ ĉ] (exact binomial and empirical), and Cohen's
certified radius with the N actually used. The view is rsviz.views.image.VotesRequest, shared
with the "Image & model" page (same disk cache).
"""

from __future__ import annotations

import argparse

from rsviz.commands._common import (SIGMA_HELP, add_image_argument, add_model_arguments, context,
                                    field_defaults, inputs, model_sigma, run_view)

NAME = "smooth"
HELP = "votes of the smoothed classifier g_{σ,n} on one image (p̂, interval, draws of g, radius)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.views.image import VotesRequest

    d = field_defaults(VotesRequest)
    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--sigma", type=float, help=SIGMA_HELP)
    parser.add_argument("--n", type=int, default=d["n"], help="votes per query of g_{σ,n}")
    parser.add_argument("--samples", type=int, default=d["n_samples"],
                        help="N, votes recorded for the estimates (N // n draws of g)")
    parser.add_argument("--n0", type=int, default=d["n0"],
                        help=f"CERTIFY's selection votes ({d['n0']})")
    parser.add_argument("--alpha", type=float, default=d["alpha"], help="1 − confidence level")
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument("--batch-size", type=int, default=d["batch_size"],
                        help="default: measured")
    parser.add_argument("--precision", default=d["precision"],
                        choices=["auto", "fp32", "bf16", "fp16"])


def votes_options(args: argparse.Namespace) -> dict:
    """The VotesRequest fields of the command line, σ aside."""
    return {"n_samples": args.samples, "n0": args.n0, "seed": args.seed,
            "precision": args.precision, "n": args.n, "alpha": args.alpha,
            "batch_size": args.batch_size}


def run(args: argparse.Namespace) -> dict:
    from rsviz.views.base import inputs as view_inputs
    from rsviz.views.image import VotesRequest

    model, x, name = inputs(args)
    request = VotesRequest(**view_inputs(model, x), sigma=model_sigma(args, model),
                           **votes_options(args))
    sampled = run_view(request, model, x, NAME)
    return {**context(model, x, name, request), **request.summary(sampled, model.info.class_name)}


def render(result: dict) -> str:
    cert = result["certify"]
    draws = result["g_draws"]
    radius = "abstain" if cert["abstain"] else f"R = {cert['radius']:.4f}"
    lines = [
        f"{result['image']} — {result['model']} on {result['device']}, σ = {result['sigma']}, "
        f"N = {result['n_samples']}, n = {result['n']}",
        f"  top class: {result['top_class_name']} ({result['top_class']}), p̂ = "
        f"{result['p_hat']:.4f} in [{result['p_lower']:.4f}, {result['p_upper']:.4f}] "
        f"({result['interval']})",
        f"  {len(draws)} draws of g_{{σ,n}}: {draws[:20]}{' …' if len(draws) > 20 else ''}",
        f"  P[g ≠ top]: binomial {result['prob_g_wrong']['binomial']:.4f}, "
        f"empirical {result['prob_g_wrong']['empirical']:.4f}",
        f"  CERTIFY (n0 = {cert['n0']}, n = {cert['n']}): {radius}, p̲_A = "
        f"{cert['p_lower_one_sided']:.4f}",
        f"  {result['forward_passes']:,} forward passes in {result['seconds']:.1f} s "
        f"({result['passes_per_s']:.0f}/s, batch {result['batch_size']}, {result['precision']})",
    ]
    return "\n".join(lines)
