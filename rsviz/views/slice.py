"""Boundary slice view: a 2D cut of image space around x_o, f and g_{σ,n} labels (paper Fig. 2).

The plane's second image (direction "image") is passed as a tensor beside the request; its
hash is part of the key. `point_labels` gives the page's images at chosen points of a finished
slice. See docs/architecture.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rsviz.errors import ConfigError
from rsviz.views.base import Cost, Request, progress_of


@dataclass(frozen=True, kw_only=True)
class SliceRequest(Request):
    """One slice: the engine's SliceConfig, plus the second image for direction "image"."""

    NAME = "slice"
    VERSION = "1"

    config: Any
    target_hash: str = ""
    target: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.config.direction == "image" and self.target is None:
            raise ConfigError("Direction 'image' needs a second image.")
        if self.target is not None and not self.target_hash:
            from rsviz.images import tensor_hash

            object.__setattr__(self, "target_hash", tensor_hash(self.target))
        super().__post_init__()

    def cost(self) -> Cost:
        """Dense: exact (G² labels of f plus G²·N votes). Adaptive: an estimate, never above
        the dense count."""
        from rsviz.slices.config import estimate_passes

        return Cost(estimate_passes(self.config),
                    "exact" if self.config.mode == "dense" else "about")

    def run(self, model: Any, x: Any, progress: Any = None, cancel: Any = None) -> Any:
        from rsviz.slices import compute_slice

        return compute_slice(model, x, self.config, self.target, progress_of(progress, cancel))

    def summary(self, result: Any) -> dict[str, Any]:
        config = self.config
        return {"config": {**config.__dict__, "ns": list(config.ns)}, **result.summary()}


def passes_note(forward_passes: int, dense_passes: int, mode: str) -> str:
    """How a slice's forward passes compare with the dense grid's G²·(N + 1), in words that
    stay true when the slice spent more than the grid (setting up the plane and the extent
    costs passes): the one wording of the app's caption and the CLI's line."""
    dense, spent = int(dense_passes), int(forward_passes)
    if mode == "dense":
        extra = spent - dense
        return f"dense: the grid's {dense:,}" + (
            f" plus {extra:,} to set up the plane and extent" if extra > 0 else "")
    if spent < dense:
        return f"adaptive; the dense grid takes {dense:,}, {dense / max(spent, 1):.1f}× as many"
    return f"adaptive; the dense grid takes {dense:,}, no saving here"


def point_labels(result: Any, model: Any, x: Any, points: Sequence[tuple[str, float, float]],
                 sigma: float, seed: int) -> list[dict[str, Any]]:
    """At each named point (name, u, v) of a finished slice: the image x(u, v), one noisy
    sample x(u, v) + σ·noise, f's label of both (one forward pass of the pair), and g_σ's
    label and p̂ of its top class at the nearest grid point. The noise comes from one CPU
    generator seeded by `seed`, drawn point after point: the same points give the same samples.
    """
    import numpy as np
    import torch

    from rsviz.smoothing import forward_labels, make_generator

    generator = make_generator(seed, "cpu")
    out = []
    for name, u, v in points:
        image = result.point(x, u, v)
        noisy = image + sigma * torch.randn(image.shape, generator=generator)
        f_image, f_noisy = forward_labels(model, torch.stack([image, noisy]))
        iu, iv = int(np.abs(result.u - u).argmin()), int(np.abs(result.v - v).argmin())
        out.append({"name": name, "u": u, "v": v, "image": image, "noisy": noisy,
                    "f": int(f_image), "f_noisy": int(f_noisy), "g": int(result.g_labels[iv, iu]),
                    "p_top": float(result.p_top[iv, iu])})
    return out
