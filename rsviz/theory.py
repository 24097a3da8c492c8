"""Closed forms of the paper (Maho, Furon, Le Merrer 2022) and their exact counterparts.

Notation: π0(x) = P[f(x + σN) = y], the probability of the original class y under noise;
the practical classifier g_{σ,n} is the plurality of n iid votes.

Only `scipy.special` is imported (Φ⁻¹ = ndtri, binomial tails = bdtrc, incomplete beta
inverse), so `python -m rsviz theory` starts without loading scipy.stats or scipy.optimize.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special  # not scipy.stats/optimize: 1-2 s more at CLI start

from rsviz.config import check_count, check_probability, check_sigma
from rsviz.errors import ConfigError


def certified_radius(p_a: float | np.ndarray, sigma: float) -> np.ndarray:
    """Eq. (2): R = σ Φ^{-1}(p_A); 0 where p_A ≤ 1/2 (no certificate)."""
    p_a = np.asarray(p_a, dtype=np.float64)
    return np.where(p_a > 0.5, sigma * special.ndtri(np.clip(p_a, 0.5, 1.0)), 0.0)


def majority_votes(n: int) -> int:
    """k = ⌊n/2⌋ + 1, the votes for a strict majority out of n."""
    return n // 2 + 1


def prob_adversarial_strict(pi0: float | np.ndarray, n: int) -> np.ndarray:
    """P[Bin(n, 1 − π0) ≥ k]: a strict majority of the n votes is wrong (eq. 4–5's event)."""
    return special.bdtrc(majority_votes(n) - 1, n, 1.0 - np.asarray(pi0, dtype=np.float64))


def threshold_exact(n: int, p_a: float) -> float:
    """Eq. (5), exact: the largest π0(x_a) for which P[strict wrong majority] ≥ P_a.

    P[Bin(n, q) ≥ k] = I_q(k, n − k + 1), so π0 ≤ 1 − I^{-1}_{P_a}(k, n − k + 1), k = ⌊n/2⌋+1.
    """
    check_count("n", n)
    check_probability("P_a", p_a)
    k = majority_votes(n)
    return float(1.0 - special.betaincinv(k, n - k + 1, p_a))


def threshold_paper(n: int, p_a: float, variant: str = "floor") -> float:
    """Eq. (5) as printed: π0 < 1 − I^{-1}_{P_a}(ñ, ñ), with ñ = 1 + ⌊n/2⌋ (English version,
    variant="floor") or ñ = 1 + ⌈n/2⌉ (French version, variant="ceil").

    I_q(ñ, ñ) = P[Bin(2ñ − 1, q) ≥ ñ]: the closed form is the exact strict-majority threshold
    of an odd number 2ñ − 1 of votes. Hence:
      - odd n, floor: 2ñ − 1 = n, exactly `threshold_exact`;
      - odd n, ceil: the threshold of n + 2 votes (slightly further from 1/2);
      - even n (both variants coincide): the threshold of n + 1 votes, i.e. a tie of the n
        votes is settled by one extra vote, wrong with probability 1 − π0. For P_a > 1/2 the
        ordering is threshold_exact (strict majority) < threshold_random_tie (rsviz's rule,
        a tie counts ½) < threshold_paper: the printed form is less demanding than both.
    """
    check_count("n", n)
    check_probability("P_a", p_a)
    if variant not in ("floor", "ceil"):
        raise ConfigError(f"Unknown variant {variant!r} of the paper's eq. (5) (floor or ceil).")
    half = math.floor(n / 2) if variant == "floor" else math.ceil(n / 2)
    n_tilde = 1 + half
    return float(1.0 - special.betaincinv(n_tilde, n_tilde, p_a))


def prob_wrong_binomial(p_y: float | np.ndarray, n: int) -> np.ndarray:
    """P[g_{σ,n} ≠ y] for two classes with rsviz's random tie-break (a tie counts ½):
    P[W > n/2] + ½ P[W = n/2], W ~ Bin(n, 1 − p_y), p_y = π0 the probability of y under noise.

    With more than two classes this is the top-vs-rest bound (all other votes pooled).
    """
    q = 1.0 - np.asarray(p_y, dtype=np.float64)
    k = n // 2
    if n % 2:
        return special.bdtrc(k, n, q)
    return 0.5 * (special.bdtrc(k, n, q) + special.bdtrc(k - 1, n, q))  # ½(P[W > k] + P[W ≥ k])


def threshold_random_tie(n: int, p_a: float) -> float:
    """Largest π0 with P[g_{σ,n} ≠ y] ≥ P_a under the random tie-break rsviz implements
    (equals `threshold_exact` for odd n)."""
    check_count("n", n)
    check_probability("P_a", p_a)
    lo, hi = 0.0, 1.0  # P[g ≠ y] falls from 1 to 0 as π0 goes from 0 to 1: bisection
    while True:
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            return float(mid)
        if prob_wrong_binomial(mid, n) >= p_a:
            lo = mid
        else:
            hi = mid


def extra_distance(sigma: float, pi0_threshold: float) -> float:
    """Eq. (6): ‖x_o − x_a‖ ≥ R(x_o, σ) + σ Φ^{-1}(1 − π0*); this returns the second term.

    The paper writes σ Φ^{-1}(I^{-1}_{P_a}(ñ, ñ)), i.e. 1 − π0* with its own threshold; pass
    `threshold_exact(n, P_a)` for the exact form. Valid when f is locally linear between the
    RS boundary and x_a (eq. 2 applied to x_a); the extra distance is positive when π0* < 1/2.
    """
    check_sigma(sigma)
    if not 0 < pi0_threshold < 1:
        raise ConfigError(f"π0 threshold must lie strictly between 0 and 1 (got {pi0_threshold!r}).")
    return float(sigma * special.ndtri(1.0 - pi0_threshold))


def shortcut_wrong_votes(n: int, p_a: float) -> int:
    """The paper's experimental shortcut: x_a is adversarial at level P_a when at least
    ⌈n·P_a⌉ of its n votes are wrong."""
    check_count("n", n)
    check_probability("P_a", p_a)
    return int(math.ceil(n * p_a - 1e-12))


def theory_summary(n: int, p_a: float, sigma: float | None = None,
                   p_lower: float | None = None) -> dict[str, float | int | None]:
    """Everything the theory panel and `rsviz theory` show for (n, P_a[, σ, p̲_A])."""
    if p_lower is not None:
        check_probability("p̲_A", p_lower)
    exact = threshold_exact(n, p_a)
    out: dict[str, float | int | None] = {
        "n": n, "pa": p_a,
        "threshold_exact": exact,
        "threshold_random_tie": threshold_random_tie(n, p_a),
        "threshold_paper": threshold_paper(n, p_a, "floor"),
        "threshold_paper_fr": threshold_paper(n, p_a, "ceil"),
        "shortcut_wrong_votes": shortcut_wrong_votes(n, p_a),
    }
    if sigma is not None:
        out["sigma"] = sigma
        out["extra_distance"] = extra_distance(sigma, exact)
        out["extra_distance_paper"] = extra_distance(sigma, out["threshold_paper"])  # type: ignore[arg-type]
        if p_lower is not None:
            radius = float(certified_radius(p_lower, sigma))
            out["p_lower"] = p_lower
            out["radius"] = radius
            out["min_distance"] = radius + float(out["extra_distance"])  # type: ignore[arg-type]
    return out
