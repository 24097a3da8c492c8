"""Attack view: HSJA, SurFree or RayS against f or g_{σ,n}, with its trace (paper §4).

The result is {"trace": AttackTrace, "label": f's label at x_o, "seconds"}. Votes of g at
the final point (the page's histogram) are a separate, cheap call: `votes_at_adv`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from rsviz.errors import ConfigError
from rsviz.views.base import Cost, Request, progress_of


@dataclass(frozen=True, kw_only=True)
class AttackRequest(Request):
    """One attack run: attack name, the oracle's OracleConfig (σ, n, criterion, budget,
    seed, target) and hyper-parameter overrides as sorted (name, value) pairs."""

    NAME = "attack"
    VERSION = "3"  # 2: RS-aware runs end with the final push; 3: also when they stall

    attack: str = "hsja"
    config: Any = None
    params: tuple[tuple[str, Any], ...] = ()
    variant: str = "plain"

    def __post_init__(self) -> None:
        from rsviz.attacks import REGISTRY, check_variant

        check_variant(self.variant)
        if self.attack not in REGISTRY:
            raise ConfigError(f"Unknown attack {self.attack!r}; use {', '.join(REGISTRY)}.")
        if self.config is None:
            raise ConfigError("An attack request needs an OracleConfig.")
        object.__setattr__(self, "params", tuple(sorted(dict(self.params).items())))
        super().__post_init__()

    def cost(self) -> Cost:
        """At most budget × n forward passes (n = 1 against f; lazy votes often stop early),
        plus one for f's label at x_o."""
        c = self.config
        return Cost(1 + c.budget * (c.n if c.sigma is not None else 1), "at most")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> dict:
        from rsviz.attacks import run_attack
        from rsviz.smoothing import forward_labels

        progress = progress_of(progress, cancel)
        label = int(forward_labels(model, x[None], batch_size=1)[0])
        if self.config.target is not None and self.config.target == label:
            raise ConfigError(f"The target class {label} is the class f gives x_o already.")
        started = time.perf_counter()
        trace = run_attack(model, x, label, self.attack, self.config, self.config.seed,
                           progress=progress, params=dict(self.params), variant=self.variant)
        return {"trace": trace, "label": label, "seconds": time.perf_counter() - started}

    def summary(self, result: dict, class_name: Callable[[int], str] = str) -> dict[str, Any]:
        from rsviz.attacks import REGISTRY
        from rsviz.config import to_dict

        trace, y = result["trace"], result["label"]
        return {"attack": self.attack, "paper": REGISTRY[self.attack].paper,
                "oracle": self.config.describe(), "config": to_dict(self.config),
                "params": trace.params, "queries": trace.queries,
                "forward_passes": trace.forward_passes, "l2": trace.l2, "linf": trace.linf,
                "success": trace.success, "label": y, "label_name": class_name(y),
                "adv_label": trace.adv_label,
                "adv_label_name": None if trace.adv_label is None else class_name(trace.adv_label),
                "adv_label_f": trace.adv_label_f, "states": len(trace.points),
                "variant": self.variant, "p_a_empirical": trace.p_a_empirical,
                "seconds": result["seconds"]}


def votes_at_adv(model: Any, trace: Any, sigma: float, votes: int, seed: int) -> Any:
    """Vote counts of `votes` noisy samples at the attack's final point (None without one)."""
    from rsviz.smoothing import make_generator, sample_votes

    if trace.x_adv is None:
        return None
    record = sample_votes(model, trace.x_adv[None], sigma, votes,
                          make_generator(seed + 1, model.device))
    return record.counts[0]
