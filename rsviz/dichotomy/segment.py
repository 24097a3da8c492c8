"""Choosing the segment [A, B] of a dichotomy: past the white-box boundary point, or by a
coarse line search along a random direction or towards another image."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from rsviz.errors import RsvizError
from rsviz.progress import Progress
from rsviz.models import Classifier
from rsviz.smoothing import forward_labels, make_generator
from rsviz.whitebox import find_boundary_point


@dataclass(frozen=True)
class Segment:
    """The segment [A, B] of a dichotomy and how it was chosen (`caption` says it in words)."""

    a: torch.Tensor
    b: torch.Tensor
    y: int
    kind: str
    caption: str


def segment_past_whitebox(model: Classifier, x_o: torch.Tensor, y: int, sigma: float,
                          extension: float = 3.0, progress: Progress | None = None,
                          max_iter: int = 100) -> Segment:
    """A = x_o, B = x_o + (‖x_a − x_o‖ + extension·σ) u past the white-box boundary point x_a of
    f (u the unit direction to x_a, found in at most `max_iter` gradient iterations), clamped
    to [0, 1]^d."""
    x_o = x_o.to(model.device, torch.float32)
    point = find_boundary_point(model, x_o, y, max_iter=max_iter, progress=progress)
    x_a = point.x_a.to(x_o.device, torch.float32).reshape(x_o.shape)
    dist = float((x_a - x_o).norm())
    b = (x_o + (x_a - x_o) * (1 + extension * sigma / dist)).clamp(0, 1)
    return Segment(x_o, b, y, "whitebox", f"B lies {extension:g}σ past the white-box boundary "
                   f"point x_a of f (‖x_a − x_o‖ = {dist:.3f}, {point.iterations} of at most "
                   f"{max_iter} gradient iterations), clamped to [0, 1]^d.")


def segment_by_line_search(model: Classifier, x_o: torch.Tensor, y: int, direction: torch.Tensor,
                           scales: np.ndarray, sigma: float, extension: float, kind: str,
                           what: str) -> Segment:
    """A = x_o, B = first point x_o + s·direction (s in `scales`, clamped to [0, 1]^d) that f
    does not classify as y, pushed `extension`·σ further along the same ray."""
    x_o = x_o.to(model.device, torch.float32)
    direction = direction.to(x_o.device, torch.float32).reshape(x_o.shape)
    points = (x_o[None] + torch.as_tensor(scales, dtype=torch.float32, device=x_o.device)
              .view(-1, 1, 1, 1) * direction[None]).clamp(0, 1)
    hits = np.flatnonzero(forward_labels(model, points) != y)
    if len(hits) == 0:
        raise RsvizError(f"No point {what} is adversarial for f (coarse line search of "
                         f"{len(scales)} points): choose another segment.")
    s = float(scales[hits[0]]) + extension * sigma / float(direction.norm())
    b = (x_o + s * direction).clamp(0, 1)
    return Segment(x_o, b, y, kind, f"B: first of {len(scales)} points {what} that f "
                   f"misclassifies (coarse line search), pushed {extension:g}σ further; "
                   f"no white-box boundary point was used.")


def segment_random(model: Classifier, x_o: torch.Tensor, y: int, sigma: float,
                   extension: float = 3.0, seed: int = 0, max_distance: float | None = None,
                   points: int = 16) -> Segment:
    """Fallback: B along a random Gaussian direction (geometric line search up to
    `max_distance`, default half the diagonal of [0, 1]^d)."""
    generator = make_generator(seed, "cpu")
    u = torch.randn(x_o.shape, generator=generator)
    u = u / u.norm()
    top = max_distance or 0.5 * math.sqrt(x_o.numel())
    scales = top * np.geomspace(1 / 256, 1, points)
    return segment_by_line_search(model, x_o, y, u, scales, sigma, extension, "random",
                                  "along a random direction")


def segment_towards(model: Classifier, x_o: torch.Tensor, y: int, other: torch.Tensor,
                    sigma: float, extension: float = 3.0, name: str = "another image",
                    points: int = 16) -> Segment:
    """Fallback: B on the segment from x_o towards another image (linear line search)."""
    return segment_by_line_search(model, x_o, y, other.to(x_o.device) - x_o,
                                  np.linspace(1 / points, 1, points), sigma, extension, "towards",
                                  f"towards {name}")
