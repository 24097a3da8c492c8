"""Cohen et al.'s PREDICT and CERTIFY (2019) on top of the vote sampler."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy import stats

from rsviz.config import check_alpha
from rsviz.progress import Progress
from rsviz.models import Classifier
from rsviz.smoothing.votes import VoteRecord, lower_confidence_bound, sample_votes


def predict(model: Classifier, x: torch.Tensor, sigma: float, n: int, alpha: float,
            generator: torch.Generator, batch_size: int | None = None, precision: str = "auto",
            progress: Progress | None = None) -> tuple[int, np.ndarray]:
    """Cohen et al.'s PREDICT: top class of n noisy votes, or −1 (abstain) unless a two-sided
    binomial test of the top two counts rejects equality at level α."""
    check_alpha(alpha)
    counts = sample_votes(model, x[None], sigma, n, generator, batch_size, precision,
                          progress).counts[0]
    order = np.argsort(-counts, kind="stable")
    n_a, n_b = int(counts[order[0]]), int(counts[order[1]]) if len(order) > 1 else 0
    if stats.binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
        return -1, counts
    return int(order[0]), counts


def radius_from_votes(k_a: int, n: int, alpha: float, sigma: float) -> tuple[float, float]:
    """CERTIFY's last step: (p̲_A, R) with p̲_A the one-sided (1 − α) Clopper–Pearson bound
    from k_a votes for ĉ_A out of n, and R = σ Φ^{-1}(p̲_A) (eq. 2), or R = −1 (abstain)
    when p̲_A ≤ 1/2."""
    p_lower = lower_confidence_bound(int(k_a), int(n), alpha)
    if p_lower <= 0.5:
        return p_lower, -1.0
    return p_lower, float(sigma * stats.norm.ppf(p_lower))


@dataclass(frozen=True)
class CertifyResult:
    """Outcome of CERTIFY for one input (`votes` holds the n estimation votes)."""

    predict: int  # −1 = abstain
    radius: float  # 0.0 when abstaining
    p_lower: float
    counts0: np.ndarray
    counts: np.ndarray
    forward_passes: int
    seconds: float
    votes: VoteRecord | None = None


def certify(model: Classifier, x: torch.Tensor, sigma: float, n0: int, n: int, alpha: float,
            generator: torch.Generator, batch_size: int | None = None, precision: str = "auto",
            progress: Progress | None = None) -> CertifyResult:
    """Cohen et al.'s CERTIFY: ĉ_A from n0 votes, p̲_A the one-sided (1 − α) Clopper–Pearson
    lower bound from n fresh votes; radius σ Φ^{-1}(p̲_A) if p̲_A > 1/2, else abstain."""
    check_alpha(alpha)
    started = time.perf_counter()
    counts0 = sample_votes(model, x[None], sigma, n0, generator, batch_size, precision).counts[0]
    c_a = int(counts0.argmax())
    votes = sample_votes(model, x[None], sigma, n, generator, batch_size, precision, progress)
    counts = votes.counts[0]
    p_lower, radius = radius_from_votes(int(counts[c_a]), n, alpha, sigma)
    seconds = time.perf_counter() - started
    if radius < 0:
        return CertifyResult(-1, 0.0, p_lower, counts0, counts, n0 + n, seconds, votes)
    return CertifyResult(c_a, radius, p_lower, counts0, counts, n0 + n, seconds, votes)
