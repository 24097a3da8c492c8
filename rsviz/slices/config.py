"""Parameters of a boundary slice and what it will cost."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rsviz.config import Precision, check_alpha, check_count, check_sigma, check_votes_within
from rsviz.errors import ConfigError


Direction = Literal["random", "image", "whitebox"]
Mode = Literal["adaptive", "dense"]
DIRECTIONS: dict[str, str] = {
    "random": "two seeded random directions",
    "image": "towards a second image + a random direction",
    "whitebox": "towards a white-box boundary point x_a + a random direction",
}


@dataclass(frozen=True)
class SliceConfig:
    """Parameters of a boundary slice.

    Attributes:
        sigma: noise standard deviation (pixel units of [0, 1]).
        ns: the n of the g_{σ,n} realisations shown side by side (each ≤ n_samples).
        grid: G, points per side (odd, so that x_o is the centre point).
        extent: E, half-width of the slice in L2 units: u, v ∈ [−E, E]. None: automatic
            (1.25× the nearest f-boundary crossing on the axes for random directions,
            1.25× the distance to the second image, 2× the distance to x_a).
        n_samples: N, votes per point where the full estimate is drawn.
        direction: "random", "image" (towards a second image) or "whitebox" (towards x_a).
        target: name of the second image (part of the cache key; the tensor is passed apart).
        clip: clip the slice's points to [0, 1]^d (off by default, as in the paper).
        mode: "adaptive" (votes only until each label is decided) or "dense".
        n0: votes per visited point in the adaptive first pass (capped at N).
        coarse: stride of the adaptive coarse grid (a power of 2; 1 disables the refinement).
        alpha: adaptive only: level of the sequential test that stops drawing votes at a
            point once its top class is decided (sign test of the top class against the
            runner-up, one-sided p-value ≤ alpha after each doubling of the votes).
        exact_realisations: adaptive only: draw fresh lazy votes wherever a g_{σ,n}
            realisation would otherwise be inferred (fewer than n votes drawn; ~n/2 votes
            per such point).
        seed: seeds the random directions (and the noise unless noise_seed is set).
        noise_seed: seeds the noise of the votes (None: `seed`).
    """

    sigma: float = 0.05
    ns: tuple[int, ...] = (10, 50)  # the app's standard setting (rsviz.defaults.STANDARD)
    grid: int = 17
    extent: float | None = None
    n_samples: int = 50
    direction: Direction = "random"
    target: str = ""
    clip: bool = False
    mode: Mode = "adaptive"
    n0: int = 16
    coarse: int = 4
    alpha: float = 0.001
    exact_realisations: bool = False
    seed: int = 0
    noise_seed: int | None = None
    batch_size: int | None = None
    precision: Precision = "auto"

    def __post_init__(self) -> None:
        check_sigma(self.sigma)
        object.__setattr__(self, "ns", tuple(sorted({int(n) for n in self.ns})))
        if not self.ns:
            raise ConfigError("Choose at least one n for the g_{σ,n} panels.")
        for n in self.ns:
            check_count("n", n)
        check_count("N (samples)", self.n_samples)
        check_votes_within(max(self.ns), self.n_samples)
        check_count("grid", self.grid, 3)
        if self.grid % 2 == 0 or self.grid > 1001:
            raise ConfigError(f"grid must be odd (x_o at the centre) and ≤ 1001 (got {self.grid}).")
        if self.extent is not None and not (isinstance(self.extent, (int, float))
                                            and math.isfinite(self.extent) and self.extent > 0):
            raise ConfigError(f"extent must be a positive L2 distance (got {self.extent!r}).")
        if self.direction not in DIRECTIONS:
            raise ConfigError(f"Unknown direction {self.direction!r}; use {', '.join(DIRECTIONS)}.")
        if self.mode not in ("adaptive", "dense"):
            raise ConfigError(f"Unknown mode {self.mode!r}; use adaptive or dense.")
        check_count("n0", self.n0)
        object.__setattr__(self, "n0", min(self.n0, self.n_samples))
        check_alpha(self.alpha)
        if self.alpha >= 0.5:  # a sign test at level ≥ 1/2 would "decide" an exact tie
            raise ConfigError(f"α of the sequential test must be below 0.5 (got {self.alpha}).")
        check_count("coarse stride", self.coarse)
        if self.coarse & (self.coarse - 1):
            raise ConfigError(f"coarse stride must be a power of 2 (got {self.coarse}).")


def estimate_passes(config: SliceConfig) -> int:
    """Forward passes a slice will cost (exact for dense; a rough guess for adaptive that
    assumes two boundaries crossing the slice, each with ~4G points of sequential votes and
    ~G points near a tie that need the full N)."""
    G, N = config.grid, config.n_samples
    if config.mode == "dense":
        return G * G + G * G * N
    s = min(config.coarse, G - 1)
    coarse_points = ((G - 1) // s + 1) ** 2
    band = 2 * G * (12 * config.n0 + N)
    extra = G * G * max(config.ns) // 2 if config.exact_realisations else 0
    return int(min(G * G + N + config.n0 * coarse_points + band + extra, G * G * (N + 1)))
