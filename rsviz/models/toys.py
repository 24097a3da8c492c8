"""Analytic and tiny models for tests: a half-space and a ball (exact smoothed probabilities)
and a small random CNN."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

TOY_SIZE = 32


class LinearClassifier(nn.Module):
    """Half-space classifier: class 1 where w·x + b > 0, else class 0.

    The smoothed probability is exact: p_1(x) = Φ((w·x + b) / (σ‖w‖)).
    """

    def __init__(self, w: torch.Tensor, b: float, logit_scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("w", w.flatten().float())
        self.b = float(b)
        self.logit_scale = logit_scale

    def extra_repr(self) -> str:
        return f"b={self.b!r}, logit_scale={self.logit_scale!r}"

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1).float() @ self.w + self.b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.score(x) * self.logit_scale
        return torch.stack([-s / 2, s / 2], dim=1)

    def exact_p(self, x: torch.Tensor, sigma: float) -> np.ndarray:
        """Exact [m, 2] class probabilities under Gaussian noise of std sigma."""
        from scipy.stats import norm

        z = (self.score(x) / (sigma * self.w.norm())).double().cpu().numpy()
        p1 = norm.cdf(z)
        return np.stack([1 - p1, p1], axis=1)

    def distance_to_boundary(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(x).abs() / self.w.norm()


class BallClassifier(nn.Module):
    """Ball classifier: class 0 inside ‖x − c‖ < r, class 1 outside.

    ‖x + σN − c‖²/σ² is noncentral χ² with d degrees of freedom and non-centrality ‖x − c‖²/σ²,
    so p is exact in any dimension; every principal curvature of the boundary is 1/r.
    """

    def __init__(self, center: torch.Tensor, radius: float, logit_scale: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("center", center.flatten().float())
        self.radius = float(radius)
        self.logit_scale = logit_scale

    def extra_repr(self) -> str:
        return f"radius={self.radius!r}, logit_scale={self.logit_scale!r}"

    def margin(self, x: torch.Tensor) -> torch.Tensor:
        """r − ‖x − c‖ (positive inside)."""
        return self.radius - (x.flatten(1).float() - self.center).norm(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.margin(x) * self.logit_scale
        return torch.stack([s / 2, -s / 2], dim=1)

    def exact_p(self, x: torch.Tensor, sigma: float) -> np.ndarray:
        """Exact [m, 2] class probabilities under Gaussian noise of std sigma."""
        from scipy.stats import ncx2

        d = self.center.numel()
        dist2 = ((x.flatten(1).double().cpu() - self.center.double().cpu()) ** 2).sum(1).numpy()
        p0 = ncx2.cdf(self.radius ** 2 / sigma ** 2, d, dist2 / sigma ** 2)
        return np.stack([p0, 1 - p0], axis=1)


class TinyCNN(nn.Module):
    """A small random CNN (seeded), for fast tests of the whole pipeline."""

    def __init__(self, num_classes: int = 10, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(64, num_classes),
        )
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * (2.0 / max(p[0].numel(), 1)) ** 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def make_linear_toy(size: int = TOY_SIZE, seed: int = 0, offset: float = 0.2) -> LinearClassifier:
    """A linear classifier on [0,1]^{3xsizexsize} whose boundary is `offset` (L2) from the mid-grey image."""
    generator = torch.Generator().manual_seed(seed)
    w = torch.randn(3 * size * size, generator=generator)
    w = w / w.norm()
    grey = torch.full((3 * size * size,), 0.5)
    b = -(float(w @ grey) + offset)
    return LinearClassifier(w, b, logit_scale=10.0)


def make_ball_toy(size: int = TOY_SIZE, radius: float = 3.0) -> BallClassifier:
    """A ball classifier centred on the mid-grey image (inside = class 0)."""
    return BallClassifier(torch.full((3 * size * size,), 0.5), radius, logit_scale=10.0)
