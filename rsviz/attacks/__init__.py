"""Decision-based attacks against f or g_{σ,n}, reached only through an `Oracle`.

`REGISTRY` maps an attack name to its label, paper, distance and classes; the hyper-parameters
and their published defaults are written once, as keyword defaults of the classes' `__init__`
(`AttackSpec.defaults_for` reads them). `run_attack` drives one attack to the end of its budget and returns a picklable
`AttackTrace` (what the page, the CLI and the study cache and plot).

Every attack has two variants (`VARIANTS`): "plain", the published attack, and "rs-aware", the
same attack told that the classifier is g_{σ,n} (sequential tests instead of single answers,
probes wider than g's noise, a level-P_a check of the reported point; `rsviz.attacks.rs_aware`).
Every run, plain or RS-aware, ends with a measurement that is not part of the budget: the share
of `measure_queries` (100) fresh queries of the attacked classifier that call the final point
adversarial, its empirical P_a.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from rsviz.attacks.base import Attack, AttackState, run_steps, signature_defaults
from rsviz.attacks.hsja import HopSkipJump
from rsviz.attacks.oracle import CRITERIA, Oracle, OracleConfig, empirical_p_a
from rsviz.attacks.rays import RayS
from rsviz.attacks.rs_aware.attacks import (RSAwareHopSkipJump, RSAwareRayS, noise_aware,
                                            noise_aware_defaults)
from rsviz.attacks.surfree import SurFree
from rsviz.errors import ConfigError
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.smoothing import make_generator

__all__ = ["REGISTRY", "VARIANTS", "AttackSpec", "AttackTrace", "CRITERIA", "Oracle",
           "OracleConfig", "TracePoint", "empirical_p_a", "make_attack", "run_attack"]

VARIANTS: dict[str, str] = {
    "plain": "the published attack (trusts every answer)",
    "rs-aware": "knows it faces g_{σ,n}: sequential tests, σ-wide probes, level-P_a check",
}
MEASURE_QUERIES = 100  # fresh queries measuring the final point's empirical P_a (not budgeted)

TracePoint = tuple[int, int, float, float, str]  # (queries, forward_passes, l2, linf, phase)


@dataclass(frozen=True)
class AttackSpec:
    """One registry entry.

    Attributes:
        name: registry key ("hsja", "surfree", "rays").
        label: name shown in the UI.
        paper: reference of the paper the implementation follows.
        distance: the norm the attack minimises ("l2" or "linf").
        factory: the attack's class; its `__init__` keywords are the hyper-parameters and
            their defaults the published ones (documented in its module).
        rs_aware: the class of the RS-aware variant's attack, run by `noise_aware` (its own
            keywords, the plain ones it passes on, and the wrapper's tests and check).
    """

    name: str
    label: str
    paper: str
    distance: str
    factory: type
    rs_aware: type

    def defaults_for(self, variant: str = "plain") -> dict[str, Any]:
        """The hyper-parameters a run of `variant` starts from (read from the signatures)."""
        if variant == "rs-aware":
            return noise_aware_defaults(self.rs_aware)
        return signature_defaults(self.factory)


REGISTRY: dict[str, AttackSpec] = {
    "hsja": AttackSpec(
        name="hsja", label="HopSkipJump (HSJA, L2)",
        paper="Chen, Jordan, Wainwright, HopSkipJumpAttack, IEEE S&P 2020",
        distance="l2", factory=HopSkipJump, rs_aware=RSAwareHopSkipJump,
    ),
    "surfree": AttackSpec(
        name="surfree", label="SurFree (L2)",
        paper="Maho, Furon, Le Merrer, SurFree: a fast surrogate-free black-box attack, CVPR 2021",
        distance="l2", factory=SurFree, rs_aware=SurFree,
    ),
    "rays": AttackSpec(
        name="rays", label="RayS (L∞, L2 reported)",
        paper="Chen & Gu, RayS: a ray searching method for hard-label adversarial attack, KDD 2020",
        distance="linf", factory=RayS, rs_aware=RSAwareRayS,
    ),
}


def check_variant(variant: str) -> str:
    """`variant` if it is one of `VARIANTS`, else a ConfigError naming them."""
    if variant not in VARIANTS:
        raise ConfigError(f"Unknown variant {variant!r}; use one of {', '.join(VARIANTS)}.")
    return variant


def make_attack(name: str, params: dict[str, Any] | None = None,
                variant: str = "plain") -> Attack:
    """Build a registry attack (`variant` "plain" or "rs-aware"): its signature's defaults,
    overridden by `params`."""
    if name not in REGISTRY:
        raise ConfigError(f"Unknown attack {name!r}; available: {', '.join(REGISTRY)}.")
    spec = REGISTRY[name]
    try:
        if check_variant(variant) == "rs-aware":
            return noise_aware(spec.rs_aware, **(params or {}))
        return spec.factory(**(params or {}))
    except TypeError as exc:
        raise ConfigError(f"Bad parameters for {spec.label} ({variant}): {exc}") from exc


@dataclass
class AttackTrace:
    """The record of one attack run (picklable: numbers, strings and CPU tensors).

    Attributes:
        attack: registry name.
        config: the oracle configuration (what was attacked, criterion, budget, seed).
        params: hyper-parameters of the attack (defaults included).
        seed: seed of the attack's own randomness.
        points: one (queries, forward_passes, l2, linf, phase) per yielded state, where l2 and
            linf are the distortions of the best accepted point so far (inf before one).
        x_adv: best accepted point [3,H,W] on the CPU, or None.
        label: the original label y (the class the untargeted attack moves away from).
        adv_label: label of x_adv by one draw of the attacked classifier (not counted).
        adv_label_f: label of x_adv by the base classifier f.
        success: an accepted point was found.
        finished: False for the partial trace of a run still going or stopped.
        seconds: wall time of the run.
        variant: "plain" or "rs-aware".
        p_a_empirical: share of `p_a_queries` fresh queries of the attacked classifier that
            call x_adv adversarial (measured after the run, outside the budget; None without
            x_adv or when the measurement is off).
        p_a_queries: fresh queries of that measurement (on f, one forward pass stands for
            them all: f is deterministic).
        p_a_forward_passes: forward passes of the measurement (not in `forward_passes`).
    """

    attack: str
    config: OracleConfig
    params: dict[str, Any]
    seed: int
    points: list[TracePoint] = field(default_factory=list)
    x_adv: torch.Tensor | None = None
    label: int = -1
    adv_label: int | None = None
    adv_label_f: int | None = None
    success: bool = False
    finished: bool = False
    seconds: float = 0.0
    variant: str = "plain"
    p_a_empirical: float | None = None
    p_a_queries: int = 0
    p_a_forward_passes: int = 0

    def _last(self, i: int, default: Any) -> Any:
        return self.points[-1][i] if self.points else default

    @property
    def queries(self) -> int:
        return int(self._last(0, 0))

    @property
    def forward_passes(self) -> int:
        return int(self._last(1, 0))

    @property
    def l2(self) -> float:
        return float(self._last(2, float("inf")))

    @property
    def linf(self) -> float:
        return float(self._last(3, float("inf")))

    @property
    def distance(self) -> str:
        return REGISTRY[self.attack].distance if self.attack in REGISTRY else "l2"

    def describe(self) -> str:
        """Legend label, e.g. 'HSJA · g(σ=0.25, n=10) · seed 0'."""
        cfg = self.config
        target = "f" if cfg.sigma is None else f"g(σ={cfg.sigma:g}, n={cfg.n})"
        if cfg.sigma is not None and cfg.criterion != "single_draw":
            target += f" {cfg.criterion} P_a={cfg.p_a:g}"
        name = REGISTRY[self.attack].label.split(" (")[0] if self.attack in REGISTRY else self.attack
        if self.variant != "plain":
            name += f" {self.variant}"
        return f"{name} · {target} · seed {self.seed}" + ("" if self.finished else " (stopped)")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the image)."""
        return {"attack": self.attack, "oracle": self.config.describe(), "seed": self.seed,
                "budget": self.config.budget, "queries": self.queries,
                "forward_passes": self.forward_passes, "l2": self.l2, "linf": self.linf,
                "success": self.success, "label": self.label, "adv_label": self.adv_label,
                "adv_label_f": self.adv_label_f, "finished": self.finished,
                "seconds": self.seconds, "params": self.params, "variant": self.variant,
                "p_a_empirical": self.p_a_empirical, "p_a_queries": self.p_a_queries,
                "p_a_forward_passes": self.p_a_forward_passes}


def run_attack(model: Classifier, x_o: torch.Tensor, y: int, attack_name: str,
               oracle_config: OracleConfig, generator_seed: int,
               progress: Progress | None = None,
               params: dict[str, Any] | None = None, variant: str = "plain",
               measure_queries: int = MEASURE_QUERIES) -> AttackTrace:
    """Run one attack until its budget (or its own end) and return its trace.

    Reports (queries, budget) and a copy of the partial trace (`partial=`, an `AttackTrace`
    with `finished=False` and the current best x_adv) to `progress` after every outer
    iteration, and checks for cancellation there (`Cancelled` propagates).

    Args:
        model: base classifier f.
        x_o: original image [3,H,W] in [0,1].
        y: its label (untargeted: the class to leave; usually f's or g's prediction at x_o).
        attack_name: a key of `REGISTRY`.
        oracle_config: what is attacked, the criterion, budget and oracle seed.
        generator_seed: seed of the attack's own random directions.
        progress: receives progress and partial traces.
        params: hyper-parameters overriding the attack's defaults.
        variant: "plain" or "rs-aware" (`VARIANTS`).
        measure_queries: fresh queries measuring x_adv's empirical P_a after the run (outside
            the budget; 0 skips the measurement).
    """
    progress = progress or NullProgress()
    attack = make_attack(attack_name, params, variant)
    spec = REGISTRY[attack_name]
    oracle = Oracle(model, x_o, y, oracle_config, distance=spec.distance)  # type: ignore[arg-type]
    generator = make_generator(generator_seed, model.device)
    trace = AttackTrace(attack=attack_name, config=oracle_config,
                        params={**spec.defaults_for(variant), **(params or {})},
                        seed=int(generator_seed), label=int(y), variant=variant)
    started = time.perf_counter()
    state: AttackState | None = None
    progress.report(0, oracle_config.budget, "starting")
    for state in run_steps(attack, oracle, x_o.to(model.device, torch.float32), generator):
        trace.points.append((state.queries, state.forward_passes, state.l2, state.linf,
                             state.phase))
        trace.seconds = time.perf_counter() - started
        partial = AttackTrace(**{**trace.__dict__, "points": list(trace.points),
                                 "x_adv": None if state.x_adv is None else state.x_adv.cpu(),
                                 "success": state.success})
        message = (f"{state.queries}/{oracle_config.budget} queries, "
                   f"L2 {state.l2:.4g}, L∞ {state.linf:.4g} — {state.phase}")
        progress.report(state.queries, oracle_config.budget, message, partial=partial)
        progress.check_cancel()
    best = state.x_adv if state is not None else None  # the variant's reported point
    trace.x_adv = None if best is None else best.detach().cpu()
    trace.success = best is not None
    if best is not None:
        trace.adv_label = oracle.label(best)
        trace.adv_label_f = oracle.base_label(best)
        if measure_queries > 0:
            progress.report(oracle_config.budget, oracle_config.budget,
                            f"measuring P_a at x_adv ({measure_queries} fresh queries)")
            trace.p_a_empirical, trace.p_a_queries, trace.p_a_forward_passes = empirical_p_a(
                model, best, y, oracle_config, measure_queries)
    trace.finished = True
    trace.seconds = time.perf_counter() - started
    return trace
