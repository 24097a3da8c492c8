"""Image & votes view: top-5 of f, and the votes of the smoothed classifier at one image.

`VotesRequest` runs Cohen et al.'s CERTIFY (n0 selection votes, then N recorded votes)
through rsviz.certification.certify_one, the one CERTIFY of rsviz (same seed rule: base seed,
σ, the image's content), so its ĉ_A, p̲_A and radius with n = N are those of the image
certified by `rsviz certify`, in a set or in a study. Everything else (p̂ and its
Clopper–Pearson interval, N // n draws of g_{σ,n}, P[g_{σ,n} ≠ ĉ], the certified radius) is
derived from the recorded votes by `summarize`, and what the image page draws besides (every
class's votes, the blocks behind the draws, P[g_{σ,n} ≠ ĉ] over n, the thresholds at P_a) by
`page_details`, so n, α and P_a are left out of the cache key: changing them is instant. See
docs/architecture.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from rsviz.errors import ConfigError
from rsviz.identity import describe_tag
from rsviz.views.base import Cost, Request, progress_of

COHEN_N = 100_000  # Cohen et al.'s CERTIFY default, quoted next to the radius with N votes
N0 = 100  # CERTIFY's selection votes (Cohen et al.'s default)


def top5(model: Any, x: Any) -> list[dict[str, Any]]:
    """The five most probable classes of f at x: class_index, name, prob (one forward pass)."""
    import torch

    from rsviz.models import top_k

    with torch.inference_mode():
        logits = model(x[None].to(model.device))[0]
    return [{"class_index": c, "name": model.info.class_name(c), "prob": p}
            for c, p in top_k(logits, 5)]


@dataclass(frozen=True, kw_only=True)
class VotesRequest(Request):
    """n0 + N votes of f on noisy copies of x (the expensive part, cached), with n and α
    for the summary."""

    NAME = "image-votes"
    VERSION = "2"  # 2: seeded by certify_seed's rule (was the base seed itself)
    NOT_IN_KEY = ("n", "alpha", "batch_size")

    sigma: float = 0.25
    n_samples: int = 1000
    n0: int = N0
    seed: int = 0
    precision: str = "auto"
    n: int = 10
    alpha: float = 0.001
    batch_size: int | None = None

    def __post_init__(self) -> None:
        from rsviz.config import SmoothingConfig

        SmoothingConfig(sigma=self.sigma, n=self.n, n_samples=self.n_samples, alpha=self.alpha,
                        seed=self.seed, batch_size=self.batch_size, precision=self.precision)
        if self.n0 < 1:
            raise ConfigError(f"n0 must be an integer ≥ 1 (got {self.n0}).")
        super().__post_init__()

    def cost(self) -> Cost:
        return Cost(self.n0 + self.n_samples, "exact")

    def certification(self) -> Any:
        """CERTIFY's settings of this request (a CertificationConfig): n0, n = N, α, base seed,
        batch size and precision at σ."""
        from rsviz.certification import CertificationConfig

        return CertificationConfig(sigmas=(self.sigma,), n0=self.n0, n=self.n_samples,
                                   alpha=self.alpha, seed=self.seed, batch_size=self.batch_size,
                                   precision=self.precision)  # type: ignore[arg-type]

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> dict:
        from rsviz.certification import certify_one

        result = certify_one(model, x, self.sigma, self.certification(),
                             progress_of(progress, cancel))
        votes = result.votes
        assert votes is not None
        return {"labels": votes.labels[0].copy(), "counts0": result.counts0, "n0": self.n0,
                "num_classes": votes.num_classes, "sigma": self.sigma,
                "forward_passes": result.forward_passes, "seconds": result.seconds,
                "batch_size": votes.batch_size, "precision": votes.precision,
                "forward": votes.forward}

    def summary(self, result: dict, class_name: Callable[[int], str] = str) -> dict[str, Any]:
        derived = summarize(result, self.n, self.alpha, self.seed, class_name)
        return {"sigma": self.sigma, "n": self.n, "n_samples": self.n_samples,
                "alpha": self.alpha, "seed": self.seed, **derived,
                "forward_passes": result["forward_passes"], "seconds": result["seconds"],
                "passes_per_s": result["forward_passes"] / max(result["seconds"], 1e-9),
                "batch_size": result["batch_size"], "precision": result["precision"],
                "engine": describe_tag(result.get("forward", ""), result["batch_size"])}


def summarize(sampled: dict[str, Any], n: int, alpha: float, seed: int = 0,
              class_name: Callable[[int], str] = str) -> dict[str, Any]:
    """Everything derived from the recorded votes for a given n and α (cheap)."""
    from rsviz.smoothing import VoteRecord, radius_from_votes

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


def page_details(sampled: dict[str, Any], summary: dict[str, Any], p_a: float,
                 n_show: int) -> dict[str, Any]:
    """What the image page draws beyond `summarize`, from the same recorded votes and their
    `VotesRequest.summary` (σ, n, α, seed, ĉ, p̂, CERTIFY's p̲_A), at adversarial level P_a:

    - counts: the votes of every class (the histogram; `summarize` keeps the top 20 only);
    - block_classes, block_counts: the classes present and the votes per class of the first
      `n_show` blocks of n votes behind the draws of g_{σ,n};
    - prob_g_wrong_curve: P[g_{σ,n} ≠ ĉ] over about 40 values of n from 1 to N (and n), the
      exact binomial law from p̂ and the empirical frequency over the N // n draws where there
      are at least 20 (one generator seeded by the seed, drawn in order of n);
    - radius_cohen_n: the certified radius for the same p̂ had Cohen's n = COHEN_N been used;
    - theory: eq. (5)–(6)'s thresholds and distances at n, P_a and σ (`theory_summary`).
    """
    from rsviz.smoothing import VoteRecord, lower_confidence_bound, prob_wrong_binomial
    from rsviz.theory import certified_radius, theory_summary

    sigma, n, alpha = float(summary["sigma"]), int(summary["n"]), float(summary["alpha"])
    votes = VoteRecord(np.asarray(sampled["labels"])[None], int(sampled["num_classes"]), sigma)
    N, top, p_hat = votes.n_samples, summary["top_class"], summary["p_hat"]
    classes, block_counts = votes.block_counts(n)
    ns = sorted({int(v) for v in np.geomspace(1, N, 40).astype(int)} | {n})
    rng = np.random.default_rng(summary["seed"])
    empirical = [float((votes.g_draws(k, rng)[0] != top).mean()) if N // k >= 20 else None
                 for k in ns]
    k_big = int(round(p_hat * COHEN_N))
    p_lower = summary["certify"]["p_lower_one_sided"]
    return {
        "counts": votes.counts[0],
        "block_classes": classes, "block_counts": block_counts[0, :n_show],
        "prob_g_wrong_curve": {"n": ns,
                               "binomial": [float(prob_wrong_binomial(p_hat, k)) for k in ns],
                               "empirical": empirical, "draws": [N // k for k in ns]},
        "radius_cohen_n": float(certified_radius(lower_confidence_bound(k_big, COHEN_N, alpha),
                                                 sigma)),
        "theory": theory_summary(n, p_a, sigma, p_lower if p_lower > 0 else None),
    }
