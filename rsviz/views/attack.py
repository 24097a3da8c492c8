"""Attack view: HSJA, SurFree or RayS against f or g_{σ,n}, with its trace (paper §4).

The result is {"trace": AttackTrace, "label": f's label at x_o, "seconds"}. f's label is
taken by `f_label` and a target equal to it refused by `check_target`, once for the run and the
page (`attack_request`, before its Start button). Votes of g at the final point (the page's
histogram) are a separate, cheap call: `votes_at_adv`.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Callable

from rsviz.config import RS_AWARE_REVISION
from rsviz.errors import ConfigError
from rsviz.views.base import Cost, Request, progress_of, run_cached


@dataclass(frozen=True, kw_only=True)
class AttackRequest(Request):
    """One attack run: attack name, the oracle's OracleConfig (σ, n, criterion, budget,
    seed, target) and hyper-parameter overrides as sorted (name, value) pairs."""

    NAME = "attack"
    VERSION = str(RS_AWARE_REVISION)  # its history is the RS-aware revision's (rsviz.config)

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
        super().__post_init__()  # f's queries run fp32: the engine when it runs fp32, else eager

    def cost(self) -> Cost:
        """At most budget × n forward passes (n = 1 against f; lazy votes often stop early),
        plus one for f's label at x_o."""
        c = self.config
        return Cost(1 + c.budget * (c.n if c.sigma is not None else 1), "at most")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> dict:
        from rsviz.attacks import run_attack

        progress = progress_of(progress, cancel)
        label = f_label(model, x)
        check_target(self.config, label)
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


def f_label(model: Any, x: Any) -> int:
    """f's label at x_o: the class an untargeted attack leaves (one forward pass, fp32 on the
    path of the attacks' oracle: the engine when it runs fp32)."""
    from rsviz.smoothing import forward_labels

    return int(forward_labels(model, x[None], batch_size=1, precision="fp32", engine=True)[0])


def check_target(config: Any, label: int) -> None:
    """Refuse a targeted attack whose target is f's label at x_o already."""
    if config.target is not None and config.target == label:
        raise ConfigError(f"The target class {label} is the class f gives x_o already.")


@dataclass(frozen=True, kw_only=True)
class CompareRequest(Request):
    """The paper's story in one run: the same attack and seed against f and against g_{σ,n}
    (`config`, σ set; its variant `variant`), each an `AttackRequest` cached on its own (so
    either opens alone later). f gets `f_budget` queries (None: `compare_f_budget`, as many
    forward passes as g's budget can cost, at most COMPARE_F_BUDGET_CAP): a query of f costs
    one forward pass, one of g up to n, so f can afford more in the same time. The result is
    {"f": attack result, "g": attack result, "reused": a part came from the cache}.
    """

    NAME = "attack-compare"
    VERSION = "1"

    attack: str = "hsja"
    config: Any = None
    params: tuple[tuple[str, Any], ...] = ()
    variant: str = "plain"
    f_budget: int | None = None

    def __post_init__(self) -> None:
        if self.config is None or self.config.sigma is None:
            raise ConfigError("Comparing f and g_{σ,n} needs an OracleConfig with σ set.")
        if self.f_budget is None:  # the number that runs is in the key, not the rule
            object.__setattr__(self, "f_budget", compare_f_budget(self.config))
        super().__post_init__()
        self.runs()  # checks the attack, its parameters and the variant

    def runs(self) -> dict[str, AttackRequest]:
        """The two attack requests: "f" (undefended, fp32 as every attack on f) and "g"."""
        ids = {f.name: getattr(self, f.name) for f in dataclasses.fields(Request)}
        on_f = dataclasses.replace(self.config, sigma=None, criterion="single_draw",
                                   precision="fp32", budget=self.f_budget)
        return {"f": AttackRequest(**ids, attack=self.attack, config=on_f, params=self.params),
                "g": AttackRequest(**ids, attack=self.attack, config=self.config,
                                   params=self.params, variant=self.variant)}

    def cost(self) -> Cost:
        return Cost(sum(r.cost().passes for r in self.runs().values()), "at most")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> dict:
        progress = progress_of(progress, cancel)
        runs, out, offset = self.runs(), {}, 0
        total = self.cost().passes
        reused = False
        for which, request in runs.items():
            share = request.cost().passes
            out[which], cached = run_cached(request, model, x,
                                            _Part(progress, which, offset, share, total, out))
            reused = reused or cached
            offset += share
        return {**out, "reused": reused}  # a part from the cache: not a timing to learn from

    def summary(self, result: dict, class_name: Callable[[int], str] = str) -> dict[str, Any]:
        return {which: request.summary(result[which], class_name)
                for which, request in self.runs().items()}

    def running_forward(self, model: Any) -> Any:
        return self.runs()["g"].running_forward(model)


class _Part:
    """Progress of one attack of a `CompareRequest`: its fraction done fills its `share` of
    the whole's passes, and its partial trace reaches the page as {"running": which,
    "trace", "done": the finished results}."""

    def __init__(self, parent: Any, which: str, offset: int, share: int, total: int,
                 done: dict) -> None:
        self.parent, self.which, self.offset, self.share = parent, which, offset, share
        self.total, self.done = total, done

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        fraction = min(1.0, done / total) if total else 0.0
        shown = None if partial is None else {"running": self.which, "trace": partial,
                                              "done": dict(self.done)}
        self.parent.report(self.offset + fraction * self.share, self.total,
                           f"against {self.which}: {message}", shown)

    def check_cancel(self) -> None:
        self.parent.check_cancel()


# f's queries in a comparison at most: by 3 000 queries HSJA improved f's first L2 by ≥ 3×
# on every Lite0 photo it had not yet halved at 1 000 (bench/showcase.py, docs/attacks.md)
COMPARE_F_BUDGET_CAP = 3000


def compare_f_budget(config: Any) -> int:
    """f's queries when f and g_{σ,n} are compared: equal compute, as many forward passes as g's
    budget can cost (n per query), at most COMPARE_F_BUDGET_CAP."""
    return min(COMPARE_F_BUDGET_CAP, config.n * config.budget)


def passes_per_query(target: str, n: int) -> int:
    """Forward passes one query on the page's target costs at most, for sizing its budget:
    "f" 1, "g" n, "both" 2n (f gets as many passes as g up to COMPARE_F_BUDGET_CAP)."""
    return {"both": 2 * n, "g": n, "f": 1}[target]


def attack_request(ids: dict[str, str], attack: str, config: Any, variant: str = "plain",
                   compare: bool = False, label: int | None = None) -> Request:
    """The page's request: an `AttackRequest`, or with `compare` a `CompareRequest` (f gets
    `compare_f_budget`). With f's `label` at x_o (`f_label`), a target equal to it is refused
    before any run."""
    if label is not None:
        check_target(config, label)
    if compare:
        return CompareRequest(**ids, attack=attack, config=config, variant=variant)
    return AttackRequest(**ids, attack=attack, config=config, variant=variant)


def votes_at_adv(model: Any, trace: Any, sigma: float, votes: int, seed: int) -> Any:
    """Vote counts of `votes` noisy samples at the attack's final point (None without one)."""
    from rsviz.smoothing import make_generator, sample_votes

    if trace.x_adv is None:
        return None
    record = sample_votes(model, trace.x_adv[None], sigma, votes,
                          make_generator(seed + 1, model.device))
    return record.counts[0]
