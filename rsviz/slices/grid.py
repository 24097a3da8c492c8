"""Working state of one slice computation: the grid, its maps and the vote sampler.

`SliceState` draws votes at grid points and stores what they say (f, the top class, p̂,
g_{σ,n} realisations); `Meter` counts the forward passes for the job's progress bar.
"""

from __future__ import annotations

import numpy as np
import torch

from rsviz.progress import Progress, SubProgress
from rsviz.models import Classifier
from rsviz.slices import memory
from rsviz.slices.config import SliceConfig
from rsviz.slices.memory import block_points, label_dtype, max_points, points_per_call
from rsviz.slices.plane import Plane
from rsviz.smoothing import VoteRecord, forward_labels, make_generator, sample_votes


class Meter:
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


class SliceState:
    """Working state of one slice computation: the grid, the maps, the vote sampler."""

    def __init__(self, model: Classifier, plane: Plane, config: SliceConfig, extent: float,
                 meter: Meter) -> None:
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
        self.max_points = max_points(int(np.prod(model.info.input_shape)))
        self.label_dtype = label_dtype(C)

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

    def block(self, n: int) -> int:
        """Points whose n votes each are held at once (`rsviz.slices.memory.block_points`):
        callers draw and store votes block by block, never the whole grid's."""
        return block_points(n, points_per_call(n, self.max_points), self.label_dtype.itemsize,
                            memory.VOTE_BUDGET)

    def votes(self, flat: np.ndarray, n: int, message: str) -> np.ndarray:
        """[len(flat), n] labels of n fresh noisy votes at each grid point (int16 for fewer
        than 32 768 classes); hold at most `block(n)` points at once."""
        out = np.zeros((len(flat), n), dtype=self.label_dtype)
        per_chunk = points_per_call(n, self.max_points)
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
        k, rows = labels.shape[1], memory.STORE_ROWS
        for start in range(0, len(flat), rows):
            chunk, lab = flat[start:start + rows], labels[start:start + rows]
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


def top_two(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
    m, k = labels.shape
    if n <= k:
        record = VoteRecord(labels=labels[:, :n], num_classes=counts.shape[1], sigma=0.0)
        return record.g_draws(n, rng)[:, 0], np.ones(m, dtype=bool)
    lead, second = top_two(counts)
    sure = lead > second + (n - k)
    final = counts + rng.multinomial(n - k, counts / k)
    jitter = rng.random(final.shape) * 0.5  # random tie-break, never reorders distinct counts
    return np.where(sure, counts.argmax(1), (final + jitter).argmax(1)), sure
