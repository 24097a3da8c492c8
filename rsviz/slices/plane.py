"""The plane of a slice: x(u, v) = x_o + u·e1 + v·e2, its directions and its extent."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rsviz.errors import RsvizError
from rsviz.progress import Progress
from rsviz.models import Classifier
from rsviz.slices.config import SliceConfig
from rsviz.smoothing import forward_labels
from rsviz.whitebox import find_boundary_point


def gram_schmidt(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal e1 ∥ a and e2 in span(a, b) (twice re-orthogonalised, float64 inside)."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    if float(a64.norm()) < 1e-12:
        raise RsvizError("The first direction of the slice is zero (same image twice?).")
    e1 = a64 / a64.norm()
    e2 = b64
    for _ in range(2):
        e2 = e2 - (e2 @ e1) * e1
    if float(e2.norm()) < 1e-9 * float(b64.norm() + 1e-30):
        raise RsvizError("The two directions of the slice are parallel.")
    e2 = e2 / e2.norm()
    return e1.view_as(a).to(a.dtype), e2.view_as(b).to(b.dtype)


@dataclass
class Plane:
    """x(u, v) = x_o + u·e1 + v·e2, with points of interest as (name, u, v)."""

    x_o: torch.Tensor
    e1: torch.Tensor
    e2: torch.Tensor
    landmarks: list[tuple[str, float, float]] = field(default_factory=list)
    forward_passes: int = 0

    def points(self, u: np.ndarray, v: np.ndarray, clip: bool = False) -> torch.Tensor:
        """[m, 3, H, W] images at coordinates (u_i, v_i)."""
        uu = torch.as_tensor(np.asarray(u, dtype=np.float32), device=self.x_o.device)
        vv = torch.as_tensor(np.asarray(v, dtype=np.float32), device=self.x_o.device)
        shape = (-1,) + (1,) * self.x_o.dim()
        x = self.x_o[None] + uu.view(shape) * self.e1[None] + vv.view(shape) * self.e2[None]
        return x.clamp_(0, 1) if clip else x


def make_plane(model: Classifier, x_o: torch.Tensor, config: SliceConfig,
               target: torch.Tensor | None = None, y: int | None = None,
               progress: Progress | None = None) -> Plane:
    """The slice plane for `config.direction` (random: seeded; image: towards `target`;
    whitebox: towards `rsviz.whitebox.find_boundary_point`'s x_a). Directions are drawn on the
    CPU so that a seed gives the same plane on every device."""
    generator = torch.Generator().manual_seed(int(config.seed))
    x_cpu = x_o.detach().float().cpu()
    second = torch.randn(x_cpu.shape, generator=generator)
    landmarks: list[tuple[str, float, float]] = [("x_o", 0.0, 0.0)]
    passes = 0
    if config.direction == "random":
        first = torch.randn(x_cpu.shape, generator=generator)
    elif config.direction == "image":
        if target is None:
            raise RsvizError("Choose a second image for the direction 'towards an image'.")
        if tuple(target.shape) != tuple(x_cpu.shape):
            raise RsvizError(f"The second image has shape {tuple(target.shape)}, "
                             f"x_o has {tuple(x_cpu.shape)}: preprocess it for the model.")
        first = target.detach().float().cpu() - x_cpu
        if float(first.norm()) < 1e-6:
            raise RsvizError("The second image is the same as x_o: choose another one.")
        landmarks.append((config.target or "second image", float(first.norm()), 0.0))
    else:
        point = find_boundary_point(model, x_o, y, generator=generator, progress=progress)
        first = point.x_a.detach().float().cpu() - x_cpu
        landmarks.append(("x_a (white-box)", float(point.distance), 0.0))
        passes = int(getattr(point, "forward_passes", 0))
    e1, e2 = gram_schmidt(first, second)
    device = model.device
    return Plane(x_cpu.to(device), e1.to(device), e2.to(device), landmarks, passes)


def auto_extent(model: Classifier, plane: Plane, config: SliceConfig) -> tuple[float, int]:
    """(E, forward passes): the automatic half-width of the slice (see SliceConfig.extent)."""
    far = [d for name, d, _ in plane.landmarks if name != "x_o"]
    if far:
        return _round2(far[0] * (2.0 if config.direction == "whitebox" else 1.25)), 0
    steps = 0.25 * 2.0 ** (np.arange(27) / 2)  # 0.25 … 2048 by factors of √2
    u = np.concatenate([steps, -steps, 0 * steps, 0 * steps, [0.0]])
    v = np.concatenate([0 * steps, 0 * steps, steps, -steps, [0.0]])
    labels = forward_labels(model, plane.points(u, v, config.clip), config.batch_size,
                            config.precision)
    crossing = [float(steps[k]) for axis in range(4)
                for k in range(len(steps)) if labels[axis * len(steps) + k] != labels[-1]]
    return (_round2(1.25 * min(crossing)) if crossing else 100.0), len(u)


def _round2(x: float) -> float:
    """x rounded to two significant digits."""
    return float(f"{x:.2g}")
