"""RS-aware variants of HSJA, SurFree and RayS: the published attacks, told that g is random.

Each variant is the plain attack driven through a `NoiseAwareOracle` (composition, no edit of
the published attack's code), plus, for HSJA and RayS, the few hyper-parameters that only make
sense against noise. What each one changes (σ, n and P_a of the defence are public):

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

from rsviz.attacks.base import AttackState, Stalled, distortions, make_state
from rsviz.attacks.hsja import (HopSkipJump, binary_search, binary_search_steps,
                                estimate_direction, geometric_step, uniform_start)
from rsviz.attacks.oracle import Oracle
from rsviz.attacks.rays import RayS
from rsviz.attacks.rs_aware.decisions import SequentialTest, default_test_level
from rsviz.attacks.rs_aware.noisy_oracle import NoiseAwareOracle, ProbeView, push_offset
from rsviz.attacks.surfree import SurFree
from rsviz.errors import BudgetExhausted, ConfigError

TEST_KEYS = ("test_margin", "test_error", "max_repeats", "check_repeats", "test_level",
             "push_steps")


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the sequential test's and check's parameters, the rest)."""
    test = {k: v for k, v in params.items() if k in TEST_KEYS}
    return test, {k: v for k, v in params.items() if k not in TEST_KEYS}


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
        if int(check_repeats) < 1:
            raise ConfigError(f"check_repeats must be ≥ 1 (got {check_repeats}).")
        self.check_repeats = int(check_repeats)
        if int(push_steps) < 0:
            raise ConfigError(f"push_steps must be ≥ 0 (got {push_steps}).")
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
                                 self.check_repeats, push_steps=self.push_steps)
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


class HopSkipJumpCore:
    """The HSJA loop of `rsviz.attacks.hsja` on a `NoiseAwareOracle`, with σ-scaled probes.

    Args:
        probe_scale: δ = max(δ_t, probe_scale·σ√d) for the direction estimate.
        bisection_tol: the bisection stops at bisection_tol·σ (L2 along the segment).
        plain: the plain HSJA's hyper-parameters (registry defaults).
    """

    name = "hsja"

    def __init__(self, probe_scale: float = 1.0, bisection_tol: float = 0.5,
                 **plain: Any) -> None:
        if not (probe_scale >= 0 and bisection_tol > 0):
            raise ConfigError("probe_scale must be ≥ 0 and bisection_tol > 0.")
        self.plain = HopSkipJump(**plain)
        self.probe_scale = float(probe_scale)
        self.bisection_tol = float(bisection_tol)

    def steps(self, oracle: NoiseAwareOracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]:
        sigma = oracle.config.sigma
        if sigma is None:  # nothing to be aware of: the plain attack, query for query
            yield from self.plain.steps(oracle, x_o, generator)
            return
        x_o = x_o.to(oracle.device, torch.float32)
        d = x_o.numel()
        plain = self.plain
        theta_plain = plain.threshold(d)
        tol = self.bisection_tol * sigma

        def theta(x_far: torch.Tensor) -> float:
            length = float((x_far - x_o).norm())
            return min(0.25, max(theta_plain, tol / max(length, 1e-12)))

        start = uniform_start(oracle, x_o, generator, plain.max_init_tries)
        if start is None:
            yield make_state(oracle, 0, None, "initialisation failed: no adversarial noise")
            return
        x_b = binary_search(oracle, x_o, start, theta(start))
        yield make_state(oracle, 0, x_b, "initialisation (tested bisection)")
        probes = ProbeView(oracle)
        t = 1
        while True:
            dist = float((x_b - x_o).norm())
            # expected cost of a step search and a bisection, ~3 answers a tested decision
            reserve = 3 * (binary_search_steps(theta(x_b)) + 4) + oracle.check_repeats
            num_evals = min(int(plain.init_num_evals * math.sqrt(t)), plain.max_num_evals,
                            oracle.remaining - reserve)
            if num_evals < 2:
                yield make_state(oracle, t, x_b, "budget left too small for an iteration")
                return
            delta_t = plain.first_delta if t == 1 else math.sqrt(d) * theta_plain * dist
            delta = max(delta_t, self.probe_scale * sigma * math.sqrt(d))
            before = oracle.queries
            direction = estimate_direction(probes, x_b, num_evals, delta, generator)
            spent = oracle.queries - before
            x_new = geometric_step(oracle, x_b, direction, dist / math.sqrt(t),
                                   plain.max_step_halvings)
            if x_new is None:
                phase = f"iteration {t}: no adversarial step ({spent} probes, δ={delta:.3g})"
            else:
                x_b = binary_search(oracle, x_o, x_new, theta(x_new))
                phase = f"iteration {t}: {spent} probes at δ={delta:.3g}"
            yield make_state(oracle, t, x_b, phase)
            t += 1


class RaySCore:
    """RayS on a `NoiseAwareOracle`, its radius bisection stopped at tol_sigma·σ.

    Args:
        tol_sigma: bisection tolerance on r√d in units of σ (used when it exceeds `tol`).
        plain: the plain RayS's hyper-parameters.
    """

    name = "rays"

    def __init__(self, tol_sigma: float = 0.5, **plain: Any) -> None:
        if not tol_sigma > 0:
            raise ConfigError(f"tol_sigma must be positive (got {tol_sigma!r}).")
        self.tol_sigma = float(tol_sigma)
        self.plain = plain

    def steps(self, oracle: NoiseAwareOracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]:
        params = dict(self.plain)
        sigma = oracle.config.sigma
        if sigma is not None:
            params["tol"] = max(float(params.get("tol", 1e-3)), self.tol_sigma * sigma)
        yield from RayS(**params).steps(oracle, x_o, generator)


def rs_aware_hsja(**params: Any) -> NoiseAware:
    test, rest = split_params(params)
    return NoiseAware(HopSkipJumpCore(**rest), "hsja", **test)


def rs_aware_surfree(**params: Any) -> NoiseAware:
    test, rest = split_params(params)
    return NoiseAware(SurFree(**rest), "surfree", **test)


def rs_aware_rays(**params: Any) -> NoiseAware:
    test, rest = split_params(params)
    return NoiseAware(RaySCore(**rest), "rays", **test)
