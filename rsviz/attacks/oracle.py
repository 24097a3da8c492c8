"""The attacker's only view of the classifier: decisions, counted and budgeted.

The oracle wraps f (deterministic) or g_{σ,n} (a fresh Monte Carlo vote at every query, with
the lazy exact vote), counts every query — initialisation included — and every base-model
forward pass, refuses to go past the budget, and remembers the closest point to x_o that the
criterion accepted (so an attack's reported best point is always an accepted one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from rsviz.config import check_count, check_probability, check_sigma
from rsviz.errors import BudgetExhausted, ConfigError
from rsviz.models import Classifier
from rsviz.smoothing import _forward, lazy_votes, make_generator, resolve_precision, sample_votes
from rsviz import theory

Criterion = Literal["single_draw", "shortcut", "exact"]

CRITERIA: dict[str, str] = {
    "single_draw": "one draw of g_{σ,n} is wrong",
    "shortcut": "paper's shortcut: ≥ ⌈n·P_a⌉ of the n votes wrong",
    "exact": "eq. (5) exact: vote estimate of π0 ≤ 1 − I⁻¹_{P_a}(k, n−k+1)",
}


@dataclass(frozen=True)
class OracleConfig:
    """Which classifier is attacked and what counts as adversarial.

    Attributes:
        sigma: noise level of g_{σ,n}; None attacks the base classifier f.
        n: votes per query of g_{σ,n}.
        criterion: "single_draw" (the decision of one query of g_{σ,n}), "shortcut" (the paper's
            experiments: at least ⌈n·P_a⌉ of the n votes wrong) or "exact" (eq. 5: the vote
            estimate of π0 is below the exact threshold, i.e. at least ⌈n(1 − π0*)⌉ votes wrong).
        p_a: level P_a of the adversarial example (criteria "shortcut" and "exact").
        target: target class for a targeted attack (None = untargeted).
        budget: maximum number of queries.
        seed: seed of the oracle's noise generator.
    """

    sigma: float | None = None
    n: int = 10
    criterion: Criterion = "single_draw"
    p_a: float = 0.5
    target: int | None = None
    budget: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sigma is not None:
            check_sigma(self.sigma)
        check_count("n", self.n)
        check_count("budget", self.budget)
        check_probability("P_a", self.p_a)
        if self.criterion not in CRITERIA:
            raise ConfigError(f"Unknown criterion {self.criterion!r}; use one of {', '.join(CRITERIA)}.")

    def wrong_votes_needed(self) -> int:
        """Wrong votes out of n that make a point adversarial (criteria with full votes)."""
        if self.criterion == "shortcut":
            return theory.shortcut_wrong_votes(self.n, self.p_a)
        pi0_max = theory.threshold_exact(self.n, self.p_a)
        return max(1, int(np.ceil(self.n * (1.0 - pi0_max) - 1e-9)))

    def describe(self) -> str:
        if self.sigma is None:
            return "undefended f"
        crit = CRITERIA[self.criterion].replace("P_a", f"P_a={self.p_a:g}")
        return f"g(σ={self.sigma:g}, n={self.n}), {crit}"


class Oracle:
    """Decision oracle on f or g_{σ,n} with query and forward-pass accounting.

    Args:
        model: base classifier f (pixel space).
        x_o: the original image [3,H,W].
        y: its label (the class to move away from, untargeted).
        config: what is attacked and the criterion.
        batch_size: forward batch size (None: from the device).
        precision: forward precision.
    """

    def __init__(self, model: Classifier, x_o: torch.Tensor, y: int, config: OracleConfig,
                 batch_size: int | None = None, precision: str = "auto") -> None:
        self.model = model
        self.device = model.device
        self.x_o = x_o.detach().to(self.device, torch.float32)
        self.y = int(y)
        self.config = config
        self.batch_size = batch_size
        self.precision = resolve_precision(precision, self.device)
        self.generator = make_generator(config.seed, self.device)
        self.queries = 0
        self.forward_passes = 0
        self.best_x: torch.Tensor | None = None
        self.best_l2 = float("inf")

    @property
    def budget(self) -> int:
        return self.config.budget

    @property
    def remaining(self) -> int:
        return self.config.budget - self.queries

    def _wrong(self, labels: np.ndarray | torch.Tensor) -> np.ndarray:
        labels = np.asarray(labels)
        if self.config.target is not None:
            return labels == self.config.target
        return labels != self.y

    def _decide(self, xs: torch.Tensor) -> np.ndarray:
        cfg = self.config
        if cfg.sigma is None:
            labels = torch.cat([_forward(self.model, xs[s:s + 256], self.precision).argmax(1).cpu()
                                for s in range(0, len(xs), 256)])
            self.forward_passes += len(xs)
            return self._wrong(labels.numpy())
        if cfg.criterion == "single_draw":
            result = lazy_votes(self.model, xs, cfg.sigma, cfg.n, self.generator,
                                self.batch_size, self.precision)
            self.forward_passes += result.forward_passes
            return self._wrong(result.labels)
        record = sample_votes(self.model, xs, cfg.sigma, cfg.n, self.generator,
                              self.batch_size, self.precision)
        self.forward_passes += record.forward_passes
        wrong = self._wrong(record.labels).sum(1)
        return wrong >= cfg.wrong_votes_needed()

    def is_adversarial(self, xs: torch.Tensor) -> torch.Tensor:
        """One query per point: [B] booleans, True where the criterion holds.

        Raises BudgetExhausted, without querying, when the batch would exceed the budget.
        """
        single = xs.dim() == 3
        xs = (xs[None] if single else xs).to(self.device, torch.float32)
        if self.queries + len(xs) > self.config.budget:
            raise BudgetExhausted(
                f"Budget of {self.config.budget} queries reached ({self.queries} used).")
        self.queries += len(xs)
        adversarial = self._decide(xs)
        if adversarial.any():
            flat = (xs - self.x_o).flatten(1).norm(dim=1).cpu().numpy()
            for i in np.flatnonzero(adversarial):
                if flat[i] < self.best_l2:
                    self.best_l2, self.best_x = float(flat[i]), xs[i].detach().clone()
        out = torch.from_numpy(adversarial.astype(bool))
        return out[0] if single else out

    def label(self, x: torch.Tensor) -> int:
        """Label of x given by one draw of the attacked classifier, for display (not counted)."""
        x = x.to(self.device, torch.float32)[None]
        if self.config.sigma is None:
            return int(_forward(self.model, x, self.precision).argmax(1).item())
        generator = make_generator(self.config.seed + 7919, self.device)
        result = lazy_votes(self.model, x, self.config.sigma, self.config.n, generator,
                            self.batch_size, self.precision)
        return int(result.labels[0])
