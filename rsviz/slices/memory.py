"""Memory of a slice computation: votes are held in bounded blocks, and a slice whose maps
alone would not fit in the memory available is refused up front, in one line.

The votes of a point are its N labels (int16 for fewer than 32 768 classes). Dense and
adaptive sampling never hold more than `VOTE_BUDGET` bytes of them at once (plus one copy),
whatever G and N: a 1001² grid at N = 10⁵ holds about 100 MB of votes at a time, where the
whole grid's would be 200 GB. What still grows with the grid is the maps (a few int64 and
float maps of G² values, about 80 MB at G = 1001) and, in adaptive mode, the first n0 votes of
the points still undecided after the first pass (at most G²·n0 labels).
"""

from __future__ import annotations

import math
import os

import numpy as np

from rsviz.errors import RsvizError

VOTE_BUDGET = 256 * 2**20  # bytes of vote labels held at once by the slice engine
STORE_ROWS = 512  # points per call of the realisations' tie-break draws (SliceState.store_votes)
VOTES_PER_CALL = 4096  # votes per sample_votes call of SliceState.votes (n ≥ 4096: one point)
IMAGE_BUDGET = 128 * 2**20  # bytes of images built at once (SliceState.max_points)


def label_dtype(num_classes: int) -> np.dtype:
    """The dtype of stored vote labels (what sample_votes returns)."""
    return np.dtype(np.int16 if num_classes < 32768 else np.int32)


def max_points(input_numel: int) -> int:
    """Images of the slice built at once: at most 4096 and `IMAGE_BUDGET` bytes."""
    return int(max(1, min(4096, IMAGE_BUDGET // (4 * input_numel))))


def points_per_call(n: int, most: int) -> int:
    """Points per sample_votes call when n votes are drawn at each (at most `most`)."""
    return int(max(1, min(most, VOTES_PER_CALL // n)))


def block_points(n: int, per_call: int, itemsize: int, budget: int | None = None) -> int:
    """Points whose n votes each are drawn and stored as one block, within `budget` bytes.

    The block is a multiple of the points per sample_votes call and of `STORE_ROWS` whenever
    such a multiple fits: the noise stream and the realisations' tie-breaks then split the
    work exactly as one unbounded block would, so the numbers do not depend on the budget.
    Only where even one such unit would exceed the budget (n of hundreds of thousands) is the
    block smaller, at least one point.
    """
    budget = VOTE_BUDGET if budget is None else budget
    unit = math.lcm(STORE_ROWS, per_call)
    fit = budget // max(1, n * itemsize)
    return int(fit // unit * unit if fit >= unit else max(1, fit))


def memory_needed(grid: int, n_samples: int, ns: int, n0: int | None, num_classes: int,
                  input_numel: int, budget: int | None = None) -> int:
    """Bytes a slice needs at its peak, an upper estimate: the working maps and the result's
    copy of them, the votes held at once (twice: a block and its copy), the first-pass votes
    of the adaptive mode's undecided points, and the images built at once (twice: the points
    and their noisy batch)."""
    budget = VOTE_BUDGET if budget is None else budget
    points = grid * grid
    item = label_dtype(num_classes).itemsize
    maps = points * (5 * 8 + ns * (8 + 1)) * 2 + points * 3  # + adaptive's visited flags
    votes = 2 * max(min(budget, points * n_samples * item), n_samples * item)
    first_pass = points * n0 * item if n0 else 0
    images = 2 * max_points(input_numel) * 4 * input_numel
    return int(maps + votes + first_pass + images)


def available_memory() -> int | None:
    """Bytes this process can still allocate: MemAvailable (else the free pages), within a
    cgroup's limit where one is set; None when the system does not say."""
    available = None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    for limit, used in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit, encoding="ascii") as a, open(used, encoding="ascii") as b:
                cap, now = a.read().strip(), b.read().strip()
            if cap.isdigit() and now.isdigit() and int(cap) < 2**60:
                available = min(available, max(0, int(cap) - int(now)))
                break
        except OSError:
            continue
    return available


def format_bytes(value: float) -> str:
    """Bytes in words: '1.5 GB', '820 MB', '12 kB'."""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if value >= size:
            return f"{value / size:.3g} {unit}"
    return f"{value:.0f} bytes"


def check_memory(grid: int, n_samples: int, ns: int, n0: int | None, num_classes: int,
                 input_numel: int) -> None:
    """Raise RsvizError, in one line, when a slice would need more memory than is available
    (before anything is allocated or computed)."""
    needed = memory_needed(grid, n_samples, ns, n0, num_classes, input_numel)
    available = available_memory()
    if available is not None and needed > available:
        raise RsvizError(
            f"A {grid}×{grid} slice at N = {n_samples:,} needs about {format_bytes(needed)} "
            f"of memory, more than the {format_bytes(available)} available here: choose a "
            f"smaller grid{', n0' if n0 else ''} or N.")
