"""An oracle view that decides by sequential tests and reports only checked points.

`NoiseAwareOracle` wraps the counted `Oracle` and offers the same interface to an attack
(`is_adversarial`, `best_x`, `queries`, `remaining`, `x_o`, ...), so the published attacks run
on it unchanged. What changes:

- `is_adversarial(xs)` answers each point by a `SequentialTest` on repeated queries of
  g_{σ,n} (every repetition is one query of the wrapped oracle, counted and budgeted there);
- `probe(xs)` is one plain query per point, for estimates that average many answers anyway
  (HSJA's direction estimate): repeating there buys less than querying new directions;
- `best_x` is the closest point the *test* accepted (the attack's iterate), and
  `confirmed_x` the closest point that also passed eq. (4)'s level-P_a check by ℓ repeated
  queries (`confirm`): that is the point an RS-aware run reports;
- the last ℓ queries of the budget are kept back (`reserve`) so the final candidate can
  always be checked, and ℓ more per step of the final push (`secure`): the confirmed point is
  the closest of many that passed a noisy check, so its own q sits below the level (a
  winner's curse: median 0.43–0.49 for RayS and SurFree on the linear model); a *fresh*
  check of it, then of it pushed outward along its ray from x_o by σ, 2σ, 4σ (L2), reports
  the first that passes: at most 4σ more distortion. When no check passes the point stays
  as it was (it has just failed a fresh check: its empirical P_a will say so). The reserve
  allows `push_steps` checks only where ℓ·(1 + steps) ≤ 5 % of the budget: none below 400
  queries, the re-check alone at 400–599, the moves σ, 2σ, 4σ from 600, 800, 1 000.

Against the deterministic f (σ = None) nothing is repeated: a test is one query, the check is
free (the answer cannot change), and the reserve is 0, so an attack on this view makes exactly
the queries it makes on the plain oracle.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rsviz.attacks.oracle import Oracle
from rsviz.attacks.rs_aware.decisions import SequentialTest, level_check_needed
from rsviz.errors import BudgetExhausted, ConfigError


def push_offset(step: int) -> float:
    """The final push's outward move at `step`, in σ (L2): 0 (a fresh re-check), 1, 2, 4, …."""
    return 0.0 if step == 0 else 2.0 ** (step - 1)


def check_repeats_and_push(check_repeats: int, push_steps: int) -> None:
    """Raise unless ℓ ≥ 1 and push_steps ≥ 0 (`NoiseAware` checks them when built, the view
    when it is made)."""
    if int(check_repeats) < 1:
        raise ConfigError(f"check_repeats must be ≥ 1 (got {check_repeats}).")
    if int(push_steps) < 0:
        raise ConfigError(f"push_steps must be ≥ 0 (got {push_steps}).")


class NoiseAwareOracle:
    """Sequential-test decisions and level-P_a checked best points over a counted `Oracle`.

    Args:
        oracle: the counted oracle (f or g_{σ,n}); all queries go through it.
        test: the sequential test of every decision (its level is usually ½ or P_a).
        p_a: the level P_a of the check (default: the oracle's `p_a`).
        check_repeats: ℓ, repeated queries of the level-P_a check (eq. 4) of a candidate.
        push_steps: checks of the final push (`secure`), reduced so that the reserve stays
            ≤ 5 % of the budget (`self.push_steps` is what runs).

    `check_repeats` and `push_steps` have no default here: they are hyper-parameters of the
    RS-aware attacks, written once as `NoiseAware`'s keyword defaults (what the registry
    reads), which passes them on.
    """

    def __init__(self, oracle: Oracle, test: SequentialTest | None = None,
                 p_a: float | None = None, *, check_repeats: int, push_steps: int) -> None:
        check_repeats_and_push(check_repeats, push_steps)
        self.inner = oracle
        self.noisy = oracle.config.sigma is not None
        self.test = test or SequentialTest()
        self.check_repeats = int(check_repeats)
        self.p_a = float(oracle.config.p_a if p_a is None else p_a)
        # the final push keeps at most 5 % of the budget back (none at small budgets)
        self.push_steps = (max(0, min(int(push_steps), oracle.budget // (20 * check_repeats) - 1))
                           if self.noisy else 0)
        self.reserve = self.check_repeats * (1 + self.push_steps) if self.noisy else 0
        self.pushed = -1  # the push step that passed at the end (−1: none, or not run)
        if self.reserve >= oracle.budget:
            raise ConfigError(f"A budget of {oracle.budget} queries leaves nothing once "
                              f"{self.reserve} are kept for the level-P_a check.")
        self.best_x: torch.Tensor | None = None
        self.best_distance = float("inf")
        self.confirmed_x: torch.Tensor | None = None
        self.confirmed_distance = float("inf")
        self.checks = 0          # level checks run
        self.checks_passed = 0
        self.last_check_hits = -1  # adversarial answers of the last check (−1 before one)
        self.test_queries = 0     # queries spent inside sequential tests
        self.decisions = 0        # decisions asked by the attack (points tested)

    # ---------------------------------------------------------------- the oracle's interface

    def __getattr__(self, name: str) -> Any:
        # x_o, device, config, distance, dim, model, label, base_label... come from the oracle
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def queries(self) -> int:
        return self.inner.queries

    @property
    def forward_passes(self) -> int:
        return self.inner.forward_passes

    @property
    def budget(self) -> int:
        """The budget the attack sees: the oracle's, minus the reserve of the final check."""
        return self.inner.budget - self.reserve

    @property
    def remaining(self) -> int:
        return self.budget - self.inner.queries

    @property
    def best_l2(self) -> float:
        return float("inf") if self.best_x is None else float((self.best_x - self.x_o).norm())

    def _distance(self, xs: torch.Tensor) -> np.ndarray:
        delta = (xs - self.inner.x_o).flatten(1)
        dist = delta.norm(dim=1) if self.inner.distance == "l2" else delta.abs().amax(dim=1)
        return dist.cpu().numpy()

    def _query(self, xs: torch.Tensor, use_reserve: bool = False) -> np.ndarray:
        limit = self.inner.budget if use_reserve else self.budget
        if self.inner.queries + len(xs) > limit:
            raise BudgetExhausted(f"Budget of {limit} queries reached ({self.inner.queries} "
                                  f"used, {len(xs)} more asked; {self.reserve} kept back).")
        return self.inner.is_adversarial(xs).numpy().astype(bool)

    def probe(self, xs: torch.Tensor) -> torch.Tensor:
        """One plain query per point ([B] booleans), not tested and not kept as a candidate."""
        single = xs.dim() == 3
        xs = (xs[None] if single else xs).to(self.inner.device, torch.float32)
        out = torch.from_numpy(self._query(xs))
        return out[0] if single else out

    def is_adversarial(self, xs: torch.Tensor) -> torch.Tensor:
        """The sequential test's decision per point ([B] booleans, 0-d for one point)."""
        single = xs.dim() == 3
        xs = (xs[None] if single else xs).to(self.inner.device, torch.float32)
        m = len(xs)
        if m == 0:
            return torch.zeros(0, dtype=torch.bool)
        self.decisions += m
        if not self.noisy:
            accepted = self._query(xs)
        else:
            llr = np.zeros(m)
            answers = np.zeros(m, dtype=np.int64)
            todo = np.arange(m)
            while len(todo):
                before = self.inner.queries
                hits = self._query(xs[torch.from_numpy(todo).to(xs.device)])
                self.test_queries += self.inner.queries - before
                llr[todo] = self.test.update(llr[todo], hits)
                answers[todo] += 1
                todo = todo[~self.test.decided(llr[todo], answers[todo])]
            accepted = llr > 1e-12
        if accepted.any():
            dist = self._distance(xs)
            for i in np.flatnonzero(accepted):
                if dist[i] < self.best_distance:
                    self.best_distance, self.best_x = float(dist[i]), xs[i].detach().clone()
        out = torch.from_numpy(accepted)
        return out[0] if single else out

    # ------------------------------------------------------------------ the level-P_a check

    def level_check(self, x: torch.Tensor, use_reserve: bool = False) -> bool:
        """Eq. (4)'s check by ℓ repeated queries: more than ℓ·P_a adversarial answers (free
        on f)."""
        if not self.noisy:
            return True  # a point the deterministic f accepted stays accepted
        x = x.to(self.inner.device, torch.float32)
        hits = self._query(x[None].expand(self.check_repeats, *x.shape).contiguous(),
                           use_reserve=use_reserve)
        self.checks += 1
        self.last_check_hits = int(hits.sum())
        passed = self.last_check_hits >= level_check_needed(self.check_repeats, self.p_a)
        self.checks_passed += int(passed)
        return passed

    def confirm(self, final: bool = False) -> bool:
        """Check the current candidate if it is closer than the confirmed point.

        A candidate that passes becomes `confirmed_x`; one that fails is dropped (`best_x`
        goes back to the confirmed point, so an attack that restarts from `best_x` restarts
        from a checked point). `final` lets the check use the reserved queries.
        Returns whether a new point was confirmed.
        """
        if self.best_x is None or self.best_distance >= self.confirmed_distance:
            return False
        if self.level_check(self.best_x, use_reserve=final):
            self.confirmed_x, self.confirmed_distance = self.best_x, self.best_distance
            return True
        self.best_x, self.best_distance = self.confirmed_x, self.confirmed_distance
        return False

    def secure(self) -> bool:
        """The final push, on reserved queries: fresh level-P_a checks of the confirmed point,
        then of it moved outward along its ray from x_o by σ, 2σ, 4σ, … (L2; `push_steps`
        checks in all, points kept in [0, 1]^d); the first that passes becomes the reported
        point (`pushed`: its step, 0 = not moved). Nothing happens against f, or without a
        confirmed point. Returns whether a check passed."""
        if not self.noisy or self.confirmed_x is None:
            return False
        x_o = self.inner.x_o
        delta = self.confirmed_x - x_o
        length = float(delta.norm())
        sigma = float(self.inner.config.sigma)
        for k in range(self.push_steps):
            x = (x_o + delta * (1 + sigma * push_offset(k) / max(length, 1e-12))).clamp(0, 1)
            if self.level_check(x, use_reserve=True):
                self.pushed = k
                self.confirmed_x = self.best_x = x
                self.confirmed_distance = self.best_distance = float(self._distance(x[None])[0])
                return True
        return False


class ProbeView:
    """The `is_adversarial` of a `NoiseAwareOracle` as plain single queries (for estimators
    written against an oracle, such as HSJA's `estimate_direction`)."""

    def __init__(self, oracle: NoiseAwareOracle) -> None:
        self.oracle = oracle

    def is_adversarial(self, xs: torch.Tensor) -> torch.Tensor:
        return self.oracle.probe(xs)
