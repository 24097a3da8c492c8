"""RS-aware variants of HSJA, SurFree and RayS: the published attacks, told that g is random.

Each variant is the plain attack driven through a `NoiseAwareOracle` by `NoiseAware`
(composition: the decisions and the level-P_a check live in the oracle view and the wrapper),
plus, for HSJA and RayS, a subclass of the published attack that overrides only its hooks
(HSJA: probes, probe radius, bisection threshold, reserve, phase; RayS: the bisection's
tolerance) and adds the few hyper-parameters that only make sense against noise. Every
hyper-parameter is written once, as a keyword default of an `__init__` (`REGISTRY` reads them
with `signature_defaults`). What each one changes (σ, n and P_a of the defence are public):

- all three: every decision (initial noise, step or ray check, every bisection step) is a
  sequential test on repeated queries (`SequentialTest`, level P_a + 0.15 by default: the
  tests steer to just outside eq. (4)'s level set, ∂g_σ at P_a = ½) instead of one answer; the reported point is the closest one that passed
  eq. (4)'s level-P_a check by ℓ repeated queries (`check_repeats`), run once per outer
  iteration on the new candidate and once more, on reserved queries, at the end; then the
  final push (`push_steps`): a fresh check of that point, else of it moved σ, 2σ, 4σ
  outward along its ray, because the closest of many noisy passes is a lucky one;
- HSJA: the direction estimate keeps single queries (more directions beat repeated answers
  for an average of ±1's) but probes at δ = max(δ_t, `probe_scale`·σ√d): a random unit
  direction u moves x along the normal of ∂g_σ by only δ/√d, and g's answers change over about
  σ there, so the paper's δ_t (≈ 10⁻² at ‖x − x_o‖ = 60 on 224², against σ√d ≈ 19 at σ = 0.05)
  probes pure noise. The probes' vote fraction (share of adversarial answers) is reported in
  the phase and centres the estimate. The bisection stops at `bisection_tol`·σ along the
  segment instead of θ: the test cannot place the boundary more finely than its width;
- RayS: the radius bisection stops at `tol_sigma`·σ (on r√d, RayS's own unit) for the same
  reason;
- SurFree: decisions only (its angle search already stops at a coarse precision).

Against f (σ = None) every change vanishes (one query per decision, free check, the paper's
δ_t and θ): the variant makes the plain attack's queries exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator

import torch

from rsviz.attacks.base import AttackState, Stalled, distortions, make_state, signature_defaults
from rsviz.attacks.hsja import HopSkipJump, binary_search_steps
from rsviz.attacks.oracle import Oracle
from rsviz.attacks.rays import RayS
from rsviz.attacks.rs_aware.decisions import SequentialTest, default_test_level
from rsviz.attacks.rs_aware.noisy_oracle import (NoiseAwareOracle, ProbeView,
                                                 check_repeats_and_push, push_offset)
from rsviz.errors import BudgetExhausted, ConfigError


class NoiseAware:
    """Drive a decision-based attack on a `NoiseAwareOracle` and report checked points only.

    Args:
        inner: the attack; its `steps` receives the noise-aware oracle (`.inner` is the
            counted one).
        name: registry name of the variant.
        test_level, test_margin, test_error, max_repeats: the `SequentialTest` of decisions
            (test_level None: `default_test_level(P_a)`).
        check_repeats: ℓ of the level-P_a check.
        push_steps: steps of the final push (`NoiseAwareOracle.secure`; 0: none).
    """

    def __init__(self, inner: Any, name: str, test_level: float | None = None,
                 test_margin: float = 0.25, test_error: float = 0.1, max_repeats: int = 7,
                 check_repeats: int = 10, push_steps: int = 4) -> None:
        self.inner = inner
        self.name = name
        self.test_level = test_level
        self.test_params = dict(margin=float(test_margin), error=float(test_error),
                                max_repeats=int(max_repeats))
        SequentialTest(level=0.5 if test_level is None else float(test_level),
                       **self.test_params)  # validates now, not at the first query
        check_repeats_and_push(check_repeats, push_steps)
        self.check_repeats = int(check_repeats)
        self.push_steps = int(push_steps)

    def _state(self, noisy: NoiseAwareOracle, state: AttackState) -> AttackState:
        best = noisy.confirmed_x
        l2, linf = distortions(best, noisy.x_o) if best is not None else (float("inf"),) * 2
        phase = state.phase
        if noisy.noisy:
            phase += f" · checks passed {noisy.checks_passed}/{noisy.checks}"
        return dataclasses.replace(state, queries=noisy.queries,
                                   forward_passes=noisy.forward_passes,
                                   x_adv=None if best is None else best.detach().clone(),
                                   l2=l2, linf=linf, phase=phase)

    def steps(self, oracle: Oracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]:
        level = (default_test_level(oracle.config.p_a) if self.test_level is None
                 else float(self.test_level))
        noisy = NoiseAwareOracle(oracle, SequentialTest(level=level, **self.test_params),
                                 check_repeats=self.check_repeats, push_steps=self.push_steps)
        last: AttackState | None = None
        try:
            for state in self.inner.steps(noisy, x_o, generator):
                noisy.confirm()
                last = self._state(noisy, state)
                yield last
        except (BudgetExhausted, Stalled):  # either way: the final check and push still run
            pass
        try:
            noisy.confirm(final=True)
            noisy.secure()
        except BudgetExhausted:
            pass
        iteration = (last.iteration + 1) if last is not None else 0
        phase = "end: level-P_a check of the last candidate"
        if noisy.push_steps and noisy.confirmed_x is not None:
            phase += {-1: ", final push: no check passed", 0: ", fresh re-check passed"}.get(
                noisy.pushed, f", pushed {push_offset(noisy.pushed):g}σ outward")
        yield self._state(noisy, make_state(oracle, iteration, noisy.best_x, phase))


TEST_KEYS = tuple(signature_defaults(NoiseAware))  # the test's, the check's and the push's


def noise_aware(core: type, **params: Any) -> NoiseAware:
    """The RS-aware variant: `core` (an attack class) built from its own `params`, driven by a
    `NoiseAware` built from the rest (`TEST_KEYS`)."""
    test = {k: v for k, v in params.items() if k in TEST_KEYS}
    core_params = {k: v for k, v in params.items() if k not in TEST_KEYS}
    return NoiseAware(core(**core_params), core.name, **test)


def noise_aware_defaults(core: type) -> dict[str, Any]:
    """The hyper-parameters an RS-aware run of `core` starts from: the core's and the
    wrapper's keyword defaults."""
    return {**signature_defaults(core), **signature_defaults(NoiseAware)}


class RSAwareHopSkipJump(HopSkipJump):
    """HSJA with σ-scaled probes and a σ-wide bisection: the published loop, its hooks
    overridden (each returns the paper's value against f, σ = None).

    Args:
        probe_scale: δ = max(δ_t, probe_scale·σ√d) for the direction estimate.
        bisection_tol: the bisection stops at bisection_tol·σ (L2 along the segment).
        plain: the plain HSJA's hyper-parameters.
    """

    def __init__(self, probe_scale: float = 1.0, bisection_tol: float = 0.5,
                 **plain: Any) -> None:
        if not (probe_scale >= 0 and bisection_tol > 0):
            raise ConfigError("probe_scale must be ≥ 0 and bisection_tol > 0.")
        super().__init__(**plain)
        self.probe_scale = float(probe_scale)
        self.bisection_tol = float(bisection_tol)

    def search_threshold(self, oracle: Oracle, x_o: torch.Tensor, x_far: torch.Tensor) -> float:
        """θ of a bisection that stops at bisection_tol·σ along the segment (at most ¼): the
        test cannot place the boundary more finely than its width."""
        theta = super().search_threshold(oracle, x_o, x_far)
        sigma = oracle.config.sigma
        if sigma is None:
            return theta
        length = float((x_far - x_o).norm())
        return min(0.25, max(theta, self.bisection_tol * sigma / max(length, 1e-12)))

    def probes(self, oracle: Oracle) -> Any:
        """Single queries (`ProbeView`): more directions beat repeated answers for an average
        of ±1's."""
        return oracle if oracle.config.sigma is None else ProbeView(oracle)

    def probe_radius(self, oracle: Oracle, t: int, d: int, dist: float) -> float:
        """δ = max(δ_t, probe_scale·σ√d): narrower probes only see g's noise."""
        delta = super().probe_radius(oracle, t, d, dist)
        sigma = oracle.config.sigma
        return delta if sigma is None else max(delta, self.probe_scale * sigma * math.sqrt(d))

    def iteration_reserve(self, oracle: Oracle, x_o: torch.Tensor, x_b: torch.Tensor) -> int:
        """The expected cost of a step search and a bisection, ~3 answers a tested decision,
        and one level-P_a check."""
        if oracle.config.sigma is None:
            return super().iteration_reserve(oracle, x_o, x_b)
        return 3 * (binary_search_steps(self.search_threshold(oracle, x_o, x_b)) + 4) \
            + oracle.check_repeats

    def phase(self, oracle: Oracle, t: int, num_evals: int, delta: float,
              stepped: bool) -> str:
        if oracle.config.sigma is None:
            return super().phase(oracle, t, num_evals, delta, stepped)
        if t == 0:
            return "initialisation (tested bisection)"
        if not stepped:
            return f"iteration {t}: no adversarial step ({num_evals} probes, δ={delta:.3g})"
        return f"iteration {t}: {num_evals} probes at δ={delta:.3g}"


class RSAwareRayS(RayS):
    """RayS whose radius bisection stops at tol_sigma·σ (on r√d, RayS's own unit) when that
    exceeds `tol`: the test cannot place the boundary more finely.

    Args:
        tol_sigma: bisection tolerance on r√d in units of σ.
        plain: the plain RayS's hyper-parameters.
    """

    def __init__(self, tol_sigma: float = 0.5, **plain: Any) -> None:
        if not tol_sigma > 0:
            raise ConfigError(f"tol_sigma must be positive (got {tol_sigma!r}).")
        super().__init__(**plain)
        self.tol_sigma = float(tol_sigma)

    def radius_tolerance(self, oracle: Oracle) -> float:
        tol = super().radius_tolerance(oracle)
        sigma = oracle.config.sigma
        return tol if sigma is None else max(tol, self.tol_sigma * sigma)
