"""Lazy exact votes: decide a vote of n noisy samples with as few forward passes as possible.

Votes are drawn in rounds and a point stops as soon as the votes still to come cannot change
its outcome. The votes drawn are a prefix of the n iid votes of the full decision, so the
outcome has exactly the distribution of the full n-vote decision. `lazy_sample` is the loop,
for any stopping rule; `lazy_votes` (the plurality of g_{σ,n}) and `lazy_threshold_votes`
("at least k of the n votes are hits", the attack criteria of `rsviz.attacks.oracle`) are
its two rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from rsviz.config import check_count, check_sigma
from rsviz.models import Classifier
from rsviz.smoothing.batching import BatchTuner, prepare, vote_forward
from rsviz.smoothing.noise import noisy_batch

VotesNeeded = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Noisy images drawn per round when many votes are needed (float32 bytes). A round's size
# depends only on the image size, never on the machine's forward batch, so one seed gives the
# same votes on every engine, thread count and runner (the forward batch only splits a round).
ROUND_BYTES = 128 * 2**20


def default_round_size(image_shape: tuple[int, ...]) -> int:
    """Votes per round for images of `image_shape` ([3, H, W]): ROUND_BYTES of noise, ≥ 64."""
    return max(64, ROUND_BYTES // (4 * int(np.prod(image_shape))))


def lazy_sample(model: Classifier, points: torch.Tensor, sigma: float, n: int,
                generator: torch.Generator, votes_needed: VotesNeeded,
                batch_size: int | None = None, precision: str = "auto",
                round_size: int | None = None) -> tuple[np.ndarray, int]:
    """Draw noisy votes at m points in rounds until a stopping rule says each is decided.

    Args:
        model: base classifier f on pixel space.
        points: [m, 3, H, W] images.
        sigma: noise standard deviation.
        n: votes of the full decision (no point gets more).
        generator: torch.Generator on the model's device (its noise, round after round).
        votes_needed: maps (counts [m, C] votes so far, drawn [m]) to the fewest further votes
            that could decide each point; 0 when decided.
        batch_size: forward batch size (None: the tuned one).
        round_size: votes drawn per round when many are needed (None: `default_round_size`,
            fixed by the image size so the votes do not depend on the forward batch);
            every undecided point gets at least one vote per round.

    Returns:
        (counts [m, C] of the votes drawn, forward passes spent).
    """
    check_sigma(float(sigma))
    check_count("n", int(n))
    device = model.device
    points, precision, channels_last = prepare(model, points, precision)
    m, C = int(points.shape[0]), model.info.num_classes
    cap = batch_size or BatchTuner(model, precision, tuple(points.shape[1:])).best()
    round_size = round_size or default_round_size(tuple(points.shape[1:]))
    counts = np.zeros((m, C), dtype=np.int64)
    drawn = np.zeros(m, dtype=np.int64)
    passes = 0
    while True:
        needed = np.minimum(votes_needed(counts, drawn), n - drawn)
        todo = np.flatnonzero(needed > 0)
        if len(todo) == 0:
            break
        need = needed[todo]
        budget = max(round_size, len(todo))
        if need.sum() > budget:
            need = np.maximum(1, (need * budget) // need.sum())
        index = torch.from_numpy(np.repeat(todo, need)).to(device)
        noise = torch.randn((len(index), *points.shape[1:]), generator=generator, device=device)
        votes = []
        for s in range(0, len(index), cap):
            x = noisy_batch(points, index[s:s + cap], noise[s:s + cap], sigma, channels_last)
            votes.append(vote_forward(model, x, precision).argmax(1).cpu())
        np.add.at(counts, (index.cpu().numpy(), torch.cat(votes).numpy()), 1)
        drawn[todo] += need
        passes += len(index)
    return counts, passes


def plurality_votes_needed(n: int) -> VotesNeeded:
    """Stopping rule of the plurality of n votes: a point is decided once the leader's count
    exceeds the runner-up's plus the votes still to draw; until then it needs at least half
    the gap."""
    def needed(counts: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        if counts.shape[1] > 1:
            top2 = -np.partition(-counts, 1, axis=1)[:, :2]
        else:
            top2 = np.c_[counts, counts * 0]
        remaining = n - drawn
        gap = top2[:, 1] + remaining - top2[:, 0]
        return np.where(gap < 0, 0, np.minimum(gap // 2 + 1, remaining))
    return needed


def threshold_votes_needed(n: int, needed: int, hit_classes: np.ndarray) -> VotesNeeded:
    """Stopping rule of "at least `needed` of the n votes fall in `hit_classes`" ([C] bool):
    decided once that many hits are drawn or too few votes remain to reach it; until then
    it needs all the missing hits or enough misses to make them unreachable."""
    def still(counts: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        hits = counts[:, hit_classes].sum(1)
        to_accept = needed - hits
        to_reject = (n - drawn) - to_accept + 1
        undecided = (to_accept > 0) & (to_reject > 0)
        return np.where(undecided, np.minimum(to_accept, to_reject), 0)
    return still


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
    draw, i.e. when no remaining votes can change the plurality. The output has exactly the
    distribution of the full n-vote plurality (ties, possible only when all n are drawn, are
    broken at random). Each round draws, per undecided point, the fewest votes that could
    settle it.
    """
    counts, passes = lazy_sample(model, points, sigma, n, generator, plurality_votes_needed(n),
                                 batch_size, precision)
    m, C = counts.shape
    tie_break = torch.rand((m, C), generator=generator, device=model.device).cpu().numpy() * 0.5
    return LazyVoteResult(labels=(counts + tie_break).argmax(1), counts=counts,
                          forward_passes=passes)


def lazy_threshold_votes(model: Classifier, points: torch.Tensor, sigma: float, n: int,
                         hit_classes: np.ndarray, needed: int, generator: torch.Generator,
                         batch_size: int | None = None, precision: str = "auto",
                         round_size: int | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Decide "at least `needed` of n votes fall in `hit_classes`" at each point, lazily.

    Args:
        hit_classes: [C] booleans, True for the classes that count as hits (e.g. every
            class but y, or only the target).
        needed: hits out of n that make the answer True.
        round_size: votes drawn per round (bounds the memory of one round's noise).

    Returns:
        (decision [m] bool, votes drawn [m], forward passes spent).
    """
    hit_classes = np.asarray(hit_classes, dtype=bool)
    counts, passes = lazy_sample(model, points, sigma, n, generator,
                                 threshold_votes_needed(n, needed, hit_classes),
                                 batch_size, precision, round_size)
    return counts[:, hit_classes].sum(1) >= needed, counts.sum(1), passes
