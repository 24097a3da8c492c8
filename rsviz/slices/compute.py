"""Computing a slice: the plane, f on the grid, y = g_σ(x_o), then dense or adaptive votes."""

from __future__ import annotations

import time

import numpy as np
import torch

from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.slices.adaptive import sample_adaptive
from rsviz.slices.config import SliceConfig, estimate_passes
from rsviz.slices.grid import Meter, SliceState
from rsviz.slices.memory import check_memory
from rsviz.slices.plane import auto_extent, make_plane
from rsviz.slices.result import SliceResult


def sample_dense(state: SliceState) -> None:
    """N votes at every grid point but the centre (drawn by `SliceState.centre`), drawn and
    stored block by block (`SliceState.block`): memory stays bounded at any G and N."""
    G, N = state.config.grid, state.config.n_samples
    rest = np.setdiff1d(np.arange(G * G), [(G // 2) * G + G // 2])
    block = state.block(N)
    for start in range(0, len(rest), state.max_points * 4):
        chunk = rest[start:start + state.max_points * 4]
        for first in range(0, len(chunk), block):
            part = chunk[first:first + block]
            state.store_votes(part, state.votes(part, N, "dense votes"))


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
    check_memory(config.grid, config.n_samples, len(config.ns),
                 config.n0 if config.mode == "adaptive" else None, model.info.num_classes,
                 int(np.prod(model.info.input_shape)))
    meter = Meter(progress or NullProgress(), estimate_passes(config))
    plane = make_plane(model, x_o, config, target, progress=meter.progress)
    meter.add(plane.forward_passes, "plane")
    extent, passes = (config.extent, 0) if config.extent else auto_extent(model, plane, config)
    meter.add(passes, "automatic extent")
    state = SliceState(model, plane, config, float(extent), meter)
    G = config.grid
    state.base_labels(np.arange(G * G))
    state.centre()
    (sample_dense if config.mode == "dense" else sample_adaptive)(state)
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
