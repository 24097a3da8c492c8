"""Bisection on [0, 1], pure functions: many dichotomies in parallel, and their exact law."""

from __future__ import annotations

from typing import Callable

import numpy as np

from rsviz.dichotomy.config import Output
from rsviz.progress import Progress


FINE_STEPS = 40  # bisection steps used to locate ∂f and ∂g_σ (2^-40 of the segment)


def bisect(answer: Callable[[np.ndarray], np.ndarray], trials: int, steps: int,
           output: Output = "adversarial", progress: Progress | None = None) -> np.ndarray:
    """Run `trials` dichotomies of `steps` steps in parallel on [0, 1].

    Args:
        answer: maps the [T] current midpoints t to [T] booleans, True = adversarial.
        trials: T.
        steps: k.
        output: "adversarial" returns the final adversarial end, "midpoint" the last interval's
            centre.

    Returns:
        [T] output positions t.
    """
    lo, hi = np.zeros(trials), np.ones(trials)
    for step in range(steps):
        mid = (lo + hi) / 2
        adversarial = np.asarray(answer(mid), dtype=bool)
        hi = np.where(adversarial, mid, hi)
        lo = np.where(adversarial, lo, mid)
        if progress is not None:
            progress.report(step + 1, steps)
    return hi if output == "adversarial" else (lo + hi) / 2


def exact_output_distribution(q: Callable[[np.ndarray], np.ndarray], steps: int,
                              output: Output = "adversarial") -> tuple[np.ndarray, np.ndarray]:
    """Exact law of a k-step dichotomy whose query at t is adversarial with probability q(t).

    Dynamic programming over the 2^k leaves: the mass of an interval splits at its midpoint
    m into q(m) (left half kept) and 1 − q(m) (right half kept).

    Returns:
        (positions [2^k], probabilities [2^k]) of the output.
    """
    mass = np.ones(1)
    for depth in range(steps):
        width = 2.0 ** -depth
        mids = (np.arange(len(mass)) + 0.5) * width
        qm = np.clip(np.asarray(q(mids), dtype=np.float64), 0.0, 1.0)
        split = np.empty(2 * len(mass))
        split[0::2], split[1::2] = mass * qm, mass * (1 - qm)
        mass = split
    leaves = np.arange(len(mass))
    width = 2.0 ** -steps
    positions = (leaves + 1) * width if output == "adversarial" else (leaves + 0.5) * width
    return positions, mass


def crossing(adversarial: Callable[[np.ndarray], np.ndarray], steps: int = FINE_STEPS) -> float:
    """Where a deterministic decision along [0, 1] switches, located by bisection."""
    return float(bisect(adversarial, 1, steps, output="midpoint")[0])
