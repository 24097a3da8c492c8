"""SurFree (Maho, Furon, Le Merrer, CVPR 2021): a surrogate-free decision-based ℓ2 attack.

SurFree never estimates a gradient. From the current adversarial point x_b it looks along the
circle of diameter [x_o, x_b] (Thales' circle) in a 2-D plane spanned by u = (x_b − x_o)/‖·‖ and a
fresh random direction v ⊥ u: every point of that circle is closer to x_o than x_b, at distance
‖x_b − x_o‖·cos θ. A few trial angles ±θ_max(1 − k/T) tell whether the plane leads to a better
adversarial; a binary search on θ then lands close to the boundary along the circle. θ_max adapts
(× ρ after a failed direction, ÷ ρ after a success), and v is drawn in the low-frequency half of
the image's DCT (the paper's "DCT" variant) and orthogonalised against u and the last `n_ortho`
directions so that the attack keeps exploring new planes.

Reimplemented from the paper. The defaults and the search schedule follow the authors' public
code (github.com/t-maho/SurFree, `config_example.json`), which was run outside this repository
against the same oracle and compared query by query, never copied; docs/attacks_fidelity.md
lists what was aligned and the deviations that stay (v ⊥ u exactly, orthonormal DCT, θ ≤ 89°).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Iterator, Literal

import torch

from rsviz.attacks.base import AttackState, make_state
from rsviz.attacks.bisection import bisect
from rsviz.attacks.oracle import Oracle
from rsviz.errors import ConfigError

Basis = Literal["dct", "full"]

INIT_TRIALS = 100          # Gaussian-noise draws to find a starting adversarial point
INIT_NOISE = 0.5           # standard deviation of that noise around x_o (pixels in [0,1])
INIT_BOOST = 0.8           # first blend factor tried towards x_o from the noisy start
MAX_ANGLE = 89.0           # θ = 90° is x_o itself: the search never goes past this angle


# --------------------------------------------------------------------------- directions


@functools.lru_cache(maxsize=8)
def dct_matrix(size: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix D [size, size]: coefficients = D @ signal, signal = Dᵀ @ coeffs."""
    k = torch.arange(size, dtype=torch.float64)[:, None]
    i = torch.arange(size, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi * (2 * i + 1) * k / (2 * size)) * math.sqrt(2.0 / size)
    matrix[0] /= math.sqrt(2.0)
    return matrix.float()


@functools.lru_cache(maxsize=8)
def zigzag_mask(size: int | tuple[int, int], fraction: float) -> torch.Tensor:
    """Bool mask [rows, cols] of the first ⌊fraction·rows·cols⌋ DCT coefficients in JPEG
    zig-zag order (anti-diagonals of increasing frequency, alternating direction)."""
    rows, cols = (size, size) if isinstance(size, int) else size
    order = sorted(((i, j) for i in range(rows) for j in range(cols)),
                   key=lambda ij: (ij[0] + ij[1], ij[1] if (ij[0] + ij[1]) % 2 else ij[0]))
    mask = torch.zeros(rows, cols, dtype=torch.bool)
    for i, j in order[:max(1, int(fraction * rows * cols))]:
        mask[i, j] = True
    return mask


def block_idct(coeffs: torch.Tensor, block: int | tuple[int, int] = 8) -> torch.Tensor:
    """Inverse 2-D DCT of every tile of coeffs [C,H,W] (H, W multiples of the tile size); a tile
    of (H, W) is the inverse DCT of the whole image."""
    rows, cols = (block, block) if isinstance(block, int) else block
    channels, height, width = coeffs.shape
    left, right = dct_matrix(rows).to(coeffs.device), dct_matrix(cols).to(coeffs.device)
    tiles = coeffs.reshape(channels, height // rows, rows, width // cols, cols)
    pixels = torch.einsum("ki,chkwl,lj->chiwj", left, tiles, right)
    return pixels.reshape(channels, height, width)


def random_dct_direction(shape: torch.Size, generator: torch.Generator, block: int | None = None,
                         fraction: float = 0.5) -> torch.Tensor:
    """A random low-frequency direction: coefficients in {−1, 0, 1} on the first `fraction` of
    the zig-zag-ordered DCT coefficients, zero elsewhere, mapped back to pixels. `block=None`
    takes the DCT of the whole image (the authors' default), an integer b the DCT of every b×b
    tile (JPEG-like)."""
    channels, height, width = shape
    if block is None:
        tile, padded_h, padded_w = (height, width), height, width
    else:
        tile = (block, block)
        padded_h, padded_w = -(-height // block) * block, -(-width // block) * block
    signs = torch.randint(-1, 2, (channels, padded_h, padded_w), generator=generator,
                          device=generator.device).float()
    mask = zigzag_mask(tile if tile[0] != tile[1] else tile[0], fraction).to(signs.device)
    mask = mask.repeat(padded_h // tile[0], padded_w // tile[1])
    return block_idct(signs * mask, tile)[:, :height, :width]


def random_full_direction(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """A random full-band direction (i.i.d. Gaussian pixels)."""
    return torch.randn(tuple(shape), generator=generator, device=generator.device)


def orthonormalize(t: torch.Tensor, u: torch.Tensor,
                   history: torch.Tensor | None = None) -> torch.Tensor | None:
    """Unit vector from t made orthogonal to the earlier directions `history` [k, d] (classical
    Gram–Schmidt, applied twice) and then exactly to the unit vector u; None if nothing is left.
    """
    v = t.flatten().clone()
    for _ in range(2):
        if history is not None and len(history):
            v -= history.T @ (history @ v)
        v -= (v @ u) * u
    norm = v.norm()
    if not torch.isfinite(norm) or norm < 1e-6 * max(float(t.norm()), 1e-12):
        return None
    return v / norm


def circle_point(x_o: torch.Tensor, u: torch.Tensor, v: torch.Tensor, dist: float,
                 theta_deg: float) -> torch.Tensor:
    """Point at angle θ on the circle of diameter [x_o, x_o + dist·u] in the plane (u, v):
    z(θ) = x_o + dist·cos θ·(cos θ·u + sin θ·v), clipped to [0,1] (SurFree, eq. for the polar
    search; ‖z(θ) − x_o‖ = dist·cos θ before clipping, never more after it)."""
    theta = math.radians(theta_deg)
    step = dist * math.cos(theta) * (math.cos(theta) * u + math.sin(theta) * v)
    return (x_o + step.view_as(x_o)).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- the attack


class SurFree:
    """SurFree (Maho, Furon, Le Merrer, "SurFree: a fast surrogate-free black-box attack",
    CVPR 2021, arXiv 2011.12807). Untargeted or targeted ℓ2, decision-based.

    Arguments (defaults of the authors' published configuration, `config_example.json`):
        steps: outer iterations (the published code's default is 100 with a separate
            max_queries; here the oracle's budget is the binding limit, so the default 1000 only
            guards against endless runs).
        BS_gamma: binary search on θ stops when |cos θ_low − cos θ_high| ≤ BS_gamma (0.01).
        BS_max_iteration: at most this many binary-search steps per direction (10); also the
            steps of the starting point's search towards x_o.
        theta_max: initial largest trial angle, degrees (30).
        n_ortho: a new direction is orthogonalised against the last n_ortho ones (10).
        rho: θ_max ← θ_max·ρ after a failed direction, θ_max/ρ after a success (0.98).
        T: trial angles per sign, ±θ_max·(1 − k/T) for k = 0..T−1 (1).
        check_opposite: while the binary search runs on the positive side, also query the
            mirror angle −θ and switch to it when only the mirror is adversarial (the authors'
            code does; the paper does not say). Costs one query per such direction.
        basis: "dct" — random signs on the low-frequency part of the DCT (the paper's DCT
            variant, `frequency_range=(0, 0.5)`); "full" — i.i.d. Gaussian directions (the
            quick variant: no prior, cheaper to draw).
        frequency: fraction of the zig-zag-ordered DCT coefficients used (0.5).
        block: None — DCT of the whole image (the authors' `dct_type="full"`); an integer b —
            DCT of every b×b tile (their "8x8" option).

    Queries go only through `oracle.is_adversarial`; the oracle counts them (initialisation
    included) and stops the attack at its budget. Every point kept is one the oracle accepted,
    and the yielded x_adv is the closest accepted point so far (`oracle.best_x`), so its distortion
    never increases, even against the random answers of g_{σ,n}.
    """

    name = "surfree"

    def __init__(self, steps: int = 1000, BS_gamma: float = 0.01, BS_max_iteration: int = 10,
                 theta_max: float = 30.0, n_ortho: int = 10, rho: float = 0.98, T: int = 1,
                 check_opposite: bool = True, basis: Basis = "dct", frequency: float = 0.5,
                 block: int | None = None) -> None:
        if steps < 1 or BS_max_iteration < 0 or T < 1 or n_ortho < 0:
            raise ConfigError("SurFree needs steps ≥ 1, T ≥ 1, BS_max_iteration ≥ 0, n_ortho ≥ 0.")
        if not 0.0 < rho <= 1.0:
            raise ConfigError(f"SurFree's rho must be in (0, 1], got {rho}.")
        if not 0.0 < theta_max < 90.0:
            raise ConfigError(f"SurFree's theta_max must be in (0°, 90°), got {theta_max}.")
        if not 0.0 < BS_gamma < 1.0:
            raise ConfigError(f"SurFree's BS_gamma must be in (0, 1), got {BS_gamma}.")
        if basis not in ("dct", "full"):
            raise ConfigError(f"SurFree's basis must be 'dct' or 'full', got {basis!r}.")
        if not 0.0 < frequency <= 1.0 or (block is not None and block < 1):
            raise ConfigError("SurFree needs 0 < frequency ≤ 1 and block ≥ 1 (or None).")
        self.n_steps = int(steps)   # `steps` is the method
        self.BS_gamma = float(BS_gamma)
        self.BS_max_iteration = int(BS_max_iteration)
        self.theta_max = float(theta_max)
        self.n_ortho = int(n_ortho)
        self.rho = float(rho)
        self.T = int(T)
        self.check_opposite = bool(check_opposite)
        self.basis = basis
        self.frequency = float(frequency)
        self.block = None if block is None else int(block)

    # ----------------------------------------------------------------------- helpers

    def _direction(self, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
        if self.basis == "dct":
            return random_dct_direction(shape, generator, self.block, self.frequency)
        return random_full_direction(shape, generator)

    def _initialise(self, oracle: Oracle, x_o: torch.Tensor,
                    generator: torch.Generator) -> torch.Tensor | None:
        """Gaussian noise around x_o (std INIT_NOISE, clipped) until one draw is adversarial,
        then a search on the blend (1 − ε)·x_o + ε·noise towards x_o: one query at
        ε = INIT_BOOST, then BS_max_iteration bisection steps. Returns an accepted point, or
        None."""
        noise = None
        for _ in range(INIT_TRIALS):
            draw = torch.randn(tuple(x_o.shape), generator=generator, device=generator.device)
            draw = (x_o + INIT_NOISE * draw.to(x_o.device)).clamp(0.0, 1.0)
            if bool(oracle.is_adversarial(draw)):
                noise = draw
                break
        if noise is None:
            return None
        accepts = lambda eps: bool(oracle.is_adversarial(x_o + eps * (noise - x_o)))  # noqa: E731
        bad, good = (0.0, INIT_BOOST) if accepts(INIT_BOOST) else (INIT_BOOST, 1.0)
        eps = bisect(accepts, bad, good, tol=0.0, max_steps=self.BS_max_iteration)
        return x_o + eps * (noise - x_o)

    def _trial_angles(self, theta_max: float) -> list[float]:
        """±θ_max·(1 − k/T), largest first, positive before negative."""
        angles = []
        for k in range(self.T):
            angle = min(theta_max * (1 - k / self.T), MAX_ANGLE)
            angles += [angle, -angle]
        return angles

    def _refine_angle(self, oracle: Oracle, point: Callable[[float], torch.Tensor], good: float,
                      theta_max: float) -> float:
        """Binary search on θ from the accepted trial angle `good` towards x_o: the bracket's
        other end is one trial step θ_max/T further (θ_max already updated after the success),
        taken as rejected without a query. Stops when |cos θ_good − cos θ_bad| ≤ BS_gamma or after
        BS_max_iteration steps; with `check_opposite`, each step on the positive side also
        queries the mirror angle and moves there when only the mirror is accepted. Returns the
        largest accepted angle (signed).

        The search runs on |θ| (`bisect`): the circle's distance to x_o depends on cos θ only,
        so a move to the mirror is an accepted step whose sign flips."""
        sign = 1.0 if good > 0 else -1.0
        bad = min(abs(good) + theta_max / self.T, MAX_ANGLE)
        mirror = self.check_opposite and good > 0

        def accepts(angle: float) -> bool:
            nonlocal sign, mirror
            hit = bool(oracle.is_adversarial(point(sign * angle)))
            hit_mirror = mirror and bool(oracle.is_adversarial(point(-sign * angle)))
            if hit_mirror and not hit:
                sign = -sign
            mirror = mirror and hit_mirror and sign > 0
            return hit or hit_mirror

        angle = bisect(accepts, bad, abs(good), self.BS_gamma, self.BS_max_iteration,
                       scale=lambda t: math.cos(math.radians(t)))
        return sign * angle

    # ----------------------------------------------------------------------- iteration

    def steps(self, oracle: Oracle, x_o: torch.Tensor,
              generator: torch.Generator) -> Iterator[AttackState]:
        """Yield a state after initialisation, then after each outer iteration."""
        x_o = x_o.detach().to(oracle.device, torch.float32)
        x_b = self._initialise(oracle, x_o, generator)
        if x_b is None:
            yield make_state(oracle, 0, oracle.best_x, "no adversarial starting point found")
            return
        x_b = oracle.best_x if oracle.best_x is not None else x_b
        yield make_state(oracle, 0, x_b, "initialisation (noise + binary search)")
        theta_max = self.theta_max
        history = torch.zeros(max(self.n_ortho, 1), x_o.numel(), device=x_o.device)
        stored = 0   # directions written to the ring buffer `history` so far
        for iteration in range(1, self.n_steps + 1):
            dist = float((x_b - x_o).norm())
            if dist <= 1e-12:
                return
            u = ((x_b - x_o) / dist).flatten()
            found = None
            while found is None:   # each pass queries at least once: bounded by the budget
                t = self._direction(x_o.shape, generator).to(x_o.device)
                v = orthonormalize(t, u, history[:min(stored, self.n_ortho)])
                if v is None and stored:       # the history spans the space: start afresh
                    stored = 0
                    v = orthonormalize(t, u)
                if v is None:
                    return
                if self.n_ortho:
                    history[stored % self.n_ortho] = v
                    stored += 1
                point = lambda theta, v=v: circle_point(x_o, u, v, dist, theta)  # noqa: E731
                for angle in self._trial_angles(theta_max):
                    if bool(oracle.is_adversarial(point(angle))):
                        found = (angle, point)
                        break
                if found is None:
                    theta_max *= self.rho
            angle, point = found
            theta_max = min(theta_max / self.rho, MAX_ANGLE)
            self._refine_angle(oracle, point, angle, theta_max)
            x_b = oracle.best_x if oracle.best_x is not None else x_b
            yield make_state(oracle, iteration, x_b, f"circular search (θ_max={theta_max:.2f}°)")
