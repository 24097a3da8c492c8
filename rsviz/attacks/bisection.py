"""The one bisection every attack uses: shrink a bracket around a decision boundary.

HSJA bisects the blend factor between x_o and an adversarial point, RayS the radius of a ray,
SurFree the blend of its starting point and the angle on its circle (its mirror check too: the
decision it bisects may switch side), and the RS-aware figure the distance to ∂g_σ along a ray.
All of them keep a `good` end the decision accepted and a `bad` end it rejected (or that is
assumed rejected), query the midpoint, and move one end; they differ only in when to stop and
in which end they report.
"""

from __future__ import annotations

from typing import Callable


def bisect_bracket(accepts: Callable[[float], bool], bad: float, good: float, tol: float,
                   max_steps: int | None = None,
                   scale: Callable[[float], float] | None = None) -> tuple[float, float]:
    """Bisection between a rejected parameter `bad` and an accepted one `good`.

    Queries `accepts(mid)` at the midpoint and moves the end of the same verdict, until
    |scale(good) − scale(bad)| ≤ tol or after `max_steps` queries. Returns the final bracket
    (bad, good). `scale` (identity by default) is where the tolerance is measured, e.g.
    cos θ for an angle.
    """
    measure = scale or (lambda t: t)
    steps = 0
    while abs(measure(good) - measure(bad)) > tol and (max_steps is None or steps < max_steps):
        mid = (bad + good) / 2
        if accepts(mid):
            good = mid
        else:
            bad = mid
        steps += 1
    return bad, good


def bisect(accepts: Callable[[float], bool], bad: float, good: float, tol: float,
           max_steps: int | None = None,
           scale: Callable[[float], float] | None = None) -> float:
    """The accepted end of `bisect_bracket` (`good` itself when no midpoint was accepted):
    the point an attack keeps, since the decision said yes there."""
    return bisect_bracket(accepts, bad, good, tol, max_steps, scale)[1]
