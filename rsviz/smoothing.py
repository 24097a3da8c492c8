"""Vote sampling engine: the central primitive of rsviz (DESIGN.md §3).

For points x_1..x_m, draw N noisy samples each and record the label of every sample
(`VoteRecord.labels`, [m, N]). Everything else derives from it: p̂ with Clopper–Pearson
intervals, realisations of g_{σ,n} for any n ≤ N (disjoint blocks of n votes are independent
exact draws), and P[g_{σ,n}(x) ≠ y].

Determinism: noise is drawn from the caller's generator in fixed chunks of `NOISE_CHUNK`
images, so the k-th noisy sample does not depend on the forward batch size; the batch size only
changes the arithmetic of the forward pass (bitwise identical in bf16 on the CPU we tested).

Tie rule of g_{σ,n} everywhere (vote records, lazy vote, exact formulas): a plurality tie is
broken uniformly at random among the tied classes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats
from torch import nn

from rsviz.config import check_alpha, check_count, check_sigma, check_votes_within
from rsviz.device import autocast, default_batch_size, resolve_precision, tcmalloc_loaded
from rsviz.errors import ConfigError
from rsviz.jobs import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.theory import prob_wrong_binomial

NOISE_CHUNK = 16


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on `device` seeded with `seed`."""
    generator = torch.Generator(device=torch.device(device))
    generator.manual_seed(int(seed))
    return generator


# ------------------------------------------------------------------ forward pass and batching


def _uses_channels_last(model: Classifier) -> bool:
    """Convert a convnet to channels_last once (faster on CPU with oneDNN and on CUDA)."""
    flag = getattr(model, "_rsviz_channels_last", None)
    if flag is None:
        flag = any(isinstance(m, nn.Conv2d) for m in model.modules())
        if flag:
            model.to(memory_format=torch.channels_last)
        model._rsviz_channels_last = flag  # type: ignore[attr-defined]
    return flag


def _forward(model: Classifier, x: torch.Tensor, precision: str) -> torch.Tensor:
    with torch.inference_mode(), autocast(x.device, precision):
        return model(x).float()


def _candidates(device: torch.device, input_numel: int) -> tuple[int, ...]:
    if device.type == "cuda":
        cap = 2 * default_batch_size(device, input_numel)
        return tuple(b for b in (64, 128, 256, 512, 1024, 2048) if b <= max(cap, 64))
    if input_numel >= 3 * 160 * 160:
        return (8, 16, 32, 64, 128)
    base = default_batch_size(device, input_numel)
    return (max(1, base // 4), base, base * 4)


# measured forward rates (images/s) per (model id, device, precision, shape, threads, allocator)
_RATES: dict[tuple, dict[int, float]] = {}
_PROBES: dict[tuple, float] = {}  # quick rate probes of `estimate_rate` (not used for tuning)


class BatchTuner:
    """Picks the forward batch size by measuring throughput on the real work.

    While a (model, device, precision, input shape) is new, successive batches try the candidate
    sizes in increasing order (each timed on its second, warm, run) until the rate drops below
    85% of the best; afterwards the fastest size is used. Measurements persist for the process,
    so later calls start at the best size. Because noise is drawn in fixed chunks, the batch
    size never changes which noise a sample gets.
    """

    def __init__(self, model: Classifier, precision: str, input_shape: tuple[int, ...],
                 batch_size: int | None = None) -> None:
        self.device = model.device
        numel = int(np.prod(input_shape))
        self.fixed = batch_size
        self.key = (model.info.model_id, str(self.device), precision, tuple(input_shape),
                    torch.get_num_threads(), tcmalloc_loaded())
        self.candidates = _candidates(self.device, numel)
        self.rates = _RATES.setdefault(self.key, {})
        self._runs: dict[int, int] = {}
        self.fallback = default_batch_size(self.device, numel)

    @property
    def exploring(self) -> bool:
        if self.fixed is not None:
            return False
        tried = [b for b in self.candidates if b in self.rates]
        if len(tried) == len(self.candidates):
            return False
        best = max(self.rates.values(), default=0.0)
        return not (tried and self.rates[tried[-1]] < 0.85 * best)

    def best(self) -> int:
        """The fastest measured size (the heuristic one before any measurement)."""
        if self.fixed is not None:
            return self.fixed
        if not self.rates:
            return self.fallback
        return max(self.rates, key=self.rates.__getitem__)

    def next_size(self) -> int:
        if not self.exploring:
            return self.best()
        return next(b for b in self.candidates if b not in self.rates)

    def record(self, size: int, seconds: float) -> None:
        """Time of a forward batch of `size` (the first run of each size is a warm-up)."""
        if not self.exploring or size != self.next_size():
            return
        self._runs[size] = self._runs.get(size, 0) + 1
        if self._runs[size] >= 2:
            self.rates[size] = size / max(seconds, 1e-9)


def auto_batch_size(model: Classifier, precision: str = "auto", measure: bool = True,
                    input_shape: tuple[int, ...] | None = None) -> int:
    """The fastest forward batch size for `model` on its device, measured once per process.

    With measure=False, returns the best size measured so far (the heuristic before any).
    Measuring runs each candidate twice on noise images (~3 s for Lite0 on a 2-core CPU).
    """
    precision = resolve_precision(precision, model.device)
    shape = tuple(input_shape or model.info.input_shape)
    tuner = BatchTuner(model, precision, shape)
    if measure:
        channels_last = _uses_channels_last(model)
        generator = make_generator(0, model.device)
        while tuner.exploring:
            size = tuner.next_size()
            x = torch.rand((size, *shape), generator=generator, device=model.device)
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            tuner.record(size, _timed_forward(model, x, precision)[1])
    return tuner.best()


def _timed_forward(model: Classifier, x: torch.Tensor, precision: str) -> tuple[torch.Tensor, float]:
    started = time.perf_counter()
    labels = _forward(model, x, precision).argmax(1)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return labels, time.perf_counter() - started


def estimate_rate(model: Classifier, precision: str = "auto") -> float:
    """Forward passes per second at the best known batch size (a short probe when unknown)."""
    precision = resolve_precision(precision, model.device)
    tuner = BatchTuner(model, precision, model.info.input_shape)
    if tuner.rates:
        return max(tuner.rates.values())
    if tuner.key not in _PROBES:
        size = min(tuner.fallback, 16)
        x = torch.rand((size, *model.info.input_shape), device=model.device)
        if _uses_channels_last(model):
            x = x.contiguous(memory_format=torch.channels_last)
        _timed_forward(model, x, precision)
        _PROBES[tuner.key] = size / max(_timed_forward(model, x, precision)[1], 1e-9)
    return _PROBES[tuner.key]


class _NoiseStream:
    """N(0, I) images drawn in fixed chunks of NOISE_CHUNK: batch-size independent."""

    def __init__(self, shape: tuple[int, ...], generator: torch.Generator,
                 device: torch.device) -> None:
        self.shape, self.generator, self.device = shape, generator, device
        self._spare: torch.Tensor | None = None

    def _chunk(self, out: torch.Tensor | None = None) -> torch.Tensor:
        return torch.randn((NOISE_CHUNK, *self.shape), generator=self.generator,
                           device=self.device, out=out)

    def take(self, size: int) -> torch.Tensor:
        out = torch.empty((size, *self.shape), device=self.device)
        filled = 0
        if self._spare is not None:
            filled = min(len(self._spare), size)
            out[:filled].copy_(self._spare[:filled])
            self._spare = self._spare[filled:] if filled < len(self._spare) else None
        while size - filled >= NOISE_CHUNK:
            self._chunk(out[filled:filled + NOISE_CHUNK])
            filled += NOISE_CHUNK
        if filled < size:
            chunk = self._chunk()
            out[filled:].copy_(chunk[:size - filled])
            self._spare = chunk[size - filled:]
        return out


def _noisy_batch(points: torch.Tensor, index: torch.Tensor, noise: torch.Tensor, sigma: float,
                 channels_last: bool) -> torch.Tensor:
    """points[index] + σ·noise, written straight into the layout the model prefers."""
    base = points.expand(len(index), *points.shape[1:]) if len(points) == 1 \
        else points.index_select(0, index)
    layout = torch.channels_last if channels_last and noise.dim() == 4 else torch.contiguous_format
    out = torch.empty_like(noise, memory_format=layout)
    return torch.add(base, noise, alpha=sigma, out=out)


def forward_labels(model: Classifier, points: torch.Tensor, batch_size: int | None = None,
                   precision: str = "auto", progress: Progress | None = None) -> np.ndarray:
    """Labels f(x) of the base classifier for each of the m points (no noise)."""
    device = model.device
    precision = resolve_precision(precision, device)
    channels_last = _uses_channels_last(model)
    batch = batch_size or BatchTuner(model, precision, tuple(points.shape[1:])).best()
    progress = progress or NullProgress()
    out = []
    for start in range(0, len(points), batch):
        progress.check_cancel()
        chunk = points[start:start + batch].to(device=device, dtype=torch.float32)
        if channels_last and chunk.dim() == 4:
            chunk = chunk.contiguous(memory_format=torch.channels_last)
        out.append(_forward(model, chunk, precision).argmax(1).cpu())
        progress.report(min(start + batch, len(points)), len(points), "base classifier f")
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def precision_agreement(model: Classifier, points: torch.Tensor, precision: str = "bf16",
                        batch_size: int | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """Top-1 agreement of f in `precision` (autocast) with fp32 on the same points.

    Returns (fraction of equal labels, fp32 labels, labels in `precision`).
    """
    reference = forward_labels(model, points, batch_size, "fp32")
    labels = forward_labels(model, points, batch_size, precision)
    return float((reference == labels).mean()) if len(labels) else 1.0, reference, labels


# ------------------------------------------------------------------------------ vote records


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
    """

    labels: np.ndarray
    num_classes: int
    sigma: float
    forward_passes: int = 0
    seconds: float = 0.0
    batch_size: int = 0
    precision: str = "fp32"
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
    precision = resolve_precision(precision, device)
    channels_last = _uses_channels_last(model)
    points = points.to(device=device, dtype=torch.float32)
    m, shape = int(points.shape[0]), tuple(points.shape[1:])
    tuner = BatchTuner(model, precision, shape, batch_size)
    noise_stream = _NoiseStream(shape, generator, device)
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
        x = _noisy_batch(points, index, noise_stream.take(size), sigma, channels_last)
        if tuner.exploring:
            out, seconds = _timed_forward(model, x, precision)
            tuner.record(size, seconds)
        else:
            out = _forward(model, x, precision).argmax(1)
        labels[done:done + size] = out.to(dtype)
        done += size
        progress.report(done, total, f"{done:,} / {total:,} forward passes")
    return VoteRecord(labels=labels.view(m, n_samples).cpu().numpy(),
                      num_classes=model.info.num_classes, sigma=float(sigma),
                      forward_passes=total, seconds=time.perf_counter() - started,
                      batch_size=last, precision=precision)


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
    check_sigma(float(sigma))
    check_count("n", int(n))
    device = model.device
    precision = resolve_precision(precision, device)
    channels_last = _uses_channels_last(model)
    points = points.to(device=device, dtype=torch.float32)
    m, C = int(points.shape[0]), model.info.num_classes
    cap = batch_size or BatchTuner(model, precision, tuple(points.shape[1:])).best()
    counts = np.zeros((m, C), dtype=np.int64)
    drawn = np.zeros(m, dtype=np.int64)
    decided = np.zeros(m, dtype=bool)
    passes = 0
    while True:
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
        votes = []
        for s in range(0, len(index), cap):
            x = _noisy_batch(points, index[s:s + cap], noise[s:s + cap], sigma, channels_last)
            votes.append(_forward(model, x, precision).argmax(1).cpu())
        np.add.at(counts, (index.cpu().numpy(), torch.cat(votes).numpy()), 1)
        drawn[todo] += need
        passes += len(index)
    tie_break = torch.rand((m, C), generator=generator, device=device).cpu().numpy() * 0.5
    return LazyVoteResult(labels=(counts + tie_break).argmax(1), counts=counts,
                          forward_passes=passes)


# -------------------------------------------------------------- Cohen et al.'s PREDICT/CERTIFY


def predict(model: Classifier, x: torch.Tensor, sigma: float, n: int, alpha: float,
            generator: torch.Generator, batch_size: int | None = None, precision: str = "auto",
            progress: Progress | None = None) -> tuple[int, np.ndarray]:
    """Cohen et al.'s PREDICT: top class of n noisy votes, or −1 (abstain) unless a two-sided
    binomial test of the top two counts rejects equality at level α."""
    check_alpha(alpha)
    counts = sample_votes(model, x[None], sigma, n, generator, batch_size, precision,
                          progress).counts[0]
    order = np.argsort(-counts, kind="stable")
    n_a, n_b = int(counts[order[0]]), int(counts[order[1]]) if len(order) > 1 else 0
    if stats.binomtest(n_a, n_a + n_b, 0.5).pvalue > alpha:
        return -1, counts
    return int(order[0]), counts


def radius_from_votes(k_a: int, n: int, alpha: float, sigma: float) -> tuple[float, float]:
    """CERTIFY's last step: (p̲_A, R) with p̲_A the one-sided (1 − α) Clopper–Pearson bound
    from k_a votes for ĉ_A out of n, and R = σ Φ^{-1}(p̲_A) (eq. 2), or R = −1 (abstain)
    when p̲_A ≤ 1/2."""
    p_lower = lower_confidence_bound(int(k_a), int(n), alpha)
    if p_lower <= 0.5:
        return p_lower, -1.0
    return p_lower, float(sigma * stats.norm.ppf(p_lower))


@dataclass(frozen=True)
class CertifyResult:
    """Outcome of CERTIFY for one input (`votes` holds the n estimation votes)."""

    predict: int  # −1 = abstain
    radius: float  # 0.0 when abstaining
    p_lower: float
    counts0: np.ndarray
    counts: np.ndarray
    forward_passes: int
    seconds: float
    votes: VoteRecord | None = None


def certify(model: Classifier, x: torch.Tensor, sigma: float, n0: int, n: int, alpha: float,
            generator: torch.Generator, batch_size: int | None = None, precision: str = "auto",
            progress: Progress | None = None) -> CertifyResult:
    """Cohen et al.'s CERTIFY: ĉ_A from n0 votes, p̲_A the one-sided (1 − α) Clopper–Pearson
    lower bound from n fresh votes; radius σ Φ^{-1}(p̲_A) if p̲_A > 1/2, else abstain."""
    check_alpha(alpha)
    started = time.perf_counter()
    counts0 = sample_votes(model, x[None], sigma, n0, generator, batch_size, precision).counts[0]
    c_a = int(counts0.argmax())
    votes = sample_votes(model, x[None], sigma, n, generator, batch_size, precision, progress)
    counts = votes.counts[0]
    p_lower, radius = radius_from_votes(int(counts[c_a]), n, alpha, sigma)
    seconds = time.perf_counter() - started
    if radius < 0:
        return CertifyResult(-1, 0.0, p_lower, counts0, counts, n0 + n, seconds, votes)
    return CertifyResult(c_a, radius, p_lower, counts0, counts, n0 + n, seconds, votes)
