"""The segment measured once, and the law of g_{σ,n}'s answers along it.

`measure_segment` draws N votes at each point of a grid of t; `SegmentProfile` interpolates
the class frequencies p̂(t) (optionally a probit fit of p̂_y). The answer functions map the
midpoints t of many dichotomies to adversarial or not: simulated from p̂, live on the model
(lazy exact votes), or of the base classifier f.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from rsviz.dichotomy.config import DichotomyConfig, Method
from rsviz.progress import Progress
from rsviz.models import Classifier
from rsviz.smoothing import forward_labels, lazy_votes, make_generator, sample_votes
from rsviz.theory import prob_wrong_binomial


@dataclass
class SegmentProfile:
    """Class frequencies measured once along the segment (the simulation's only model pass).

    Attributes:
        t: [m] grid positions in [0, 1].
        freq: [m, K] class frequencies used by the simulation (fitted when config.fit says so)
            for the K classes seen anywhere on the segment (plus y).
        classes: [K] class index of each column.
        y: the original class; `iy` its column.
        n_samples: N samples per grid point.
        forward_passes: m·N.
        raw_freq: [m, K] measured vote frequencies before any fit.
    """

    t: np.ndarray
    freq: np.ndarray
    classes: np.ndarray
    y: int
    n_samples: int
    forward_passes: int
    raw_freq: np.ndarray | None = None

    @property
    def iy(self) -> int:
        return int(np.flatnonzero(self.classes == self.y)[0])

    def freq_at(self, t: np.ndarray) -> np.ndarray:
        """[T, K] frequencies linearly interpolated at positions t (rows sum to 1)."""
        x = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0) * (len(self.t) - 1)
        i0 = np.minimum(np.floor(x).astype(int), len(self.t) - 2)
        w = (x - i0)[:, None]
        return (1 - w) * self.freq[i0] + w * self.freq[i0 + 1]

    def p_y(self, t: np.ndarray) -> np.ndarray:
        return self.freq_at(t)[:, self.iy]

    def margin(self, t: np.ndarray) -> np.ndarray:
        """p̂_y − max_{c≠y} p̂_c: positive where the ideal g_σ says y (2p̂_y − 1 for 2 classes)."""
        f = self.freq_at(t)
        others = np.delete(f, self.iy, axis=1)
        return f[:, self.iy] - (others.max(1) if others.shape[1] else 0.0)


def segment_points(a: torch.Tensor, b: torch.Tensor, t: np.ndarray) -> torch.Tensor:
    """[T, 3, H, W] points x_t = A + t (B − A)."""
    tt = torch.as_tensor(np.asarray(t), dtype=torch.float32, device=a.device).view(-1, 1, 1, 1)
    return a[None] + tt * (b - a)[None]


def measure_segment(model: Classifier, a: torch.Tensor, b: torch.Tensor, y: int,
                    config: DichotomyConfig, progress: Progress | None = None) -> SegmentProfile:
    """p̂ on `config.grid` points of [A, B] with `config.n_samples` votes each (one pass)."""
    t = np.linspace(0.0, 1.0, config.grid)
    generator = make_generator(config.seed, model.device)
    record = sample_votes(model, segment_points(a.to(model.device), b.to(model.device), t),
                          config.sigma, config.n_samples, generator, config.batch_size,
                          config.precision, progress)
    counts = record.counts
    seen = np.flatnonzero(counts.sum(0) > 0)
    classes = np.union1d(seen, [y])
    raw = counts[:, classes] / record.n_samples
    iy = int(np.flatnonzero(classes == y)[0])
    freq = raw
    if config.fit == "probit":
        p_y = fit_probit(t, counts[:, y], record.n_samples, config.fit_degree)
        freq = with_p_y(raw, iy, p_y)
    return SegmentProfile(t=t, freq=freq, classes=classes, y=int(y),
                          n_samples=record.n_samples, forward_passes=record.forward_passes,
                          raw_freq=raw)


def fit_probit(t: np.ndarray, k: np.ndarray, n_samples: int, degree: int = 3) -> np.ndarray:
    """Binomial maximum-likelihood fit of p(t) = Φ(poly(t)) to k successes out of N at each t.

    For a half-space p(t) = Φ((w·x_t + b)/(σ‖w‖)) is exactly of this form with degree 1.
    """
    from scipy.optimize import minimize
    from scipy.stats import norm

    k = np.asarray(k, dtype=np.float64)
    X = np.vander(2 * np.asarray(t) - 1, degree + 1, increasing=True)
    z0 = norm.ppf(np.clip((k + 0.5) / (n_samples + 1), 1e-6, 1 - 1e-6))
    beta0 = np.linalg.lstsq(X, z0, rcond=None)[0]

    def nll(beta: np.ndarray) -> tuple[float, np.ndarray]:
        z = X @ beta
        lp, lq = norm.logcdf(z), norm.logcdf(-z)
        dens = norm.logpdf(z)
        dz = -(k * np.exp(dens - lp) - (n_samples - k) * np.exp(dens - lq))
        return float(-(k * lp + (n_samples - k) * lq).sum()), X.T @ dz

    beta = minimize(nll, beta0, jac=True, method="BFGS").x
    return norm.cdf(X @ beta)


def with_p_y(raw: np.ndarray, iy: int, p_y: np.ndarray) -> np.ndarray:
    """Frequencies with column iy replaced by p_y; the other classes share 1 − p_y in their
    measured proportions (all to the most voted other class where none was measured)."""
    others = np.delete(raw, iy, axis=1)
    if others.shape[1] == 0:
        return raw
    total = others.sum(1, keepdims=True)
    fallback = np.zeros(others.shape[1])
    fallback[others.sum(0).argmax()] = 1.0
    shares = np.where(total > 0, others / np.maximum(total, 1e-300), fallback)
    return np.insert(shares * (1 - p_y)[:, None], iy, p_y, axis=1)


def _plurality_wrong(votes: np.ndarray, iy: int, rng: np.random.Generator) -> np.ndarray:
    """[T] plurality of vote counts [T, K] ≠ column iy, ties broken uniformly at random."""
    return (votes + rng.random(votes.shape) * 0.5).argmax(1) != iy


def simulated_answer(profile: SegmentProfile, n: int, method: Method,
                     rng: np.random.Generator) -> Callable[[np.ndarray], np.ndarray]:
    """A query of g_{σ,n} at t simulated from the measured frequencies (fresh draw each call)."""
    def answer(t: np.ndarray) -> np.ndarray:
        if method == "binomial":
            return rng.random(len(t)) < prob_wrong_binomial(profile.p_y(t), n)
        freq = profile.freq_at(t)
        votes = rng.multinomial(n, freq / freq.sum(1, keepdims=True))
        return _plurality_wrong(votes, profile.iy, rng)
    return answer


def prob_wrong_at(profile: SegmentProfile, n: int, method: Method, draws: int = 4000,
                  seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    """q(t) = P[g_{σ,n}(x_t) ≠ y] under the measured frequencies.

    Exact (binomial with random tie) for "binomial" or when at most two classes were seen;
    otherwise a Monte Carlo of `draws` multinomial votes per grid point, interpolated in t.
    """
    if method == "binomial" or len(profile.classes) <= 2:
        return lambda t: prob_wrong_binomial(profile.p_y(t), n)
    rng = np.random.default_rng([seed, n])
    freq = np.repeat(profile.freq, draws, axis=0)
    votes = rng.multinomial(n, freq / freq.sum(1, keepdims=True))
    q_grid = _plurality_wrong(votes, profile.iy, rng).reshape(len(profile.t), draws).mean(1)
    return lambda t: np.interp(t, profile.t, q_grid)


def live_answer(model: Classifier, a: torch.Tensor, b: torch.Tensor, y: int, sigma: float,
                n: int, generator: torch.Generator, counter: list[int],
                config: DichotomyConfig) -> Callable[[np.ndarray], np.ndarray]:
    """One real query of g_{σ,n} per midpoint (lazy exact vote, fresh noise); passes counted."""
    def answer(t: np.ndarray) -> np.ndarray:
        result = lazy_votes(model, segment_points(a, b, t), sigma, n, generator,
                            config.batch_size, config.precision)
        counter[0] += result.forward_passes
        return result.labels != y
    return answer


def base_answer(model: Classifier, a: torch.Tensor, b: torch.Tensor, y: int,
                counter: list[int], precision: str = "auto") -> Callable[[np.ndarray], np.ndarray]:
    """A query of the deterministic base classifier f (one forward pass per point)."""
    def answer(t: np.ndarray) -> np.ndarray:
        counter[0] += len(t)
        return forward_labels(model, segment_points(a, b, t), precision=precision) != y
    return answer
