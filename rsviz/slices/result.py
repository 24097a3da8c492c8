"""The maps of a computed slice, their summary and their saved form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rsviz.slices.config import SliceConfig
from rsviz.theory import prob_wrong_binomial


@dataclass
class SliceResult:
    """Maps of one slice, indexed [iv, iu] (rows follow v, columns follow u).

    Attributes:
        config: the SliceConfig (with `extent` as given; `extent` below is the one used).
        u, v: [G] coordinates (L2 units).
        y: reference class, g_σ(x_o) estimated from N votes at x_o.
        f_labels: [G, G] base classifier labels (no noise).
        g_labels: [G, G] ideal g_σ labels (top class of the votes; lowest index on ties).
        p_top: [G, G] p̂ of that top class.
        p_y: [G, G] p̂_y.
        draws: n -> [G, G] one realisation of g_{σ,n}.
        draw_exact: n -> [G, G] True where that realisation is an exact draw from real votes.
        samples: [G, G] votes drawn at each point (0 where the adaptive grid filled the cell).
        landmarks: (name, u, v) points of interest (x_o, second image, x_a).
        class_names: {class index: name} for every class that occurs in a map.
        forward_passes: base-model forward passes spent (plane + f + votes).
        dense_passes: what the dense computation costs (G² + G²·N).
        seconds: wall time.
        e1, e2: the plane directions (float32 numpy, image shape) to rebuild any point.
    """

    config: SliceConfig
    extent: float
    u: np.ndarray
    v: np.ndarray
    y: int
    f_labels: np.ndarray
    g_labels: np.ndarray
    p_top: np.ndarray
    p_y: np.ndarray
    draws: dict[int, np.ndarray]
    draw_exact: dict[int, np.ndarray]
    samples: np.ndarray
    landmarks: list[tuple[str, float, float]]
    class_names: dict[int, str]
    forward_passes: int
    dense_passes: int
    seconds: float
    e1: np.ndarray
    e2: np.ndarray

    @property
    def grid(self) -> int:
        return len(self.u)

    def p_adversarial(self, n: int) -> np.ndarray:
        """[G, G] P[g_{σ,n}(x) ≠ y]: two-class binomial law from p̂_y (y against all other
        classes pooled, random tie-break): exact for two classes, an over-estimate where the
        other votes split among several classes."""
        return prob_wrong_binomial(self.p_y, n)

    def point(self, x_o: torch.Tensor, u: float, v: float) -> torch.Tensor:
        """The image x(u, v) of this slice ([3, H, W], clipped only if the config clips)."""
        e1 = torch.from_numpy(self.e1).to(x_o.device)
        e2 = torch.from_numpy(self.e2).to(x_o.device)
        x = x_o.float() + float(u) * e1 + float(v) * e2
        return x.clamp(0, 1) if self.config.clip else x

    def summary(self) -> dict:
        """JSON-ready numbers of the slice."""
        return {"grid": self.grid, "extent": self.extent, "y": self.y,
                "y_name": self.class_names.get(self.y, str(self.y)),
                "forward_passes": self.forward_passes, "dense_passes": self.dense_passes,
                "savings": self.dense_passes / max(self.forward_passes, 1),
                "seconds": self.seconds, "mode": self.config.mode,
                "exact_fraction": {n: float(m.mean()) for n, m in self.draw_exact.items()},
                "landmarks": [list(lm) for lm in self.landmarks]}

    def save_npz(self, path: str) -> None:
        """All maps in one .npz (keys f_labels, g_labels, p_top, p_y, samples, u, v,
        g_n{n}, exact_n{n}, p_adv_n{n})."""
        arrays = {"u": self.u, "v": self.v, "f_labels": self.f_labels, "g_labels": self.g_labels,
                  "p_top": self.p_top, "p_y": self.p_y, "samples": self.samples,
                  "y": np.array(self.y)}
        for n in self.draws:
            arrays[f"g_n{n}"] = self.draws[n]
            arrays[f"exact_n{n}"] = self.draw_exact[n]
            arrays[f"p_adv_n{n}"] = self.p_adversarial(n)
        np.savez_compressed(path, **arrays)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of grid points where two label maps agree."""
    return float((np.asarray(a) == np.asarray(b)).mean())
