"""A huge slice must not run the server out of memory (#29): votes are held in bounded blocks,
and what cannot fit is refused up front in one line, before any pass or allocation."""

from __future__ import annotations

import numpy as np
import pytest

from rsviz.errors import RsvizError
from rsviz.slices import SliceConfig, agreement, compute_slice, memory
from rsviz.slices.grid import SliceState

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def x():
    from rsviz.images import preprocess, synthetic_image

    return preprocess(synthetic_image(32, 0), 32, 32)


@pytest.fixture
def held(monkeypatch):
    """The largest vote array SliceState.votes returned (bytes), recorded as the slice runs."""
    sizes = [0]
    votes = SliceState.votes

    def spy(self, flat, n, message):
        out = votes(self, flat, n, message)
        sizes.append(out.nbytes)
        return out

    monkeypatch.setattr(SliceState, "votes", spy)
    return sizes


def _maps(result):
    return {"f": result.f_labels, "g": result.g_labels, "p_top": result.p_top,
            "p_y": result.p_y, "samples": result.samples,
            **{f"draw{n}": d for n, d in result.draws.items()}}


def test_dense_votes_are_held_block_by_block_with_the_same_numbers(tiny_model, x, held,
                                                                    monkeypatch):
    config = SliceConfig(sigma=0.05, ns=(4, 10), grid=33, n_samples=16, extent=24.0,
                         mode="dense")
    whole = compute_slice(tiny_model, x, config)
    assert max(held) == 1088 * 16 * 2  # every point but x_o at once (int16 labels)
    held.clear()
    monkeypatch.setattr(memory, "VOTE_BUDGET", 512 * 16 * 2)
    blocks = compute_slice(tiny_model, x, config)
    assert max(held) <= memory.VOTE_BUDGET
    for name, values in _maps(whole).items():  # blocks aligned to the noise and tie-breaks
        assert np.array_equal(values, _maps(blocks)[name]), name
    assert blocks.forward_passes == whole.forward_passes


def test_block_smaller_than_a_store_unit_still_bounds_memory(tiny_model, x, held, monkeypatch):
    monkeypatch.setattr(memory, "VOTE_BUDGET", 2048)  # 64 points of 16 votes
    config = SliceConfig(sigma=0.05, ns=(10,), grid=17, n_samples=16, extent=24.0,
                         mode="dense")
    result = compute_slice(tiny_model, x, config)
    assert 0 < max(held) <= 2048
    assert (result.samples == 16).all() and result.forward_passes == 17 * 17 * 17


def test_adaptive_escalates_in_groups_within_the_budget(tiny_model, x, held, monkeypatch):
    base = dict(sigma=0.05, ns=(10, 50), grid=21, n_samples=64, extent=24.0, n0=16)
    dense = compute_slice(tiny_model, x, SliceConfig(**base, mode="dense"))
    held.clear()
    monkeypatch.setattr(memory, "VOTE_BUDGET", 16 * 64 * 2)  # 16 points' N votes at once
    adaptive = compute_slice(tiny_model, x, SliceConfig(**base, mode="adaptive", noise_seed=1))
    assert 0 < max(held) <= memory.VOTE_BUDGET
    assert (adaptive.samples == 64).sum() > 16  # more points reached N than one group holds
    assert np.array_equal(dense.f_labels, adaptive.f_labels)
    assert agreement(dense.g_labels, adaptive.g_labels) >= 0.97


def test_huge_slice_needs_a_bounded_amount_of_memory():
    # a 1001² grid at N = 10⁵: its votes are 200 GB, the slice holds a few hundred MB
    dense = memory.memory_needed(1001, 100_000, 3, None, 1000, 3 * 224 * 224)
    assert dense < 1.2e9 and 1001**2 * 100_000 * 2 > 100 * dense
    adaptive = memory.memory_needed(1001, 100_000, 3, 16, 1000, 3 * 224 * 224)
    assert dense < adaptive < dense + 1001**2 * 16 * 2 + 1


def test_slice_that_cannot_fit_is_refused_before_anything_runs(tiny_model, x, monkeypatch):
    import rsviz.slices.compute as compute

    monkeypatch.setattr(memory, "available_memory", lambda: 64 * 10**6)
    monkeypatch.setattr(compute, "make_plane", lambda *a, **k: pytest.fail("computed"))
    monkeypatch.setattr(compute, "SliceState", lambda *a, **k: pytest.fail("allocated"))
    config = SliceConfig(sigma=0.25, ns=(10,), grid=1001, n_samples=100_000, mode="dense")
    with pytest.raises(RsvizError) as info:
        compute_slice(tiny_model, x, config)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("A 1001×1001 slice at N = 100,000 needs about ")
    assert message.endswith("more than the 64 MB available here: choose a smaller grid or N.")
    # a sensible slice passes the same check
    monkeypatch.setattr(memory, "available_memory", lambda: 2 * 10**9)
    memory.check_memory(1001, 100_000, 1, None, 10, 3 * 32 * 32)


def test_available_memory_is_read_from_the_system():
    available = memory.available_memory()
    assert available is not None and 2**20 < available < 2**50
    assert memory.format_bytes(64e6) == "64 MB" and memory.format_bytes(1.5e9) == "1.5 GB"
