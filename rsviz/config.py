"""Frozen parameter sets shared by the engine, the CLI and the app.

`asdict()` of a config is its cache key and its JSON metadata; `replace()` makes variants.
Views with their own parameters (slices, profiles, attacks, certification, studies) define their configs in
their own modules with the same conventions, validating in `__post_init__`.

The costs that are not forward passes of the vote sampler are counted in its passes here, once
for the views' `cost()` and the page defaults (`rsviz.defaults`), with the measured priors of
each page's actual ÷ estimated time (`OVERHEAD`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from rsviz.errors import ConfigError

Precision = Literal["auto", "fp32", "bf16", "fp16"]

# One iteration of the white-box boundary search (rsviz.whitebox.find_boundary_point: a margin
# gradient and its ray bisection, eager fp32), counted in passes of the vote sampler: measured
# 0.55–0.72 s per iteration at 67 passes/s on the 2-core AVX2 CPU (bench/defaults.py), ≈ 40–48.
WHITEBOX_ITERATION_PASSES = 45
# One Hessian-vector product of the profile's curvature (two margin gradients, eager fp32):
# 0.5 s each at 169 passes/s on the 2-core AVX-512 CPU (2026-12-07), ≈ 90 passes.
HVP_PASSES = 2 * WHITEBOX_ITERATION_PASSES
# Actual ÷ estimated seconds of each page's run, measured by bench/defaults.py (Lite0 through
# OpenVINO at 67 passes/s, 2-core AVX2 CPU, 2026-11-28): the views' cost() counts passes at the
# vote sampler's rate (white-box iterations at WHITEBOX_ITERATION_PASSES), but clean labels run
# eager fp32 torch and small vote batches (a dense slice point, an attack query) run below the
# engine's best rate. The priors of `rsviz.views.base.view_factor` until a page has run here;
# the quick preset sizes estimate × OVERHEAD to its budget.
OVERHEAD = {"image": 1.0, "slice": 1.9, "profile": 1.2, "dichotomy": 1.0, "attack": 1.5}

# The revision of the RS-aware attacks' results (rsviz.attacks.rs_aware): bump it when an
# RS-aware run gives another result for the same parameters (its decisions, checks or push
# change). It is the one counter of that change: the study's task ids carry it
# (rsviz.study.tasks) and the views' cache keys are `AttackRequest.VERSION = str(it)`
# (rsviz.views.attack, which `TheoryVsPracticeRequest` extends); here because the views
# must stay torch-free. 2: the final push (NoiseAwareOracle.secure); 3: a stalled run still ends
# with its final check and push (`Stalled`).
RS_AWARE_REVISION = 3


def check_sigma(sigma: float) -> None:
    """Raise a clear ConfigError unless sigma is a finite positive number."""
    if not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma <= 0:
        raise ConfigError(f"σ must be a positive number (got {sigma!r}).")


def check_count(name: str, value: int, minimum: int = 1) -> None:
    """Raise a clear ConfigError unless value is an integer >= minimum."""
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"{name} must be an integer ≥ {minimum} (got {value!r}).")


def check_votes_within(n: int, n_samples: int) -> None:
    """Raise unless 1 ≤ n ≤ N: a decision of g_{σ,n} takes n of the N votes drawn per point."""
    check_count("n", n)
    if n > n_samples:
        raise ConfigError(f"n = {n} exceeds N = {n_samples} samples per point: take N ≥ {n}.")


def check_forward(batch_size: int | None, precision: str) -> None:
    """Raise unless the forward settings are valid: batch size None (tuned) or ≥ 1, and a
    known precision ("auto", "fp32", "bf16", "fp16")."""
    if batch_size is not None:
        check_count("batch size", batch_size)
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"Unknown precision {precision!r} (auto, fp32, bf16 or fp16).")


def check_alpha(alpha: float) -> None:
    """Raise unless 0 < alpha < 1."""
    if not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ConfigError(f"α must lie strictly between 0 and 1 (got {alpha!r}).")


def check_probability(name: str, p: float) -> None:
    """Raise unless 0 < p < 1."""
    if not isinstance(p, (int, float)) or not 0 < p < 1:
        raise ConfigError(f"{name} must lie strictly between 0 and 1 (got {p!r}).")


@dataclass(frozen=True)
class SmoothingConfig:
    """How votes of the smoothed classifier are drawn.

    Attributes:
        sigma: noise standard deviation, in pixel units of [0, 1]^d.
        n: votes per query of the practical classifier g_{σ,n}.
        n_samples: N, the samples drawn per point to estimate p (N ≥ n; N // n draws of g).
        alpha: level of the Clopper–Pearson intervals (1 − α confidence).
        seed: seed of the torch.Generator that draws the noise.
        batch_size: forward batch size; None picks one from the device.
        precision: forward precision; "auto" uses bf16 autocast on CPUs that support it.
    """

    sigma: float = 0.25
    n: int = 10
    n_samples: int = 100
    alpha: float = 0.001
    seed: int = 0
    batch_size: int | None = None
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        check_sigma(self.sigma)
        check_count("N (samples)", self.n_samples)
        check_votes_within(self.n, self.n_samples)
        check_alpha(self.alpha)
        check_forward(self.batch_size, self.precision)


@dataclass(frozen=True)
class GSigmaSearch:
    """Budget of the ∂g_σ search along a ray (`rsviz.gsigma.find_gsigma`).

    Attributes:
        round_votes: votes per round of the sequential test at one point.
        max_votes: votes at most per point (a point this close to ∂g_σ is decided by p̂).
        alpha: level of the Clopper–Pearson test that stops a point early.
        cap_sigmas: farthest distance searched, in units of σ.
        doublings: distances tried before the cap (t₀, 2t₀, …).
        steps: bisection halvings of the bracket.
    """

    round_votes: int = 32
    max_votes: int = 256
    alpha: float = 0.01
    # ∂g_σ can lie hundreds of times farther than ∂f: on a held-out ImageNet photo with Lite0
    # at σ = 0.05 it was at L2 55.6 along the white-box direction, with ∂f at 0.11 (1,112σ)
    cap_sigmas: float = 2000.0
    doublings: int = 12
    steps: int = 7

    def __post_init__(self) -> None:
        check_count("votes per round", self.round_votes)
        check_count("votes per point", self.max_votes, self.round_votes)
        check_alpha(self.alpha)
        if not (isinstance(self.cap_sigmas, (int, float)) and self.cap_sigmas > 0):
            raise ConfigError(f"The search cap must be > 0 σ (got {self.cap_sigmas!r}).")
        check_count("doublings", self.doublings)
        check_count("bisection steps", self.steps, 0)

    def max_points(self) -> int:
        """Points tested at most: x_o, the doubling ladder and its cap, the bisection."""
        return 1 + self.doublings + 1 + self.steps

    def max_passes(self) -> int:
        """Forward passes at most (every point drawing its full `max_votes`)."""
        return self.max_points() * self.max_votes

    def typical_passes(self) -> int:
        """Forward passes of a typical search, for estimates: one round at x_o and on the
        ladder, every vote at each bisection point (measured with Lite0 on ImageNet photos:
        1,920–2,400; 1,440 on the linear toy)."""
        return (2 + self.doublings) * self.round_votes + self.steps * self.max_votes


def to_dict(config: Any) -> dict[str, Any]:
    """JSON-ready dict of a config dataclass, with its type name."""
    return {"type": type(config).__name__, **asdict(config)}
