"""Parameters of a dichotomy experiment."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rsviz.config import check_count, check_forward, check_sigma
from rsviz.errors import ConfigError


Method = Literal["multinomial", "binomial"]
Output = Literal["adversarial", "midpoint"]
Fit = Literal["probit", "none"]


@dataclass(frozen=True)
class DichotomyConfig:
    """A dichotomy experiment on one segment.

    Attributes:
        sigma: noise level of g_{σ,n}.
        n_values: vote counts n of g_{σ,n} to compare (each ≥ 1).
        trials: independent dichotomies per n.
        steps: bisection steps k (resolution ‖B − A‖ / 2^k); ignored when `tolerance` is set.
        tolerance: stop resolution in L2 pixel units: k = ⌈log2(‖B − A‖ / tolerance)⌉.
        grid: points of t on [0, 1] where p̂ is measured for the simulation.
        n_samples: N, noisy samples per grid point.
        method: how the simulation answers a query at t: "multinomial" draws n votes from the
            interpolated class frequencies (exact g_{σ,n} for any number of classes);
            "binomial" answers adversarial with P[Bin(n, 1 − p̂_y) > n/2] (+ ½ tie), exact
            only for two classes (top-vs-rest otherwise).
        fit: "probit" smooths p̂_y(t) by a binomial maximum-likelihood fit of Φ⁻¹(p_y(t)) as a
            polynomial in t (exact for a half-space at degree 1; other classes keep their
            measured shares of 1 − p_y). The sampling error of p̂ is amplified about √n times
            in P[g_{σ,n} ≠ y], so the fit matters when n is not ≪ N. "none" interpolates the
            raw frequencies.
        fit_degree: degree of the probit polynomial.
        output: which point a dichotomy returns: the adversarial end (what attacks keep) or
            the midpoint of the last interval.
        live: also run every trial live against the model (costly: up to trials·k·n passes).
        seed: seed of the segment pass, the live noise and the simulation.
        batch_size: forward batch size (None: chosen from the device).
        precision: forward precision ("auto", "fp32", "bf16", "fp16").
    """

    sigma: float = 0.25
    n_values: tuple[int, ...] = (10, 50, 100)
    trials: int = 1000
    steps: int = 12
    tolerance: float | None = None
    grid: int = 64
    n_samples: int = 128
    method: Method = "multinomial"
    fit: Fit = "probit"
    fit_degree: int = 3
    output: Output = "adversarial"
    live: bool = False
    seed: int = 0
    batch_size: int | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_sigma(self.sigma)
        if not self.n_values:
            raise ConfigError("Give at least one value of n.")
        for n in self.n_values:
            check_count("n", n)
        check_count("trials", self.trials)
        check_count("steps", self.steps)
        if self.steps > 30:
            raise ConfigError(f"steps must be ≤ 30 (got {self.steps}); 2^-30 is below float noise.")
        if self.tolerance is not None and not (isinstance(self.tolerance, (int, float))
                                               and self.tolerance > 0):
            raise ConfigError(f"tolerance must be a positive L2 distance (got {self.tolerance!r}).")
        check_count("grid points", self.grid, minimum=2)
        check_count("N (samples per grid point)", self.n_samples)
        if self.method not in ("multinomial", "binomial"):
            raise ConfigError(f"Unknown simulation method {self.method!r}.")
        if self.fit not in ("probit", "none"):
            raise ConfigError(f"Unknown fit {self.fit!r}.")
        check_count("fit degree", self.fit_degree)
        if self.output not in ("adversarial", "midpoint"):
            raise ConfigError(f"Unknown output {self.output!r}.")
        check_forward(self.batch_size, self.precision)

    def steps_for(self, length: float) -> int:
        """Bisection steps k for a segment of L2 length `length`."""
        if self.tolerance is None:
            return self.steps
        return int(min(30, max(1, math.ceil(math.log2(max(length / self.tolerance, 1.0))))))
