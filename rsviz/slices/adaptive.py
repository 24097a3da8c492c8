"""Adaptive sampling of a slice (docs/slices.md, "Adaptive sampling"): coarse-to-fine grid,
unanimous cells filled without votes, sequential votes only until each top class is decided."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from rsviz.slices import memory
from rsviz.slices.grid import SliceState, top_two
from rsviz.smoothing import VoteRecord, lazy_votes


def _lattice(G: int, stride: int) -> np.ndarray:
    return np.unique(np.r_[np.arange(0, G, stride), G - 1])


def decided(labels: np.ndarray, num_classes: int, alpha: float) -> np.ndarray:
    """[m] True where the top class of each row of votes ([m, k] labels) is decided at
    level α: one-sided sign test of the top class against the runner-up,
    P[Binomial(k1 + k2, 1/2) ≥ k1] ≤ α (k1, k2 the two largest counts)."""
    counts = VoteRecord(labels=labels, num_classes=num_classes, sigma=0.0).counts
    lead, second = top_two(counts)
    return binom.sf(lead - 1, lead + second, 0.5) <= alpha


def sample_adaptive(state: SliceState) -> None:
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
        block = state.block(n0)  # the same noise and tie-breaks as one block, bounded memory
        for first in range(0, len(flat), block):
            part = flat[first:first + block]
            labels = state.votes(part, n0, message)
            visited[part] = True
            settled[part] = (labels == labels[:, :1]).all(1)
            state.store_votes(part, labels)
            ok = decided(labels, C, cfg.alpha) | (n0 >= N)
            if (~ok).any():
                pending.append((part[~ok], labels[~ok]))

    def escalate() -> None:
        """Double the votes of the pending points until each is decided or has N. Points
        whose N votes would exceed the memory budget together are escalated group by group
        (`SliceState.block(N)`); below it, all at once, as always."""
        if not pending:
            return
        flat = np.concatenate([p for p, _ in pending])
        labels = np.concatenate([lab for _, lab in pending])
        pending.clear()
        group = len(flat) if len(flat) * N * labels.itemsize <= memory.VOTE_BUDGET \
            else state.block(N)
        for first in range(0, len(flat), group):
            escalate_group(flat[first:first + group], labels[first:first + group])

    def escalate_group(flat: np.ndarray, labels: np.ndarray) -> None:
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
        exact_realisations(state)


def _bracket(lattice: np.ndarray, i: int) -> tuple[int, int]:
    """Neighbouring indices of the coarser lattice around i (equal when i is on it)."""
    k = int(np.searchsorted(lattice, i))
    if k < len(lattice) and lattice[k] == i:
        return int(i), int(i)
    return int(lattice[k - 1]), int(lattice[k])


def exact_realisations(state: SliceState) -> None:
    """Replace inferred g_{σ,n} realisations by exact lazy votes (fresh noise)."""
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
