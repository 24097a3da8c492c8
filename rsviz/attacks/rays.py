"""RayS (Chen & Gu, KDD 2020): hard-label L∞ attack by ray search.

The attack looks for the ray direction s ∈ {−1, +1}^d whose decision boundary radius
g(s) = min{r : clip(x_o + r s) adversarial} is smallest (eq. 3 of the paper). Directions are
improved by hierarchical sign flips (Algorithm 3): at level k the coordinates are cut into 2^k
contiguous blocks, each block's signs are flipped in turn, and a flip is kept when it lowers
g. A flip is first checked with ONE query at the current best radius (if the new ray is not
adversarial there, it cannot beat the best); only then a binary search on the radius runs
(Algorithm 2). Levels go 0, 1, 2, ... until blocks are single coordinates.

Defaults, from the paper and the authors' reference code:
- start: s_0 = all +1, whose level-0 block is the whole vector, so the first ray the search
  tries is all −1 (the authors' code never queries s_0 itself; the paper's Algorithm 3
  evaluates g(s_0) first, which costs one more ray, ~20 queries at 224²); until a ray is
  adversarial its radius is found by a linear search r = 1, 2, ..., 10 (in L∞ units, r ≥ 1
  already saturates every pixel);
- binary search tolerance 10⁻³ on the L2 length of the unclipped ray r‖s‖₂ = r√d, i.e.
  10⁻³/√d in L∞ units.

The distortion RayS minimises is L∞; rsviz reports the L2 of the same point too (the paper
under study, Maho et al. 2022, compares attacks in L2).
"""

from __future__ import annotations

import math
from typing import Iterator

import torch

from rsviz.attacks.base import AttackState, make_state
from rsviz.attacks.bisection import bisect
from rsviz.attacks.oracle import Oracle
from rsviz.config import check_count
from rsviz.errors import ConfigError


def ray_point(x_o: torch.Tensor, signs: torch.Tensor, radius: float) -> torch.Tensor:
    """clip(x_o + r s) in [0,1]^d."""
    return (x_o + radius * signs).clamp(0.0, 1.0)


def radius_search(oracle: Oracle, x_o: torch.Tensor, signs: torch.Tensor, high: float,
                  tol: float) -> float:
    """Bisection of the radius on [0, high], `high` already adversarial; returns the smallest
    accepted radius (`high` if none below it was accepted)."""
    return bisect(lambda r: bool(oracle.is_adversarial(ray_point(x_o, signs, r))), 0.0, high, tol)


def block_bounds(dim: int, level: int, index: int) -> tuple[int, int]:
    """[start, end) of block `index` when `dim` coordinates are cut into 2^level blocks."""
    size = math.ceil(dim / 2 ** level)
    return index * size, min(dim, (index + 1) * size)


class RayS:
    """RayS, hard-label L∞ ray search (Chen & Gu, KDD 2020).

    Distance: L∞ in [0,1]^d (the L2 of the point is reported too).

    Args:
        lin_search_steps: radii 1..lin_search_steps tried to initialise the first ray (paper's
            code: 10).
        tol: binary search tolerance on the L2 length r√d of the unclipped ray (paper's code:
            10⁻³).
    """

    name = "rays"

    def __init__(self, lin_search_steps: int = 10, tol: float = 1e-3) -> None:
        check_count("lin_search_steps", lin_search_steps)
        if not tol > 0:
            raise ConfigError(f"tol must be positive (got {tol!r}).")
        self.lin_search_steps = lin_search_steps
        self.tol = float(tol)

    def radius_tolerance(self, oracle: Oracle) -> float:
        """Tolerance of the radius bisection on r√d (the paper's: `tol`); the hook a variant
        (the RS-aware RayS) overrides."""
        return self.tol

    def _initial(self, oracle: Oracle, x_o: torch.Tensor, signs: torch.Tensor,
                 tol: float) -> float | None:
        for r in range(1, self.lin_search_steps + 1):
            if bool(oracle.is_adversarial(ray_point(x_o, signs, float(r)))):
                return radius_search(oracle, x_o, signs, float(r), tol)
        return None

    def steps(self, oracle: Oracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]:
        x_o = x_o.to(oracle.device, torch.float32)
        dim = x_o.numel()
        tol = self.radius_tolerance(oracle) / math.sqrt(dim)
        best_signs = torch.ones_like(x_o)   # s_0 = all +1; the first ray tried is its
        best_r = math.inf                    # level-0 flip (all −1), as in the authors' code
        level, index, iteration = 0, 0, 0
        max_level = math.ceil(math.log2(dim))
        while True:
            start, end = block_bounds(dim, level, index)
            signs = best_signs.clone().view(-1)
            signs[start:end] *= -1
            signs = signs.view_as(x_o)
            phase = f"level {level}, block {index}"
            index += 1
            if end >= dim:
                level, index = min(level + 1, max_level), 0
            if math.isinf(best_r):
                radius = self._initial(oracle, x_o, signs, tol)
                improved = radius is not None
                phase = f"initialisation ({phase})"
            elif bool(oracle.is_adversarial(ray_point(x_o, signs, best_r))):
                radius = radius_search(oracle, x_o, signs, best_r, tol)
                improved = radius < best_r
            else:
                radius, improved = None, False
            if improved:
                best_r, best_signs = float(radius), signs
            current = ray_point(x_o, best_signs, best_r) if math.isfinite(best_r) else None
            yield make_state(oracle, iteration, current, phase)
            iteration += 1
