"""Where the ideal smoothed classifier g_σ changes its mind along a ray: ∂g_σ, found before
anything is drawn around it.

Along x(t) = x_o + t·u, ∂g_σ is the distance where p_y(x(t)) = P[f(x(t) + σN) = y] falls to ½.
`find_gsigma` locates it with a bounded budget:

1. x_o itself is tested first: when g_σ already disagrees there, nothing lies "beyond".
2. Doubling: t₀, 2t₀, 4t₀, … up to the cap (`GSigmaSearch.cap_sigmas`·σ), all tested in one
   call, until a point lies on the far side of ½.
3. Bisection of the bracket [low, high] for `steps` halvings.

Each point is tested with *sequential votes* (`rsviz.smoothing.lazy_sample`): votes come in
rounds of `round_votes` and a point stops as soon as a Clopper–Pearson interval at level α
excludes ½ (which side it is on is then known), or at `max_votes` (decided by p̂, flagged).
Far from ∂g_σ a point costs one round; only points near it use the full budget. The repeated
looks make α per point approximate (a few times α), which is fine for locating a crossing.

When no crossing lies within the cap, the result says so with the lower bound reached: the
paper's finding that smoothing pushes the boundary out in concave regions, not an empty plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch
from scipy import stats

from rsviz.attacks.bisection import bisect_bracket
from rsviz.config import GSigmaSearch
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.smoothing import forward_labels, lazy_sample, make_generator

FOUND, BEYOND_CAP, AT_XO = "found", "beyond cap", "disagrees at x_o"


@dataclass(frozen=True)
class GSigmaCrossing:
    """The outcome of `find_gsigma`.

    t: distance from x_o where p_y = ½ (the bisection's midpoint); None when not found.
    low: the farthest distance tested on y's side; high: the nearest on the other side (None
    when none). tested: (t, votes for y, votes drawn) of every point tested, in order.
    """

    status: str
    t: float | None
    low: float
    high: float | None
    sigma: float
    forward_passes: int
    tested: tuple[tuple[float, int, int], ...] = field(default=())

    @property
    def found(self) -> bool:
        return self.status == FOUND

    def describe(self) -> str:
        """One sentence for captions and the CLI."""
        if self.status == AT_XO:
            return ("g_σ already disagrees at x_o (p̂_y < ½ there): this image is not "
                    "correctly classified by the smoothed classifier at this σ.")
        if self.status == BEYOND_CAP:
            return (f"∂g_σ lies beyond {self.low:.3g} (= {self.low / self.sigma:.0f}σ) along "
                    "this direction: p̂_y stays above ½ as far as the search went — smoothing "
                    "pushed the boundary out (the paper's concave case).")
        return (f"∂g_σ at {self.t:.4g} from x_o (bracket {self.low:.4g}–{self.high:.4g}, "
                f"{self.forward_passes:,} forward passes).")


def _side(k: np.ndarray, m: np.ndarray, alpha: float) -> np.ndarray:
    """+1 where a two-sided Clopper–Pearson interval of k/m lies above ½, −1 below, 0 neither."""
    m = np.maximum(m, 1)
    low = np.where(k > 0, stats.beta.ppf(alpha / 2, k, m - k + 1), 0.0)
    high = np.where(k < m, stats.beta.ppf(1 - alpha / 2, k + 1, m - k), 1.0)
    return np.where(low > 0.5, 1, np.where(high < 0.5, -1, 0))


def sequential_counts(model: Classifier, points: torch.Tensor, y: int, sigma: float,
                      search: GSigmaSearch, generator: torch.Generator,
                      precision: str = "auto") -> tuple[np.ndarray, int]:
    """Sequential votes at each point, stopping once `_side` decides it: (counts [m, C] of the
    votes drawn, forward passes)."""
    def needed(counts: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        decided = _side(counts[:, y], drawn, search.alpha) != 0
        return np.where(decided, 0, search.round_votes)

    return lazy_sample(model, points, sigma, search.max_votes, generator, needed,
                       precision=precision, round_size=search.round_votes * len(points))


def sequential_votes(model: Classifier, points: torch.Tensor, y: int, sigma: float,
                     search: GSigmaSearch, generator: torch.Generator,
                     precision: str = "auto") -> tuple[np.ndarray, np.ndarray, int]:
    """Sequential votes at each point: (votes for y [m], votes drawn [m], forward passes)."""
    counts, passes = sequential_counts(model, points, y, sigma, search, generator, precision)
    return counts[:, y], counts.sum(1), passes


def find_gsigma(model: Classifier, x_o: torch.Tensor, direction: torch.Tensor, y: int,
                sigma: float, search: GSigmaSearch | None = None, start: float | None = None,
                seed: int = 0, progress: Progress | None = None,
                precision: str = "auto") -> GSigmaCrossing:
    """∂g_σ along x_o + t·u (u = `direction`, normalised here) from distance `start` (default
    σ): see the module docstring. Costs at most `search.max_passes()` forward passes."""
    search = search or GSigmaSearch()
    progress = progress or NullProgress()
    device = model.device
    x_o = x_o.to(device=device, dtype=torch.float32)
    u = direction.to(device=device, dtype=torch.float32)
    u = u / u.norm().clamp_min(1e-12)
    generator = make_generator(seed, device)
    tested: list[tuple[float, int, int]] = []
    passes = 0

    def run(ts: list[float]) -> np.ndarray:
        nonlocal passes
        progress.check_cancel()
        points = x_o[None] + torch.tensor(ts, device=device).view(-1, 1, 1, 1) * u[None]
        k, m, spent = sequential_votes(model, points, y, sigma, search, generator, precision)
        passes += spent
        tested.extend((float(t), int(a), int(b)) for t, a, b in zip(ts, k, m))
        progress.report(len(tested), search.max_points(), f"∂g_σ search: {len(tested)} points")
        return np.where(k * 2 >= m, 1, -1)  # the side by p̂ (the test only stops early)

    def result(status: str, t: float | None, low: float, high: float | None) -> GSigmaCrossing:
        return GSigmaCrossing(status, t, low, high, sigma, passes, tuple(tested))

    run([0.0])  # x_o, judged by the test as `check_at_xo` does (near ½: y's side)
    _, k, m = tested[-1]
    if _side(np.array([k]), np.array([m]), search.alpha)[0] < 0:
        return result(AT_XO, None, 0.0, 0.0)
    cap = search.cap_sigmas * sigma
    first = min(start if start and start > 0 else sigma, cap)
    ladder = [first * 2.0 ** i for i in range(search.doublings) if first * 2.0 ** i < cap] + [cap]
    sides = run(ladder)
    beyond = np.flatnonzero(sides < 0)
    if len(beyond) == 0:
        return result(BEYOND_CAP, None, ladder[-1], None)
    i = int(beyond[0])
    high, low = bisect_bracket(lambda t: run([t])[0] > 0, bad=ladder[i],
                               good=ladder[i - 1] if i > 0 else 0.0, tol=0.0,
                               max_steps=search.steps)
    return result(FOUND, 0.5 * (low + high), low, high)


class AtXo(NamedTuple):
    """The outcome of `check_at_xo`: does the ideal g_σ still give f's label y at x_o?

    agrees: False only when a sequential Clopper–Pearson test concludes p_y < ½ at level α
    (an x_o within sampling error of ∂g_σ agrees: its pages still have a boundary to show);
    p_hat: votes for y / votes drawn; g_label: the plurality of those votes (g_σ(x_o) as far
    as they tell); message: one sentence when g_σ disagrees, "" when it agrees.
    """

    agrees: bool
    p_hat: float
    g_label: int
    message: str


AT_XO_SEARCH = GSigmaSearch(round_votes=32, max_votes=256)


def check_at_xo(model: Classifier, x: torch.Tensor, sigma: float, seed: int = 0,
                y: int | None = None, search: GSigmaSearch | None = None) -> AtXo:
    """Whether g_σ agrees with f at x_o ([3, H, W]): the test `find_gsigma` starts with, alone
    and cheap (32–256 sequential votes, 1 forward pass more for f's label when `y` is None).
    Every page runs it before its Start button (ui.common.gsigma_warning)."""
    search = search or AT_XO_SEARCH
    x = x.to(device=model.device, dtype=torch.float32)
    if y is None:
        y = int(forward_labels(model, x[None], batch_size=1)[0])

    counts = sequential_counts(model, x[None], y, sigma, search,
                               make_generator(seed, model.device))[0][0]
    k, m = int(counts[y]), int(counts.sum())
    p_hat = k / max(m, 1)
    g_label = int(np.argmax(counts))
    if _side(np.array([k]), np.array([m]), search.alpha)[0] >= 0:
        return AtXo(True, p_hat, g_label, "")  # p_y ≥ ½, or too close to ½ to tell
    name = model.info.class_name
    said = (f"g_σ says {name(g_label)}" if g_label != y else "no class has half the votes")
    return AtXo(False, p_hat, g_label,
                f"g_σ already disagrees with f at x_o (σ = {sigma:g}): only {k} of {m} noisy "
                f"votes give f's label {name(y)} (p̂ = {p_hat:.2f} < ½) and {said}.")
