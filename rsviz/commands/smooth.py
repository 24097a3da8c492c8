"""`rsviz smooth IMAGE`: votes of the smoothed classifier on one image.

Samples like Cohen et al.'s CERTIFY (n0 selection votes, then N recorded votes) and derives
from the N votes: p̂ of the top class with its two-sided Clopper–Pearson interval, N // n
independent draws of g_{σ,n}, P[g_{σ,n} ≠ ĉ] (exact binomial and empirical), and Cohen's
certified radius with the N actually used. `summarize` is shared with the "Image & model" page.
"""

from __future__ import annotations

import argparse
from typing import Any, Callable

import numpy as np
import torch

from rsviz.commands._common import (add_image_argument, add_model_arguments, context,
                                    load_cli_image, load_cli_model)
from rsviz.config import SmoothingConfig
from rsviz.errors import ConfigError
from rsviz.jobs import Progress, StderrProgress
from rsviz.models import Classifier
from rsviz.smoothing import VoteRecord, certify, make_generator, radius_from_votes

NAME = "smooth"
HELP = "votes of the smoothed classifier g_{σ,n} on one image (p̂, interval, draws of g, radius)"
COHEN_N = 100_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--sigma", type=float, default=0.25, help="noise std (pixel units)")
    parser.add_argument("--n", type=int, default=10, help="votes per query of g_{σ,n}")
    parser.add_argument("--samples", type=int, default=1000,
                        help="N, votes recorded for the estimates (N // n draws of g)")
    parser.add_argument("--n0", type=int, default=100, help="CERTIFY's selection votes")
    parser.add_argument("--alpha", type=float, default=0.001, help="1 − confidence level")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=None, help="default: measured")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])


def sample_image(model: Classifier, x: torch.Tensor, config: SmoothingConfig, n0: int,
                 progress: Progress | None = None) -> dict[str, Any]:
    """The expensive part: n0 + N votes at x (CERTIFY's sampling), as a small cacheable dict."""
    generator = make_generator(config.seed, model.device)
    result = certify(model, x, config.sigma, n0, config.n_samples, config.alpha, generator,
                     config.batch_size, config.precision, progress)
    votes = result.votes
    assert votes is not None
    return {"labels": votes.labels[0].copy(), "counts0": result.counts0, "n0": n0,
            "num_classes": votes.num_classes, "sigma": config.sigma,
            "forward_passes": result.forward_passes, "seconds": result.seconds,
            "batch_size": votes.batch_size, "precision": votes.precision}


def summarize(sampled: dict[str, Any], n: int, alpha: float, seed: int = 0,
              class_name: Callable[[int], str] = str) -> dict[str, Any]:
    """Everything derived from the recorded votes for a given n and α (cheap)."""
    labels = np.asarray(sampled["labels"])
    N = len(labels)
    if n > N:
        raise ConfigError(f"n = {n} exceeds the N = {N} recorded samples; raise N.")
    sigma = float(sampled["sigma"])
    votes = VoteRecord(labels[None], int(sampled["num_classes"]), sigma)
    counts = votes.counts[0]
    top = int(votes.top_class()[0])
    lo, hi = votes.interval(top, alpha)
    c_a = int(np.asarray(sampled["counts0"]).argmax())
    p_lower, radius = radius_from_votes(int(counts[c_a]), N, alpha, sigma)
    draws = votes.g_draws(n, np.random.default_rng(seed))[0]
    order = np.argsort(-counts, kind="stable")
    return {
        "top_class": top, "top_class_name": class_name(top),
        "p_hat": float(votes.p_hat(top)[0]), "p_lower": float(lo[0]), "p_upper": float(hi[0]),
        "interval": f"two-sided Clopper–Pearson, {1 - alpha:.4g} confidence",
        "vote_counts": [{"class_index": int(c), "name": class_name(int(c)), "votes": int(counts[c])}
                        for c in order if counts[c] > 0][:20],
        "g_draws": draws.tolist(),
        "prob_g_wrong": {
            "binomial": float(votes.prob_g_wrong(top, n, "binomial")[0]),
            "empirical": float((draws != top).mean()),
            "note": "binomial: exact two-class law from p̂ (top vs rest); empirical: fraction "
                    f"of the {len(draws)} draws of g_{{σ,n}} that differ from the top class",
        },
        "certify": {
            "c_a": c_a, "c_a_name": class_name(c_a), "n0": int(sampled["n0"]), "n": N,
            "predict": c_a if radius >= 0 else -1, "p_lower_one_sided": p_lower,
            "radius": max(radius, 0.0), "abstain": radius < 0,
            "note": f"Cohen et al.'s CERTIFY with n = {N}; their default n = {COHEN_N} gives a "
                    "larger radius for the same image (p̲_A is tighter)",
        },
    }


def run(args: argparse.Namespace) -> dict:
    config = SmoothingConfig(sigma=args.sigma, n=args.n, n_samples=args.samples, alpha=args.alpha,
                             seed=args.seed, batch_size=args.batch_size, precision=args.precision)
    if args.n0 < 1:
        raise ConfigError(f"n0 must be an integer ≥ 1 (got {args.n0}).")
    if config.n > config.n_samples:
        raise ConfigError(f"n = {config.n} exceeds N = {config.n_samples} (--samples).")
    model = load_cli_model(args)
    x, name = load_cli_image(args.image, model)
    sampled = sample_image(model, x, config, args.n0, StderrProgress("smooth"))
    summary = summarize(sampled, config.n, config.alpha, config.seed, model.info.class_name)
    return {**context(model, x, name), "sigma": config.sigma, "n": config.n,
            "n_samples": config.n_samples, "alpha": config.alpha, "seed": config.seed,
            **summary, "forward_passes": sampled["forward_passes"],
            "seconds": sampled["seconds"],
            "passes_per_s": sampled["forward_passes"] / max(sampled["seconds"], 1e-9),
            "batch_size": sampled["batch_size"], "precision": sampled["precision"]}


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
