"""Vote sampling engine: the central primitive of rsviz (DESIGN.md §3).

For points x_1..x_m, draw N noisy samples each and record the label of every sample
(`VoteRecord.labels`, [m, N]). Everything else derives from it: p̂ with Clopper–Pearson
intervals, realisations of g_{σ,n} for any n ≤ N (disjoint blocks of n votes are independent
exact draws), and P[g_{σ,n}(x) ≠ y].

Tie rule of g_{σ,n} everywhere (vote records, lazy vote, exact formulas): a plurality tie is
broken uniformly at random among the tied classes.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats

from rsviz.device import autocast, default_batch_size, resolve_precision
from rsviz.jobs import NullProgress, Progress
from rsviz.models import Classifier


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed`."""
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


def _prepare(model: Classifier, device: torch.device) -> None:
    """channels_last once per model on devices where it is faster (CPU and CUDA convnets)."""
    if not getattr(model, "_rsviz_channels_last", False):
        model.to(memory_format=torch.channels_last)
        model._rsviz_channels_last = True  # type: ignore[attr-defined]


def _forward(model: Classifier, x: torch.Tensor, precision: str) -> torch.Tensor:
    with torch.inference_mode(), autocast(x.device, precision):
        return model(x.contiguous(memory_format=torch.channels_last)).float()


def forward_labels(model: Classifier, points: torch.Tensor, batch_size: int | None = None,
                   precision: str = "auto", progress: Progress | None = None) -> np.ndarray:
    """Labels f(x) of the base classifier for each of the m points (no noise)."""
    device = model.device
    precision = resolve_precision(precision, device)
    _prepare(model, device)
    batch = batch_size or default_batch_size(device, points[0].numel())
    progress = progress or NullProgress()
    out = []
    for start in range(0, len(points), batch):
        progress.check_cancel()
        chunk = points[start:start + batch].to(device)
        out.append(_forward(model, chunk, precision).argmax(1).cpu())
        progress.report(min(start + batch, len(points)), len(points), "base classifier f")
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


@dataclass
class VoteRecord:
    """Labels of N noisy samples at each of m points.

    Attributes:
        labels: [m, N] class index of every noisy sample, in draw order.
        num_classes: C, the number of classes of the model.
        sigma: noise level used.
        forward_passes: base-model forward passes spent (= m·N).
        seconds: wall time of the sampling.
    """

    labels: np.ndarray
    num_classes: int
    sigma: float
    forward_passes: int = 0
    seconds: float = 0.0
    _counts: np.ndarray | None = field(default=None, repr=False)

    @property
    def m(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_samples(self) -> int:
        return int(self.labels.shape[1])

    @property
    def counts(self) -> np.ndarray:
        """[m, C] vote counts."""
        if self._counts is None:
            m, C = self.m, self.num_classes
            flat = (np.arange(m)[:, None] * C + self.labels.astype(np.int64)).ravel()
            self._counts = np.bincount(flat, minlength=m * C).reshape(m, C)
        return self._counts

    def top_class(self) -> np.ndarray:
        """[m] class with the most votes (ideal g_σ estimate; lowest index on ties)."""
        return self.counts.argmax(1)

    def p_hat(self, c: int | np.ndarray) -> np.ndarray:
        """[m] fraction of votes for class c (a scalar or one class per point)."""
        c = np.broadcast_to(np.asarray(c), (self.m,))
        return self.counts[np.arange(self.m), c] / self.n_samples

    def interval(self, c: int | np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """Two-sided Clopper–Pearson (1 − α) interval on p_c at each point."""
        c = np.broadcast_to(np.asarray(c), (self.m,))
        k = self.counts[np.arange(self.m), c]
        return clopper_pearson(k, self.n_samples, alpha)

    def g_draws(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """[m, N // n] independent realisations of g_{σ,n}: plurality of disjoint blocks of n."""
        if n > self.n_samples:
            raise ValueError(f"n = {n} exceeds the N = {self.n_samples} recorded samples.")
        rng = rng or np.random.default_rng(0)
        blocks = self.n_samples // n
        labels = self.labels[:, : blocks * n]
        classes, compact = np.unique(labels, return_inverse=True)
        compact = compact.reshape(self.m, blocks, n)
        K = len(classes)
        flat = (np.arange(self.m * blocks)[:, None] * K + compact.reshape(-1, n)).ravel()
        counts = np.bincount(flat, minlength=self.m * blocks * K).reshape(self.m, blocks, K)
        jitter = rng.random(counts.shape) * 0.5  # random tie-break, never reorders distinct counts
        return classes[(counts + jitter).argmax(-1)]

    def prob_g_wrong(self, y: int | np.ndarray, n: int, method: str = "binomial",
                     rng: np.random.Generator | None = None) -> np.ndarray:
        """[m] P[g_{σ,n}(x) ≠ y].

        method="binomial": exact two-class formula from p̂_y (top-vs-rest; exact when the
        other votes all go to one class); "empirical": fraction of wrong block realisations.
        """
        if method == "binomial":
            return prob_wrong_binomial(self.p_hat(y), n)
        draws = self.g_draws(n, rng)
        y = np.broadcast_to(np.asarray(y), (self.m,))
        return (draws != y[:, None]).mean(1)


def clopper_pearson(k: np.ndarray | int, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact two-sided (1 − α) binomial confidence interval for k successes out of n."""
    k = np.asarray(k, dtype=np.float64)
    lo = np.where(k > 0, stats.beta.ppf(alpha / 2, np.maximum(k, 1e-12), n - k + 1), 0.0)
    hi = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1e-12)), 1.0)
    return lo, hi


def lower_confidence_bound(k: int, n: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower bound on p (Cohen et al.'s p̲_A)."""
    if k <= 0:
        return 0.0
    return float(stats.beta.ppf(alpha, k, n - k + 1))


def prob_wrong_binomial(p_y: np.ndarray | float, n: int) -> np.ndarray:
    """P[g_{σ,n} ≠ y] for two classes with random tie-break: P[W > n/2] + ½ P[W = n/2],
    W ~ Bin(n, 1 − p_y)."""
    q = 1.0 - np.asarray(p_y, dtype=np.float64)
    above = stats.binom.sf(math.floor(n / 2), n, q)
    tie = stats.binom.pmf(n // 2, n, q) if n % 2 == 0 else 0.0
    return above + 0.5 * tie


def sample_votes(model: Classifier, points: torch.Tensor, sigma: float, n_samples: int,
                 generator: torch.Generator, batch_size: int | None = None,
                 precision: str = "auto", progress: Progress | None = None) -> VoteRecord:
    """Draw N = n_samples noisy votes at each of the m points.

    Noise is added in pixel space before normalisation, without clipping (Cohen et al.).
    The (point, sample) pairs are flattened and run through the model in batches of
    `batch_size` (chosen from the device when None), so few points with many samples and many
    points with few samples both fill the device.

    Args:
        model: base classifier f on pixel space.
        points: [m, 3, H, W] images (any device; moved to the model's device).
        sigma: noise standard deviation.
        n_samples: N, samples per point.
        generator: torch.Generator on the model's device; same seed, same votes.
        batch_size: forward batch size.
        precision: "auto", "fp32", "bf16" or "fp16" (autocast).
        progress: receives (forward passes done, total).
    """
    device = model.device
    precision = resolve_precision(precision, device)
    _prepare(model, device)
    points = points.to(device=device, dtype=torch.float32)
    m = int(points.shape[0])
    shape = tuple(points.shape[1:])
    batch = batch_size or default_batch_size(device, points[0].numel())
    progress = progress or NullProgress()
    total = m * n_samples
    labels = torch.empty(total, dtype=torch.int16 if model.info.num_classes < 32768 else torch.int32)
    started = time.perf_counter()
    done = 0
    while done < total:
        progress.check_cancel()
        size = min(batch, total - done)
        index = torch.arange(done, done + size, device=device) // n_samples
        noise = torch.randn((size, *shape), generator=generator, device=device)
        x = points.index_select(0, index).add_(noise, alpha=sigma)
        labels[done:done + size] = _forward(model, x, precision).argmax(1).to("cpu", labels.dtype)
        done += size
        progress.report(done, total, f"{done:,} / {total:,} forward passes")
    return VoteRecord(labels=labels.view(m, n_samples).numpy(), num_classes=model.info.num_classes,
                      sigma=float(sigma), forward_passes=total,
                      seconds=time.perf_counter() - started)


# ---------------------------------------------------------------- lazy exact vote of g_{σ,n}


@dataclass(frozen=True)
class LazyVoteResult:
    """Decisions of g_{σ,n} at m points with the votes actually drawn."""

    labels: np.ndarray  # [m] decision (plurality of n votes, random tie-break)
    counts: np.ndarray  # [m, C] votes drawn before stopping
    forward_passes: int


def lazy_votes(model: Classifier, points: torch.Tensor, sigma: float, n: int,
               generator: torch.Generator, batch_size: int | None = None,
               precision: str = "auto") -> LazyVoteResult:
    """One query of g_{σ,n} at each of m points, stopping early when the outcome is decided.

    Sampling stops once the leader's count exceeds the runner-up's plus the votes still to
    draw, i.e. when no remaining votes can change the plurality. The votes drawn are a prefix
    of the n iid votes of the full decision, so the output has exactly the distribution of the
    full n-vote plurality (ties, possible only when all n are drawn, are broken at random).
    Each round draws, per undecided point, the fewest votes that could settle it.
    """
    device = model.device
    precision = resolve_precision(precision, device)
    _prepare(model, device)
    points = points.to(device=device, dtype=torch.float32)
    m, C = int(points.shape[0]), model.info.num_classes
    cap = batch_size or default_batch_size(device, points[0].numel())
    counts = np.zeros((m, C), dtype=np.int64)
    drawn = np.zeros(m, dtype=np.int64)
    decided = np.zeros(m, dtype=bool)
    passes = 0
    while not decided.all():
        top2 = -np.partition(-counts, 1, axis=1)[:, :2] if C > 1 else np.c_[counts, counts * 0]
        remaining = n - drawn
        gap = top2[:, 1] + remaining - top2[:, 0]
        decided |= (gap < 0) | (remaining == 0)
        todo = np.flatnonzero(~decided)
        if len(todo) == 0:
            break
        need = np.minimum(gap[todo] // 2 + 1, remaining[todo])
        # keep a round within one batch where possible; every point gets at least one vote
        budget = max(cap, len(todo))
        if need.sum() > budget:
            need = np.maximum(1, (need * budget) // need.sum())
        index = torch.from_numpy(np.repeat(todo, need)).to(device)
        noise = torch.randn((len(index), *points.shape[1:]), generator=generator, device=device)
        x = points.index_select(0, index).add_(noise, alpha=sigma)
        votes = torch.cat([_forward(model, x[s:s + cap], precision).argmax(1).cpu()
                           for s in range(0, len(x), cap)]).numpy()
        np.add.at(counts, (index.cpu().numpy(), votes), 1)
        drawn[todo] += need
        passes += len(index)
    tie_break = torch.rand((m, C), generator=generator, device=device).cpu().numpy() * 0.5
    return LazyVoteResult(labels=(counts + tie_break).argmax(1), counts=counts,
                          forward_passes=passes)


# -------------------------------------------------------------- Cohen et al.'s PREDICT/CERTIFY


def _class_counts(model: Classifier, x: torch.Tensor, sigma: float, num: int,
                  generator: torch.Generator, batch_size: int | None, precision: str,
                  progress: Progress | None) -> np.ndarray:
    record = sample_votes(model, x[None], sigma, num, generator, batch_size, precision, progress)
    return record.counts[0]


def predict(model: Classifier, x: torch.Tensor, sigma: float, n: int, alpha: float,
            generator: torch.Generator, batch_size: int | None = None, precision: str = "auto",
            progress: Progress | None = None) -> tuple[int, np.ndarray]:
    """Cohen et al.'s PREDICT: top class of n noisy votes, or −1 (abstain) unless a two-sided
    binomial test of the top two counts rejects equality at level α."""
    counts = _class_counts(model, x, sigma, n, generator, batch_size, precision, progress)
    order = np.argsort(-counts, kind="stable")
    n_a, n_b = int(counts[order[0]]), int(counts[order[1]]) if len(order) > 1 else 0
    if stats.binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
        return -1, counts
    return int(order[0]), counts


@dataclass(frozen=True)
class CertifyResult:
    """Outcome of CERTIFY for one input."""

    predict: int  # −1 = abstain
    radius: float  # 0.0 when abstaining
    p_lower: float
    counts0: np.ndarray
    counts: np.ndarray
    forward_passes: int
    seconds: float


def certify(model: Classifier, x: torch.Tensor, sigma: float, n0: int, n: int, alpha: float,
            generator: torch.Generator, batch_size: int | None = None, precision: str = "auto",
            progress: Progress | None = None) -> CertifyResult:
    """Cohen et al.'s CERTIFY: ĉ_A from n0 votes, p̲_A the one-sided (1 − α) Clopper–Pearson
    lower bound from n fresh votes; radius σ Φ^{-1}(p̲_A) if p̲_A > 1/2, else abstain."""
    started = time.perf_counter()
    counts0 = _class_counts(model, x, sigma, n0, generator, batch_size, precision, None)
    c_a = int(counts0.argmax())
    counts = _class_counts(model, x, sigma, n, generator, batch_size, precision, progress)
    p_lower = lower_confidence_bound(int(counts[c_a]), n, alpha)
    seconds = time.perf_counter() - started
    if p_lower <= 0.5:
        return CertifyResult(-1, 0.0, p_lower, counts0, counts, n0 + n, seconds)
    radius = float(sigma * stats.norm.ppf(p_lower))
    return CertifyResult(c_a, radius, p_lower, counts0, counts, n0 + n, seconds)
