"""Decisions that survive the noise of g_{σ,n}: sequential tests on repeated queries.

A query of g_{σ,n} at x answers "adversarial" with probability q(x) = P[g_{σ,n}(x) adversarial]
(for the untargeted single-draw criterion and two classes, q = P[Bin(n, 1 − π0(x)) > n/2] plus
half the tie), a smooth function of the distance to ∂g_σ: it crosses 1/2 on ∂g_σ and goes
from ~0.1 to ~0.9 over about one σ along the normal for n = 10. One answer near the boundary
is a coin flip. The attacker only sees decisions, so everything here is built from repeated
decisions — each one a query, counted by the oracle like any other.

- `SequentialTest`: Wald's sequential probability ratio test of H1: q ≥ level + ε against
  H0: q ≤ level − ε on repeated answers at the same point, truncated after `max_repeats`
  answers (then the sign of the log-likelihood ratio decides, a tie is "not adversarial").
  The RS-aware attacks use level P_a + 0.15 (0.65 at P_a = ½) and ε = 0.25: an answer
  "adversarial" needs about three adversarial answers net (at q = 1: 3 queries, at q = 0: 2),
  and the test says yes half the time at q ≈ 0.64.
- `level_check_needed`: eq. (4)'s test at level P_a by ℓ repeated queries: x is accepted when
  more than ℓ·P_a of the ℓ answers are adversarial.
- `repeats_needed`: 1 against the deterministic f (σ = None): nothing is repeated there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rsviz.errors import ConfigError

PROB_FLOOR = 0.01  # hypotheses are kept inside [PROB_FLOOR, 1 − PROB_FLOOR]


@dataclass(frozen=True)
class SequentialTest:
    """Wald's SPRT on the Bernoulli answers of repeated queries at one point.

    Attributes:
        level: the probability of an adversarial answer that splits "adversarial" from not
            (½ locates ∂g_σ; P_a locates eq. (4)'s level set).
        margin: ε, the hypotheses are q = level − ε and q = level + ε (clipped to [0.01, 0.99]).
        error: α = β, the error rates of the untruncated test at the two hypotheses.
        max_repeats: answers at most (the truncation).
    """

    level: float = 0.5
    margin: float = 0.3
    error: float = 0.1
    max_repeats: int = 7

    def __post_init__(self) -> None:
        if not 0.0 < self.level < 1.0:
            raise ConfigError(f"The test level must lie in (0, 1) (got {self.level}).")
        if not 0.0 < self.margin < 0.5 or not 0.0 < self.error < 0.5:
            raise ConfigError("The test needs 0 < margin < 0.5 and 0 < error < 0.5.")
        if self.max_repeats < 1:
            raise ConfigError(f"max_repeats must be ≥ 1 (got {self.max_repeats}).")

    @property
    def hypotheses(self) -> tuple[float, float]:
        """(q0, q1): the answer probabilities of "not adversarial" and "adversarial"."""
        q0 = min(max(self.level - self.margin, PROB_FLOOR), 1 - 2 * PROB_FLOOR)
        q1 = max(min(self.level + self.margin, 1 - PROB_FLOOR), q0 + PROB_FLOOR)
        return q0, q1

    @property
    def steps(self) -> tuple[float, float]:
        """Log-likelihood-ratio increments of an adversarial and a non-adversarial answer."""
        q0, q1 = self.hypotheses
        return math.log(q1 / q0), math.log((1 - q1) / (1 - q0))

    @property
    def bound(self) -> float:
        """The test stops when |LLR| ≥ log((1 − α)/α)."""
        return math.log((1 - self.error) / self.error)

    def decided(self, llr: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """Which points are settled (bound crossed or `max_repeats` answers drawn)."""
        return (np.abs(llr) >= self.bound - 1e-12) | (answers >= self.max_repeats)

    def update(self, llr: np.ndarray, adversarial: np.ndarray) -> np.ndarray:
        """LLR after one more answer per point."""
        up, down = self.steps
        return llr + np.where(adversarial, up, down)

    def accept_probability(self, q: float) -> float:
        """Exact probability that the test says "adversarial" when each answer is adversarial
        with probability q (dynamic programming over the answer counts; used by the tests)."""
        up, down = self.steps
        states = {0: 1.0}  # adversarial answers so far -> probability, at `k` answers drawn
        accept = 0.0
        for k in range(self.max_repeats):
            nxt: dict[int, float] = {}
            for a, p in states.items():
                for hit, w in ((1, q), (0, 1 - q)):
                    a2 = a + hit
                    llr = a2 * up + (k + 1 - a2) * down
                    if abs(llr) >= self.bound - 1e-12 or k + 1 >= self.max_repeats:
                        accept += p * w if llr > 1e-12 else 0.0
                    else:
                        nxt[a2] = nxt.get(a2, 0.0) + p * w
            states = nxt
        return accept

    def expected_repeats(self, q: float) -> float:
        """Exact expected number of answers the test draws at answer probability q."""
        up, down = self.steps
        states = {0: 1.0}
        expected = 0.0
        for k in range(self.max_repeats):
            expected += sum(states.values())
            nxt: dict[int, float] = {}
            for a, p in states.items():
                for hit, w in ((1, q), (0, 1 - q)):
                    a2 = a + hit
                    llr = a2 * up + (k + 1 - a2) * down
                    if not (abs(llr) >= self.bound - 1e-12 or k + 1 >= self.max_repeats):
                        nxt[a2] = nxt.get(a2, 0.0) + p * w
            states = nxt
        return expected


def level_check_needed(repeats: int, p_a: float) -> int:
    """Adversarial answers out of ℓ = `repeats` that pass eq. (4)'s level-P_a check: strictly
    more than ℓ·P_a (6 of 10 at P_a = ½; a point exactly on the level set passes 38 % of the
    time, one at q = 0.7 passes 85 %)."""
    return min(repeats, math.floor(repeats * p_a + 1e-9) + 1)


def default_test_level(p_a: float) -> float:
    """The level of the decisions' test: a little above P_a (P_a + 0.15, at most 0.9), so the
    bisections settle where the level-P_a check passes most of the time."""
    return min(p_a + 0.15, 0.9)
