"""2D slices of image space around x_o, with and without smoothing (paper Fig. 2).

A slice is the plane x(u, v) = x_o + u·e1 + v·e2 (e1, e2 orthonormal, Gram–Schmidt), sampled
on a G×G grid u, v ∈ [−E, E] (E in L2 units of [0, 1]^d). Points are NOT clipped to the
image cube unless `clip=True` (the paper does not clip; neither does Cohen et al.'s noise).

From one vote pass (N noisy samples per point, `rsviz.smoothing.sample_votes`) it derives:
f's labels; the ideal g_σ labels (top class of the votes) with p̂_y; one realisation of
g_{σ,n} per chosen n (the plurality of the first n of the same N votes, so several n share
one pass); P[g_{σ,n}(x) ≠ y] by the two-class binomial law from p̂_y; y = g_σ(x_o).

Two ways to spend the forward passes (`mode`):
- "dense": N votes at every grid point (G²·N passes), the reference;
- "adaptive" (`_adaptive` below, docs/slices.md): a coarse-to-fine grid with n0 votes per
  visited point; cells whose corners agree unanimously (and where f agrees) are filled without
  sampling; a point keeps doubling its votes (up to N) only until a sequential sign test
  decides its top class.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch

from rsviz.config import Precision, check_alpha, check_count, check_sigma, check_votes_within
from rsviz.errors import ConfigError, RsvizError
from rsviz.jobs import NullProgress, Progress, SubProgress
from rsviz.models import Classifier
from rsviz.smoothing import estimate_rate, forward_labels, make_generator
from rsviz.theory import prob_wrong_binomial

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
    ns: tuple[int, ...] = (10, 50, 200)
    grid: int = 25
    extent: float | None = None
    n_samples: int = 200
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


# ------------------------------------------------------------------------------ the plane


def gram_schmidt(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal e1 ∥ a and e2 in span(a, b) (twice re-orthogonalised, float64 inside)."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    if float(a64.norm()) < 1e-12:
        raise RsvizError("The first direction of the slice is zero (same image twice?).")
    e1 = a64 / a64.norm()
    e2 = b64
    for _ in range(2):
        e2 = e2 - (e2 @ e1) * e1
    if float(e2.norm()) < 1e-9 * float(b64.norm() + 1e-30):
        raise RsvizError("The two directions of the slice are parallel.")
    e2 = e2 / e2.norm()
    return e1.view_as(a).to(a.dtype), e2.view_as(b).to(b.dtype)


@dataclass
class Plane:
    """x(u, v) = x_o + u·e1 + v·e2, with points of interest as (name, u, v)."""

    x_o: torch.Tensor
    e1: torch.Tensor
    e2: torch.Tensor
    landmarks: list[tuple[str, float, float]] = field(default_factory=list)
    forward_passes: int = 0

    def points(self, u: np.ndarray, v: np.ndarray, clip: bool = False) -> torch.Tensor:
        """[m, 3, H, W] images at coordinates (u_i, v_i)."""
        uu = torch.as_tensor(np.asarray(u, dtype=np.float32), device=self.x_o.device)
        vv = torch.as_tensor(np.asarray(v, dtype=np.float32), device=self.x_o.device)
        shape = (-1,) + (1,) * self.x_o.dim()
        x = self.x_o[None] + uu.view(shape) * self.e1[None] + vv.view(shape) * self.e2[None]
        return x.clamp_(0, 1) if clip else x


def make_plane(model: Classifier, x_o: torch.Tensor, config: SliceConfig,
               target: torch.Tensor | None = None, y: int | None = None,
               progress: Progress | None = None) -> Plane:
    """The slice plane for `config.direction` (random: seeded; image: towards `target`;
    whitebox: towards `rsviz.whitebox.find_boundary_point`'s x_a). Directions are drawn on the
    CPU so that a seed gives the same plane on every device."""
    generator = torch.Generator().manual_seed(int(config.seed))
    x_cpu = x_o.detach().float().cpu()
    second = torch.randn(x_cpu.shape, generator=generator)
    landmarks: list[tuple[str, float, float]] = [("x_o", 0.0, 0.0)]
    passes = 0
    if config.direction == "random":
        first = torch.randn(x_cpu.shape, generator=generator)
    elif config.direction == "image":
        if target is None:
            raise RsvizError("Choose a second image for the direction 'towards an image'.")
        if tuple(target.shape) != tuple(x_cpu.shape):
            raise RsvizError(f"The second image has shape {tuple(target.shape)}, "
                             f"x_o has {tuple(x_cpu.shape)}: preprocess it for the model.")
        first = target.detach().float().cpu() - x_cpu
        if float(first.norm()) < 1e-6:
            raise RsvizError("The second image is the same as x_o: choose another one.")
        landmarks.append((config.target or "second image", float(first.norm()), 0.0))
    else:
        try:
            from rsviz.whitebox import find_boundary_point
        except ImportError as exc:  # the module is written by another helper
            raise RsvizError("white-box boundary point not available") from exc
        point = find_boundary_point(model, x_o, y, generator=generator, progress=progress)
        first = point.x_a.detach().float().cpu() - x_cpu
        landmarks.append(("x_a (white-box)", float(point.distance), 0.0))
        passes = int(getattr(point, "forward_passes", 0))
    e1, e2 = gram_schmidt(first, second)
    device = model.device
    return Plane(x_cpu.to(device), e1.to(device), e2.to(device), landmarks, passes)


def auto_extent(model: Classifier, plane: Plane, config: SliceConfig) -> tuple[float, int]:
    """(E, forward passes): the automatic half-width of the slice (see SliceConfig.extent)."""
    far = [d for name, d, _ in plane.landmarks if name != "x_o"]
    if far:
        return _round2(far[0] * (2.0 if config.direction == "whitebox" else 1.25)), 0
    steps = 0.25 * 2.0 ** (np.arange(27) / 2)  # 0.25 … 2048 by factors of √2
    u = np.concatenate([steps, -steps, 0 * steps, 0 * steps, [0.0]])
    v = np.concatenate([0 * steps, 0 * steps, steps, -steps, [0.0]])
    labels = forward_labels(model, plane.points(u, v, config.clip), config.batch_size,
                            config.precision)
    crossing = [float(steps[k]) for axis in range(4)
                for k in range(len(steps)) if labels[axis * len(steps) + k] != labels[-1]]
    return (_round2(1.25 * min(crossing)) if crossing else 100.0), len(u)


def _round2(x: float) -> float:
    """x rounded to two significant digits."""
    return float(f"{x:.2g}")


# --------------------------------------------------------------------------------- result


@dataclass
class SliceResult:
    """Maps of one slice, indexed [iv, iu] (rows follow v, columns follow u).

    Attributes:
        config: the SliceConfig (with `extent` as given; `extent` below is the one used).
        u, v: [G] coordinates (L2 units).
        y: reference class, g_σ(x_o) estimated from N votes at x_o.
        f_labels: [G, G] base classifier labels (no noise).
        g_labels: [G, G] ideal g_σ labels (top class of the votes; lowest index on ties).
        p_top: [G, G] p̂ of that top class.
        p_y: [G, G] p̂_y.
        draws: n -> [G, G] one realisation of g_{σ,n}.
        draw_exact: n -> [G, G] True where that realisation is an exact draw from real votes.
        samples: [G, G] votes drawn at each point (0 where the adaptive grid filled the cell).
        landmarks: (name, u, v) points of interest (x_o, second image, x_a).
        class_names: {class index: name} for every class that occurs in a map.
        forward_passes: base-model forward passes spent (plane + f + votes).
        dense_passes: what the dense computation costs (G² + G²·N).
        seconds: wall time.
        e1, e2: the plane directions (float32 numpy, image shape) to rebuild any point.
    """

    config: SliceConfig
    extent: float
    u: np.ndarray
    v: np.ndarray
    y: int
    f_labels: np.ndarray
    g_labels: np.ndarray
    p_top: np.ndarray
    p_y: np.ndarray
    draws: dict[int, np.ndarray]
    draw_exact: dict[int, np.ndarray]
    samples: np.ndarray
    landmarks: list[tuple[str, float, float]]
    class_names: dict[int, str]
    forward_passes: int
    dense_passes: int
    seconds: float
    e1: np.ndarray
    e2: np.ndarray

    @property
    def grid(self) -> int:
        return len(self.u)

    def p_adversarial(self, n: int) -> np.ndarray:
        """[G, G] P[g_{σ,n}(x) ≠ y]: two-class binomial law from p̂_y (y against all other
        classes pooled, random tie-break): exact for two classes, an over-estimate where the
        other votes split among several classes."""
        return prob_wrong_binomial(self.p_y, n)

    def point(self, x_o: torch.Tensor, u: float, v: float) -> torch.Tensor:
        """The image x(u, v) of this slice ([3, H, W], clipped only if the config clips)."""
        e1 = torch.from_numpy(self.e1).to(x_o.device)
        e2 = torch.from_numpy(self.e2).to(x_o.device)
        x = x_o.float() + float(u) * e1 + float(v) * e2
        return x.clamp(0, 1) if self.config.clip else x

    def summary(self) -> dict:
        """JSON-ready numbers of the slice."""
        return {"grid": self.grid, "extent": self.extent, "y": self.y,
                "y_name": self.class_names.get(self.y, str(self.y)),
                "forward_passes": self.forward_passes, "dense_passes": self.dense_passes,
                "savings": self.dense_passes / max(self.forward_passes, 1),
                "seconds": self.seconds, "mode": self.config.mode,
                "exact_fraction": {n: float(m.mean()) for n, m in self.draw_exact.items()},
                "landmarks": [list(lm) for lm in self.landmarks]}

    def save_npz(self, path: str) -> None:
        """All maps in one .npz (keys f_labels, g_labels, p_top, p_y, samples, u, v,
        g_n{n}, exact_n{n}, p_adv_n{n})."""
        arrays = {"u": self.u, "v": self.v, "f_labels": self.f_labels, "g_labels": self.g_labels,
                  "p_top": self.p_top, "p_y": self.p_y, "samples": self.samples,
                  "y": np.array(self.y)}
        for n in self.draws:
            arrays[f"g_n{n}"] = self.draws[n]
            arrays[f"exact_n{n}"] = self.draw_exact[n]
            arrays[f"p_adv_n{n}"] = self.p_adversarial(n)
        np.savez_compressed(path, **arrays)


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


def forward_rate(model: Classifier, batch: int = 16, precision: str = "auto") -> float:
    """Deprecated name of `rsviz.smoothing.estimate_rate` (kept until pages/2 switches;
    `batch` is ignored)."""
    return estimate_rate(model, precision)


# ---------------------------------------------------------------------------- computation


class _Meter:
    """Forward passes done and the expected total, reported to a Progress.

    It is a Progress itself, in absolute pass counts: parts of the work report through
    `part` (a `SubProgress`), and the message says how many passes are done.
    """

    def __init__(self, progress: Progress, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def part(self, message: str, share: int, offset: int = 0) -> SubProgress:
        """A Progress for a part of `share` passes starting `offset` passes past `done`."""
        return SubProgress(self, self.done + offset, share, None, message)

    def add(self, passes: int, message: str) -> None:
        self.done += int(passes)
        self.total = max(self.total, self.done)
        self.progress.report(self.done, self.total, message)

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: object = None) -> None:
        now = int(round(done))
        self.total = max(self.total, now)
        self.progress.report(now, self.total,
                             f"{message}: {now:,} / ~{self.total:,} forward passes")

    def check_cancel(self) -> None:
        self.progress.check_cancel()


class _Slice:
    """Working state of one slice computation: the grid, the maps, the vote sampler."""

    def __init__(self, model: Classifier, plane: Plane, config: SliceConfig, extent: float,
                 meter: _Meter) -> None:
        self.model, self.plane, self.config, self.meter = model, plane, config, meter
        G = config.grid
        self.coords = np.linspace(-extent, extent, G)
        noise_seed = config.seed if config.noise_seed is None else config.noise_seed
        self.generator = make_generator(noise_seed, model.device)
        self.rng = np.random.default_rng(noise_seed)
        C = model.info.num_classes
        self.C = C
        self.f = np.zeros(G * G, dtype=np.int64)
        self.top = np.full(G * G, -1, dtype=np.int64)
        self.p_top = np.zeros(G * G)
        self.p_y = np.zeros(G * G)
        self.samples = np.zeros(G * G, dtype=np.int64)
        self.draws = {n: np.full(G * G, -1, dtype=np.int64) for n in config.ns}
        self.exact = {n: np.zeros(G * G, dtype=bool) for n in config.ns}
        self.y = -1
        bytes_per_image = 4 * int(np.prod(model.info.input_shape))
        self.max_points = int(max(1, min(4096, (128 * 2**20) // bytes_per_image)))

    def xs(self, flat: np.ndarray) -> torch.Tensor:
        G = self.config.grid
        return self.plane.points(self.coords[flat % G], self.coords[flat // G], self.config.clip)

    def base_labels(self, flat: np.ndarray) -> None:
        """f at the given grid points."""
        sub = self.meter.part("base classifier f", len(flat))
        for start in range(0, len(flat), self.max_points):
            chunk = flat[start:start + self.max_points]
            self.f[chunk] = forward_labels(self.model, self.xs(chunk), self.config.batch_size,
                                           self.config.precision)
            sub.report(start + len(chunk), len(flat))
        self.meter.add(len(flat), "base classifier f")

    def votes(self, flat: np.ndarray, n: int, message: str) -> np.ndarray:
        """[len(flat), n] labels of n fresh noisy votes at each grid point."""
        from rsviz.smoothing import sample_votes

        out = np.zeros((len(flat), n), dtype=np.int64)
        per_chunk = int(max(1, min(self.max_points, 4096 // n)))
        for start in range(0, len(flat), per_chunk):
            self.meter.progress.check_cancel()
            chunk = flat[start:start + per_chunk]
            record = sample_votes(self.model, self.xs(chunk), self.config.sigma, n,
                                  self.generator, self.config.batch_size, self.config.precision,
                                  progress=self.meter.part(message, len(chunk) * n, start * n))
            out[start:start + len(chunk)] = record.labels
        self.meter.add(len(flat) * n, message)
        return out

    def store_votes(self, flat: np.ndarray, labels: np.ndarray) -> None:
        """Points whose votes, in draw order, are `labels` ([m, k], any k ≥ 1): p̂ and the
        top class from the k votes, g_{σ,n} realisations by `realisation`."""
        from rsviz.smoothing import VoteRecord

        k = labels.shape[1]
        for start in range(0, len(flat), 512):
            chunk, lab = flat[start:start + 512], labels[start:start + 512]
            record = VoteRecord(labels=lab, num_classes=self.C, sigma=self.config.sigma)
            counts = record.counts
            top = counts.argmax(1)
            self.top[chunk] = top
            self.p_top[chunk] = record.p_hat(top)
            if self.y >= 0:
                self.p_y[chunk] = record.p_hat(self.y)
            self.samples[chunk] = k
            for n in self.config.ns:
                self.draws[n][chunk], self.exact[n][chunk] = realisation(lab, counts, n,
                                                                         self.rng)

    def store_filled(self, flat: np.ndarray, label: np.ndarray) -> None:
        """Points filled with `label` without any vote (realisations inferred)."""
        self.top[flat] = label
        self.p_top[flat] = 1.0
        self.p_y[flat] = (label == self.y).astype(float)
        self.samples[flat] = 0
        for n in self.config.ns:
            self.draws[n][flat] = label
            self.exact[n][flat] = False

    def centre(self) -> None:
        """y = g_σ(x_o) from N votes at the centre point."""
        G = self.config.grid
        c = np.array([(G // 2) * G + G // 2])
        labels = self.votes(c, self.config.n_samples, "votes at x_o")
        self.y = int(np.bincount(labels[0], minlength=self.C).argmax())
        self.store_votes(c, labels)


def _lattice(G: int, stride: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, G, stride), G - 1])


def _dense(state: _Slice) -> None:
    G, N = state.config.grid, state.config.n_samples
    rest = np.setdiff1d(np.arange(G * G), [(G // 2) * G + G // 2])
    for start in range(0, len(rest), state.max_points * 4):
        chunk = rest[start:start + state.max_points * 4]
        state.store_votes(chunk, state.votes(chunk, N, "dense votes"))


def _top_two(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[m] largest and second largest vote counts of each row of [m, C] counts."""
    if counts.shape[1] < 2:
        return counts[:, 0], np.zeros(len(counts), dtype=counts.dtype)
    two = np.partition(counts, -2, axis=1)[:, -2:]
    return two[:, 1], two[:, 0]


def realisation(labels: np.ndarray, counts: np.ndarray, n: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One realisation of g_{σ,n} per row of votes, and whether it is an exact draw.

    Args:
        labels: [m, k] votes in draw order; counts: their [m, C] class counts.
        n: votes of the realisation.

    n ≤ k: the plurality of the first n votes (random tie-break), exact. n > k: exact, and
    equal to the leader, when the leader's count exceeds the runner-up's by more than the
    n − k votes still to come (lazy-vote argument); otherwise the n − k missing votes are
    simulated from the multinomial law of p̂ = counts / k and the draw is inferred.
    """
    from rsviz.smoothing import VoteRecord

    m, k = labels.shape
    if n <= k:
        record = VoteRecord(labels=labels[:, :n], num_classes=counts.shape[1], sigma=0.0)
        return record.g_draws(n, rng)[:, 0], np.ones(m, dtype=bool)
    lead, second = _top_two(counts)
    sure = lead > second + (n - k)
    final = counts + rng.multinomial(n - k, counts / k)
    jitter = rng.random(final.shape) * 0.5  # random tie-break, never reorders distinct counts
    return np.where(sure, counts.argmax(1), (final + jitter).argmax(1)), sure


def decided(labels: np.ndarray, num_classes: int, alpha: float) -> np.ndarray:
    """[m] True where the top class of each row of votes ([m, k] labels) is decided at
    level α: one-sided sign test of the top class against the runner-up,
    P[Binomial(k1 + k2, 1/2) ≥ k1] ≤ α (k1, k2 the two largest counts)."""
    from scipy.stats import binom

    from rsviz.smoothing import VoteRecord

    counts = VoteRecord(labels=labels, num_classes=num_classes, sigma=0.0).counts
    lead, second = _top_two(counts)
    return binom.sf(lead - 1, lead + second, 0.5) <= alpha


def _adaptive(state: _Slice) -> None:
    """Coarse-to-fine sampling with sequential votes (docs/slices.md, "Adaptive sampling").

    1. n0 votes at every point of the coarse lattice (stride `coarse`, last row/column kept).
    2. Halving the stride: a new lattice point inside a cell of the previous lattice whose
       corners are all settled (n0 unanimous votes, or filled) with the same class c, and
       where f = c at every grid point of the cell, is filled with c without sampling;
       any other new point gets n0 votes.
    3. Sequential votes: a point whose top class is not yet decided (sign test at level α,
       `decided`) has its votes doubled (n0, 2n0, 4n0, …, N), keeping the votes already
       drawn, until it is decided or has N votes.
    4. Repeated until stable: a filled point with a 4-neighbour of another top class gets
       n0 votes (and step 3), so that a boundary never runs through an unsampled cell.
    """
    cfg, G = state.config, state.config.grid
    n0, N, C = cfg.n0, cfg.n_samples, state.C
    grid = np.arange(G * G).reshape(G, G)
    settled = np.zeros(G * G, dtype=bool)  # unanimous n0 votes, or filled
    filled = np.zeros(G * G, dtype=bool)
    visited = np.zeros(G * G, dtype=bool)
    pending: list[tuple[np.ndarray, np.ndarray]] = []  # (points, their n0 votes) undecided
    centre = (G // 2) * G + G // 2
    visited[centre] = True

    def sample(flat: np.ndarray, message: str) -> None:
        flat = flat[~visited[flat]]
        if len(flat) == 0:
            return
        labels = state.votes(flat, n0, message)
        visited[flat] = True
        settled[flat] = (labels == labels[:, :1]).all(1)
        state.store_votes(flat, labels)
        ok = decided(labels, C, cfg.alpha) | (n0 >= N)
        if (~ok).any():
            pending.append((flat[~ok], labels[~ok]))

    def escalate() -> None:
        """Double the votes of the pending points until each is decided or has N."""
        if not pending:
            return
        flat = np.concatenate([p for p, _ in pending])
        labels = np.concatenate([lab for _, lab in pending])
        pending.clear()
        drawn = labels.shape[1]
        while len(flat) and drawn < N:
            more = min(2 * drawn, N) - drawn
            labels = np.c_[labels, state.votes(flat, more, f"sequential votes ({drawn + more})")]
            drawn += more
            ok = decided(labels, C, cfg.alpha) | (drawn >= N)
            state.store_votes(flat[ok], labels[ok])
            flat, labels = flat[~ok], labels[~ok]

    stride = min(cfg.coarse, G - 1)
    lat = _lattice(G, stride)
    sample(grid[np.ix_(lat, lat)].ravel(), f"coarse grid (stride {stride}), n0 = {n0}")
    while stride > 1:
        stride //= 2
        new_lat = _lattice(G, stride)
        todo, fill, fill_label = [], [], []
        for iv in new_lat:
            v0, v1 = _bracket(lat, iv)
            for iu in new_lat:
                k = grid[iv, iu]
                if visited[k]:
                    continue
                u0, u1 = _bracket(lat, iu)
                corners = grid[[v0, v0, v1, v1], [u0, u1, u0, u1]]
                c = state.top[corners[0]]
                block = state.f[grid[v0:v1 + 1, u0:u1 + 1]]
                if settled[corners].all() and (state.top[corners] == c).all() \
                        and (block == c).all():
                    fill.append(k)
                    fill_label.append(c)
                else:
                    todo.append(k)
        fill_arr = np.array(fill, dtype=np.int64)
        visited[fill_arr] = True
        settled[fill_arr] = True
        filled[fill_arr] = True
        state.store_filled(fill_arr, np.array(fill_label, dtype=np.int64))
        sample(np.array(todo, dtype=np.int64), f"refining (stride {stride}), n0 = {n0}")
        lat = new_lat
    escalate()
    for _ in range(G):  # sample filled points at a class change until none is left
        top = state.top.reshape(G, G)
        differs = np.zeros((G, G), dtype=bool)
        differs[1:] |= top[1:] != top[:-1]
        differs[:-1] |= top[:-1] != top[1:]
        differs[:, 1:] |= top[:, 1:] != top[:, :-1]
        differs[:, :-1] |= top[:, :-1] != top[:, 1:]
        flat = np.flatnonzero(filled & differs.ravel())
        if len(flat) == 0:
            break
        filled[flat] = False
        visited[flat] = False
        sample(flat, f"n0 = {n0} votes in filled cells at a class change")
        escalate()
    if cfg.exact_realisations:
        _exact_realisations(state)


def _bracket(lattice: np.ndarray, i: int) -> tuple[int, int]:
    """Neighbouring indices of the coarser lattice around i (equal when i is on it)."""
    k = int(np.searchsorted(lattice, i))
    if k < len(lattice) and lattice[k] == i:
        return int(i), int(i)
    return int(lattice[k - 1]), int(lattice[k])


def _exact_realisations(state: _Slice) -> None:
    """Replace inferred g_{σ,n} realisations by exact lazy votes (fresh noise)."""
    from rsviz.smoothing import lazy_votes

    for n in state.config.ns:
        flat = np.flatnonzero(~state.exact[n])
        for start in range(0, len(flat), state.max_points):
            state.meter.progress.check_cancel()
            chunk = flat[start:start + state.max_points]
            out = lazy_votes(state.model, state.xs(chunk), state.config.sigma, n,
                             state.generator, state.config.batch_size, state.config.precision)
            state.draws[n][chunk] = out.labels
            state.exact[n][chunk] = True
            state.samples[chunk] += out.counts.sum(1)
            state.meter.add(out.forward_passes, f"exact lazy votes of g_σ,{n}")


def compute_slice(model: Classifier, x_o: torch.Tensor, config: SliceConfig,
                  target: torch.Tensor | None = None,
                  progress: Progress | None = None) -> SliceResult:
    """Compute every map of a slice (paper Fig. 2) in `config.mode`.

    Args:
        model: base classifier f on pixel space.
        x_o: [3, H, W] centre image in [0, 1].
        config: slice parameters.
        target: [3, H, W] second image for direction="image".
        progress: receives forward passes done / estimated total; polled for cancel.
    """
    started = time.perf_counter()
    meter = _Meter(progress or NullProgress(), estimate_passes(config))
    plane = make_plane(model, x_o, config, target, progress=meter.progress)
    meter.add(plane.forward_passes, "plane")
    extent, passes = (config.extent, 0) if config.extent else auto_extent(model, plane, config)
    meter.add(passes, "automatic extent")
    state = _Slice(model, plane, config, float(extent), meter)
    G = config.grid
    state.base_labels(np.arange(G * G))
    state.centre()
    (_dense if config.mode == "dense" else _adaptive)(state)
    names = model.info
    shown = set(np.unique(state.f)) | set(np.unique(state.top)) | {state.y}
    for n in config.ns:
        shown |= set(np.unique(state.draws[n]))
    shape = (G, G)
    return SliceResult(
        config=config, extent=float(extent), u=state.coords.copy(), v=state.coords.copy(),
        y=state.y, f_labels=state.f.reshape(shape), g_labels=state.top.reshape(shape),
        p_top=state.p_top.reshape(shape), p_y=state.p_y.reshape(shape),
        draws={n: d.reshape(shape) for n, d in state.draws.items()},
        draw_exact={n: e.reshape(shape) for n, e in state.exact.items()},
        samples=state.samples.reshape(shape), landmarks=plane.landmarks,
        class_names={int(c): names.class_name(int(c)) for c in sorted(shown)},
        forward_passes=meter.done, dense_passes=G * G * (config.n_samples + 1),
        seconds=time.perf_counter() - started,
        e1=plane.e1.float().cpu().numpy(), e2=plane.e2.float().cpu().numpy())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of grid points where two label maps agree."""
    return float((np.asarray(a) == np.asarray(b)).mean())
