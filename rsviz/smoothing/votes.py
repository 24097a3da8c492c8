"""Vote records: the labels of N noisy samples at each of m points, and what follows from them.

For points x_1..x_m, `sample_votes` draws N noisy samples each and records the label of every
sample (`VoteRecord.labels`, [m, N]). Everything else derives from the record: p̂ with
Clopper–Pearson intervals, realisations of g_{σ,n} for any n ≤ N (disjoint blocks of n votes
are independent exact draws), and P[g_{σ,n}(x) ≠ y].

Tie rule of g_{σ,n} everywhere (vote records, lazy votes, exact formulas): a plurality tie is
broken uniformly at random among the tied classes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats

from rsviz.config import check_count, check_sigma, check_votes_within
from rsviz.engines import forward_of, precision_of
from rsviz.errors import ConfigError
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.smoothing.batching import BatchTuner, prepare, timed_forward, vote_forward
from rsviz.smoothing.noise import NoiseStream, make_generator, noisy_batch
from rsviz.theory import prob_wrong_binomial


@dataclass
class VoteRecord:
    """Labels of N noisy samples at each of m points.

    Attributes:
        labels: [m, N] class index of every noisy sample, in draw order.
        num_classes: C, the number of classes of the model.
        sigma: noise level used.
        forward_passes: base-model forward passes spent (= m·N).
        seconds: wall time of the sampling.
        batch_size: forward batch size of the last batch (before clipping to what was left).
        precision: forward precision actually used ("fp32", "bf16" or "fp16").
        forward: the forward identity that produced the labels (`rsviz.identity.Forward` tag:
            device, arithmetic, engine and versions).
    """

    labels: np.ndarray
    num_classes: int
    sigma: float
    forward_passes: int = 0
    seconds: float = 0.0
    batch_size: int = 0
    precision: str = "fp32"
    forward: str = ""
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

    def block_counts(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Vote counts of the N // n disjoint blocks of n votes: (classes [K], counts [m, B, K])."""
        check_votes_within(int(n), self.n_samples)
        blocks = self.n_samples // n
        classes, compact = np.unique(self.labels[:, : blocks * n], return_inverse=True)
        K = len(classes)
        flat = (np.arange(self.m * blocks)[:, None] * K + compact.reshape(-1, n)).ravel()
        counts = np.bincount(flat, minlength=self.m * blocks * K).reshape(self.m, blocks, K)
        return classes, counts

    def g_draws(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """[m, N // n] independent realisations of g_{σ,n}: plurality of disjoint blocks of n."""
        rng = rng or np.random.default_rng(0)
        classes, counts = self.block_counts(n)
        jitter = rng.random(counts.shape) * 0.5  # random tie-break, never reorders distinct counts
        return classes[(counts + jitter).argmax(-1)]

    def prob_g_wrong(self, y: int | np.ndarray, n: int, method: str = "binomial",
                     rng: np.random.Generator | None = None) -> np.ndarray:
        """[m] P[g_{σ,n}(x) ≠ y].

        method="binomial": exact two-class formula from p̂_y (top-vs-rest; exact when the
        other votes all go to one class, an upper bound otherwise); "empirical": fraction of
        wrong block realisations (N // n of them).
        """
        if method == "binomial":
            return prob_wrong_binomial(self.p_hat(y), n)
        if method != "empirical":
            raise ConfigError(f"Unknown method {method!r} (binomial or empirical).")
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

def sample_votes(model: Classifier, points: torch.Tensor, sigma: float, n_samples: int,
                 generator: torch.Generator, batch_size: int | None = None,
                 precision: str = "auto", progress: Progress | None = None) -> VoteRecord:
    """Draw N = n_samples noisy votes at each of the m points.

    Noise is added in pixel space before normalisation, without clipping (Cohen et al.).
    The (point, sample) pairs are flattened and run through the model in batches, so few points
    with many samples and many points with few samples both fill the device. With
    batch_size=None the batch is tuned on the fly (`BatchTuner`).

    Args:
        model: base classifier f on pixel space.
        points: [m, 3, H, W] images (any device; moved to the model's device).
        sigma: noise standard deviation.
        n_samples: N, samples per point.
        generator: torch.Generator on the model's device; same seed, same votes.
        batch_size: forward batch size (None: measured).
        precision: "auto", "fp32", "bf16" or "fp16" (autocast).
        progress: receives (forward passes done, total).
    """
    check_sigma(float(sigma))
    check_count("N (samples)", int(n_samples))
    device = model.device
    points, precision, channels_last = prepare(model, points, precision)
    m, shape = int(points.shape[0]), tuple(points.shape[1:])
    tuner = BatchTuner(model, precision, shape, batch_size)
    noise_stream = NoiseStream(shape, generator, device)
    progress = progress or NullProgress()
    total = m * n_samples
    dtype = torch.int16 if model.info.num_classes < 32768 else torch.int32
    labels = torch.empty(total, dtype=dtype, device=device)
    started = time.perf_counter()
    done = last = 0
    while done < total:
        progress.check_cancel()
        last = tuner.next_size()
        size = min(last, total - done)
        index = torch.arange(done, done + size, device=device) // n_samples
        x = noisy_batch(points, index, noise_stream.take(size), sigma, channels_last)
        if tuner.exploring:
            out, seconds = timed_forward(model, x, precision)
            tuner.record(size, seconds)
        else:
            out = vote_forward(model, x, precision).argmax(1)
        labels[done:done + size] = out.to(dtype)
        done += size
        progress.report(done, total, f"{done:,} / {total:,} forward passes")
    return VoteRecord(labels=labels.view(m, n_samples).cpu().numpy(),
                      num_classes=model.info.num_classes, sigma=float(sigma),
                      forward_passes=total, seconds=time.perf_counter() - started,
                      batch_size=last, precision=precision,
                      forward=forward_of(model, precision).tag())


_PROBES: dict[tuple, float] = {}  # quick rate probes of `estimate_rate` (not used for tuning)


def estimate_rate(model: Classifier, precision: str = "auto") -> float:
    """Forward passes per second of the vote sampler on its real path — noise drawn, the
    engine's forward, votes counted — measured once per (model, device, precision, shape,
    threads, allocator, engine) by a short `sample_votes` probe (a warm-up, then 4 batches).

    The one speed probe of rsviz: cost estimates of every view divide by it. The engine's own
    rate from its selection (`rsviz.engines`) is not used: it leaves out the noise and the
    vote counting, and read 2–3× the sampler's rate on an AVX512-BF16 CPU.
    """
    precision = precision_of(model, precision)
    tuner = BatchTuner(model, precision, model.info.input_shape)
    if tuner.key not in _PROBES:
        point = torch.rand((1, *model.info.input_shape), generator=torch.Generator().manual_seed(0))
        batch = tuner.best()
        sample_votes(model, point, 0.25, batch, make_generator(0, model.device), batch, precision)
        record = sample_votes(model, point, 0.25, 4 * batch, make_generator(1, model.device),
                              batch, precision)
        _PROBES[tuner.key] = record.forward_passes / max(record.seconds, 1e-9)
    return _PROBES[tuner.key]
