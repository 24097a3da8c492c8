"""The attacker's only view of the classifier: decisions, counted and budgeted.

The oracle wraps f (deterministic) or g_{σ,n} (a fresh Monte Carlo vote at every query), counts
every query — initialisation included — and every base-model forward pass, refuses to go past the
budget, and remembers the closest point to x_o that the criterion accepted — closest in the
attack's own norm, L2 or L∞ — so an attack's reported best point is always an accepted one.

Criteria against g_{σ,n} (`CRITERIA`, named as the UI shows them):
- "single_draw": the decision of one query of g_{σ,n} (plurality of n fresh votes, random
  tie-break) is wrong (untargeted) or is the target (targeted);
- "shortcut": the paper's experimental protocol (§4.1): at least ⌈n·P_a⌉ of the n votes of the
  query are wrong (or for the target);
- "exact": eq. (5) applied to the vote estimate: π̂0 = (right votes)/n ≤ π0* with
  π0* = 1 − I⁻¹_{P_a}(k, n−k+1), k = ⌊n/2⌋+1 (`theory.threshold_exact`), i.e. at least
  ⌈n(1 − π0*)⌉ wrong votes.

Every criterion is decided lazily and exactly: votes are drawn in rounds and a point stops as
soon as the remaining votes cannot change its outcome, so a query never costs more than n
forward passes and has exactly the distribution of the full n-vote decision.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from rsviz import theory
from rsviz.config import check_count, check_probability, check_sigma
from rsviz.errors import BudgetExhausted, ConfigError
from rsviz.models import Classifier
from rsviz.device import default_batch_size
from rsviz.engines import precision_of
from rsviz.smoothing import forward_labels, lazy_threshold_votes, lazy_votes, make_generator


Criterion = Literal["single_draw", "shortcut", "exact"]
Distance = Literal["l2", "linf"]

CRITERIA: dict[str, str] = {
    "single_draw": "one draw of g_{σ,n} is wrong (plurality of n votes)",
    "shortcut": "paper's shortcut (§4.1): ≥ ⌈n·P_a⌉ of the n votes wrong",
    "exact": "eq. (5) exact threshold on the vote estimate: π̂0 ≤ 1 − I⁻¹_{P_a}(k, n−k+1)",
}


@dataclass(frozen=True)
class OracleConfig:
    """Which classifier is attacked and what counts as adversarial.

    Attributes:
        sigma: noise level of g_{σ,n}; None attacks the base classifier f.
        n: votes per query of g_{σ,n}.
        criterion: "single_draw", "shortcut" or "exact" (see the module docstring).
        p_a: level P_a of the adversarial example (criteria "shortcut" and "exact").
        target: target class for a targeted attack (None = untargeted).
        budget: maximum number of queries.
        seed: seed of the oracle's noise generator.
        precision: forward precision. "auto" is fp32 when f is attacked — decision-based attacks
            probe perturbations far below the input resolution of bf16 (2⁻⁸ relative: HSJA's
            δ_t is ~10⁻⁶ per pixel at 224²), which would round them away. Against g_{σ,n},
            "auto" is the vote sampler's engine arithmetic (`rsviz.engines.precision_of`).
            Queries of f go through the attached engine when it runs fp32 (OpenVINO with its
            f32 hint: 2–5× eager torch's rate on a CPU), else eager torch.
    """

    sigma: float | None = None
    n: int = 10
    criterion: Criterion = "single_draw"
    p_a: float = 0.5
    target: int | None = None
    budget: int = 2000
    seed: int = 0
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.sigma is not None:
            check_sigma(self.sigma)
        check_count("n", self.n)
        check_count("budget", self.budget)
        check_probability("P_a", self.p_a)
        if self.criterion not in CRITERIA:
            raise ConfigError(f"Unknown criterion {self.criterion!r}; use one of {', '.join(CRITERIA)}.")
        if self.target is not None:
            check_count("target class", self.target, minimum=0)
        if self.precision not in ("auto", "fp32", "bf16", "fp16"):
            raise ConfigError(f"Unknown precision {self.precision!r}.")
        if self.precision == "auto" and self.sigma is None:  # f is attacked: see above
            object.__setattr__(self, "precision", "fp32")

    @property
    def smoothed(self) -> bool:
        return self.sigma is not None

    def wrong_votes_needed(self) -> int:
        """Wrong votes out of n that make a point adversarial (criteria "shortcut", "exact")."""
        if self.criterion == "shortcut":
            return max(1, theory.shortcut_wrong_votes(self.n, self.p_a))
        pi0_max = theory.threshold_exact(self.n, self.p_a)
        return int(min(self.n, max(1, np.ceil(self.n * (1.0 - pi0_max) - 1e-9))))

    def describe(self) -> str:
        """Short human description, e.g. 'g(σ=0.25, n=10), one draw of g_{σ,n} is wrong'."""
        if self.sigma is None:
            what = "undefended f"
        else:
            crit = CRITERIA[self.criterion].replace("P_a", f"P_a={self.p_a:g}")
            if self.criterion != "single_draw":
                crit += f" (≥ {self.wrong_votes_needed()} of {self.n})"
            what = f"g(σ={self.sigma:g}, n={self.n}), {crit}"
        return what if self.target is None else f"{what}, target class {self.target}"


class Oracle:
    """Decision oracle on f or g_{σ,n} with query and forward-pass accounting.

    Args:
        model: base classifier f (pixel space).
        x_o: the original image [3,H,W].
        y: its label (the class to move away from, untargeted).
        config: what is attacked and the criterion.
        batch_size: forward batch size (None: from the device).
        precision: forward precision; None takes `config.precision`.
        distance: "l2" or "linf", the norm by which `best_x` is the closest accepted point
            (the attack's own distance: L∞ for RayS, L2 otherwise).
    """

    def __init__(self, model: Classifier, x_o: torch.Tensor, y: int, config: OracleConfig,
                 batch_size: int | None = None, precision: str | None = None,
                 distance: Distance = "l2") -> None:
        num_classes = model.info.num_classes
        if config.target is not None:
            if config.target >= num_classes:
                raise ConfigError(f"Target class {config.target} does not exist "
                                  f"(the model has {num_classes} classes).")
            if config.target == int(y):
                raise ConfigError(f"The target class {config.target} is the original label: "
                                  "pick another class or run untargeted.")
        self.model = model
        self.device = model.device
        self.x_o = x_o.detach().to(self.device, torch.float32)
        self.y = int(y)
        self.config = config
        # an explicit batch size keeps the engine from re-tuning it at every (small) query
        self.batch_size = batch_size or default_batch_size(self.device, self.x_o.numel())
        self.precision = precision_of(model, precision or config.precision)
        self.generator = make_generator(config.seed, self.device)
        self.queries = 0
        self.forward_passes = 0
        if distance not in ("l2", "linf"):
            raise ConfigError(f"Unknown distance {distance!r}; use 'l2' or 'linf'.")
        self.distance = distance
        self.best_x: torch.Tensor | None = None
        self.best_distance = float("inf")

    @property
    def budget(self) -> int:
        return self.config.budget

    @property
    def remaining(self) -> int:
        return self.config.budget - self.queries

    @property
    def best_l2(self) -> float:
        """‖best_x − x_o‖₂ (inf before an accepted point)."""
        if self.best_x is None:
            return float("inf")
        return float((self.best_x - self.x_o).norm())

    @property
    def dim(self) -> int:
        return int(self.x_o.numel())

    def _wrong(self, labels: np.ndarray | torch.Tensor) -> np.ndarray:
        labels = np.asarray(labels)
        if self.config.target is not None:
            return labels == self.config.target
        return labels != self.y

    def _decide(self, xs: torch.Tensor) -> np.ndarray:
        cfg = self.config
        if cfg.sigma is None:
            labels = forward_labels(self.model, xs, self.batch_size, self.precision, engine=True)
            self.forward_passes += len(xs)
            return self._wrong(labels)
        if cfg.criterion == "single_draw":
            result = lazy_votes(self.model, xs, cfg.sigma, cfg.n, self.generator,
                                self.batch_size, self.precision)
            self.forward_passes += result.forward_passes
            return self._wrong(result.labels)
        hit_classes = self._wrong(np.arange(self.model.info.num_classes))
        decision, _, passes = lazy_threshold_votes(self.model, xs, cfg.sigma, cfg.n,
                                                   hit_classes, cfg.wrong_votes_needed(),
                                                   self.generator,
                                                   self.batch_size, self.precision)
        self.forward_passes += passes
        return decision

    def is_adversarial(self, xs: torch.Tensor) -> torch.Tensor:
        """One query per point: [B] booleans (a 0-d boolean for one [3,H,W] point).

        Raises BudgetExhausted, without querying, when the batch would exceed the budget.
        """
        single = xs.dim() == 3
        xs = (xs[None] if single else xs).to(self.device, torch.float32)
        if len(xs) == 0:
            return torch.zeros(0, dtype=torch.bool)
        if self.queries + len(xs) > self.config.budget:
            raise BudgetExhausted(
                f"Budget of {self.config.budget} queries reached ({self.queries} used, "
                f"{len(xs)} more asked).")
        self.queries += len(xs)
        adversarial = self._decide(xs)
        if adversarial.any():
            delta = (xs - self.x_o).flatten(1)
            dist = (delta.norm(dim=1) if self.distance == "l2"
                    else delta.abs().amax(dim=1)).cpu().numpy()
            for i in np.flatnonzero(adversarial):
                if dist[i] < self.best_distance:
                    self.best_distance, self.best_x = float(dist[i]), xs[i].detach().clone()
        out = torch.from_numpy(adversarial.astype(bool))
        return out[0] if single else out

    def label(self, x: torch.Tensor) -> int:
        """Label of x by one draw of the attacked classifier, for display (not counted)."""
        x = x.to(self.device, torch.float32)[None]
        if self.config.sigma is None:
            return self.base_label(x[0])
        generator = make_generator(self.config.seed + 7919, self.device)
        result = lazy_votes(self.model, x, self.config.sigma, self.config.n, generator,
                            self.batch_size, self.precision)
        return int(result.labels[0])

    def base_label(self, x: torch.Tensor) -> int:
        """Label of x by the base classifier f (not counted)."""
        x = x.to(self.device, torch.float32)[None]
        return int(forward_labels(self.model, x, self.batch_size, self.precision, engine=True)[0])


MEASURE_SEED_OFFSET = 104_729  # the measurement's noise never replays the attack's


def empirical_p_a(model: Classifier, x: torch.Tensor, y: int, config: OracleConfig,
                  queries: int = 100) -> tuple[float, int, int]:
    """Empirical P_a of x (eq. 4): the share of `queries` fresh queries of the attacked
    classifier, by `config`'s criterion, that call x adversarial.

    A measurement, not part of any attack's budget: its own oracle and noise seed. Against the
    deterministic f one forward pass answers for all the queries.

    Returns:
        (share of adversarial answers, queries it stands for, forward passes spent).
    """
    check_count("measurement queries", queries)
    measure = dataclasses.replace(config, budget=queries,
                                  seed=config.seed + MEASURE_SEED_OFFSET)
    oracle = Oracle(model, x, y, measure)
    x = x.to(oracle.device, torch.float32)
    copies = 1 if config.sigma is None else queries
    hits = oracle.is_adversarial(x[None].expand(copies, *x.shape).contiguous())
    return float(hits.float().mean()), queries, oracle.forward_passes
