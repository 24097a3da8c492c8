"""Curvature of ∂f at a boundary point and SORM predictions of π0 (paper eq. 3).

Sign convention (the paper's): principal curvatures are the eigenvalues of the shape operator

    S = P H P / ‖∇m‖,   P = I − n nᵀ,  n = ∇m/‖∇m‖,

where m is the margin of the ORIGINAL class y (positive on x_o's side) and H its Hessian.
κ < 0 when ∂f is convex towards x_o (x_o sits in a locally convex region of its class, e.g.
inside a ball: κ = −1/r); κ > 0 when ∂f bulges away from x_o (the adversarial region is locally
convex). Curvatures are in pixel units (1/L2); κ̃ = σκ is the standardised curvature of eq. (3).

Noise scale. ReLU networks are piecewise linear: their Hessian is 0 almost everywhere, so an
exact Hessian-vector product says nothing. We use the secant Hessian at the noise scale,

    H_h v ≈ ‖v‖ (∇m(x_a + h v̂) − ∇m(x_a − h v̂)) / (2h),   v̂ = v/‖v‖,  h ~ σ,

i.e. the Hessian averaged over the segment the noise actually explores (central differences:
exact for quadratics, O(h²) for smooth margins). A smooth surrogate (softplus activations)
would change the network; finite differences measure the real f. The margin uses a FIXED
runner-up class (the adversarial label at x_a) so that it stays smooth across ties.

Spectrum. Lanczos with full reorthogonalisation gives the extreme curvatures (Ritz values with
residual bounds). Σ log(1 + βκ̃_i) over the d−1 tangent directions is a trace of a matrix
function: stochastic Lanczos quadrature (Hutchinson probes, each a short Lanczos run) gives it
for every β at once, with a standard error over probes; tr S and tr S² come from the same nodes.

SORM variants, as P[f(x + σN) ≠ y] = 1 − π0 at signed standardised distance β = δ/σ from ∂f
(β > 0 on x_o's side, β < 0 past x_a):
- "eq3": Φ(−β) Π(1 + βκ̃_i)^{-1/2} (Breitung; for β < 0: 1 − Φ(β) Π(1 + βκ̃_i)^{-1/2});
  an asymptotic (β → ∞, fixed d) formula; undefined where some 1 + βκ̃_i ≤ 0.
- "first_order": the same with Σ log(1 + βκ̃_i) replaced by β Σκ̃_i (mean curvature).
- "quadratic": the exact Gaussian average over the tangential noise of the quadratic surface,
  Q = Σκ̃_i η_i² replaced by a normal of the same mean and variance:
  Φ(−(β + ½ Σκ̃_i) / √(1 + ½ Σκ̃_i²)). It stays accurate in high dimension, where the
  tangential noise (norm σ√d) dominates and eq. 3 diverges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np
import torch
from scipy import stats

from rsviz.config import check_count, check_sigma
from rsviz.errors import ConfigError
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.whitebox import BoundaryPoint, margin_grad

Variant = Literal["eq3", "first_order", "quadratic"]
VARIANTS: tuple[str, ...] = ("eq3", "first_order", "quadratic")
Matvec = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CurvatureConfig:
    """How the curvature of ∂f at x_a is measured.

    Attributes:
        sigma: noise level (sets κ̃ = σκ and the default step).
        h_ratio: finite-difference step h = h_ratio · σ.
        lanczos_steps: Hessian-vector products of the top-of-spectrum Lanczos run.
        probes: Hutchinson probes of the log-determinant (≥ 2 for an uncertainty).
        slq_steps: Lanczos steps per probe (quadrature nodes).
        seed: seed of the Lanczos start vector and the probes.
    """

    sigma: float = 0.25
    h_ratio: float = 1.0
    lanczos_steps: int = 20
    probes: int = 4
    slq_steps: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        check_sigma(self.sigma)
        if not self.h_ratio > 0:
            raise ConfigError(f"The finite-difference step ratio must be > 0 (got {self.h_ratio}).")
        check_count("Lanczos steps", self.lanczos_steps, 2)
        check_count("probes", self.probes, 1)
        check_count("quadrature steps", self.slq_steps, 1)

    @property
    def hvps(self) -> int:
        """Hessian-vector products (each = 2 gradients = 2 forward+backward passes)."""
        return self.lanczos_steps + self.probes * self.slq_steps


@dataclass(frozen=True, eq=False)
class CurvatureResult:
    """Curvature spectrum of ∂f at x_a (pixel units, paper's sign; see module docstring).

    Attributes:
        sigma, h: noise level and finite-difference step.
        dim: d; the tangent space has d − 1 dimensions.
        ritz: Ritz values of S from the top-of-spectrum Lanczos run, descending.
        ritz_error: residual bound |β_m s_m| of each Ritz value.
        nodes, weights: [probes, k] SLQ quadrature nodes (curvatures) and weights; the
            spectral measure of probe j is Σ_k weights[j,k] δ(nodes[j,k]) with total mass
            `scale[j]` ≈ d − 1.
        scale: [probes] ‖Pz‖² of each probe.
        hvps: Hessian-vector products spent; forward_passes counts gradients (2 per HVP).
    """

    sigma: float
    h: float
    dim: int
    ritz: np.ndarray
    ritz_error: np.ndarray
    nodes: np.ndarray
    weights: np.ndarray
    scale: np.ndarray
    hvps: int
    forward_passes: int

    def trace_f(self, f: Callable[[np.ndarray], np.ndarray]) -> tuple[float, float]:
        """SLQ estimate of tr f(S) over the tangent space and its standard error."""
        per_probe = self.scale * (self.weights * f(self.nodes)).sum(1)
        se = per_probe.std(ddof=1) / math.sqrt(len(per_probe)) if len(per_probe) > 1 else math.nan
        return float(per_probe.mean()), float(se)

    @property
    def mean_curvature(self) -> float:
        """tr S / (d − 1), pixel units."""
        return self.trace_f(lambda k: k)[0] / (self.dim - 1)

    def extreme(self) -> tuple[float, float]:
        """Smallest and largest curvature seen (Ritz values and quadrature nodes)."""
        values = np.concatenate([self.ritz, self.nodes.ravel()])
        return float(values.min()), float(values.max())

    def valid_beta(self) -> tuple[float, float]:
        """Open interval of β where every 1 + βσκ_i > 0 for the curvatures seen (eq. 3 defined)."""
        k_min, k_max = self.extreme()
        lo = -1.0 / (self.sigma * k_max) if k_max > 0 else -math.inf
        hi = -1.0 / (self.sigma * k_min) if k_min < 0 else math.inf
        return lo, hi

    def log_det(self, beta: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
        """Σ_i log(1 + βκ̃_i) over the d − 1 tangent directions (SLQ mean, standard error);
        NaN where SORM breaks down (some 1 + βκ̃ ≤ 0)."""
        beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
        lo, hi = self.valid_beta()
        mean = np.full(beta.shape, np.nan)
        se = np.full(beta.shape, np.nan)
        for i, b in enumerate(beta):
            if lo < b < hi:
                mean[i], se[i] = self.trace_f(lambda k, b=b: np.log1p(b * self.sigma * k))
        return mean, se


# ----------------------------------------------------------------------------- Lanczos


def lanczos(matvec: Matvec, v0: np.ndarray, steps: int,
            deflate: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric Lanczos with full reorthogonalisation.

    Returns (alpha [k], beta [k−1], [β_k]): the tridiagonal T_k (diagonal alpha, off-diagonal
    beta) and the last residual norm (for Ritz residual bounds); k ≤ steps, fewer when an
    invariant subspace is found. `deflate` is a unit vector kept out of the Krylov basis
    (the normal n, whose eigenvalue 0 is not a curvature).
    """
    q = v0 / np.linalg.norm(v0)
    basis = [q]
    extra = [] if deflate is None else [deflate]
    alpha, beta = [], []
    for j in range(steps):
        w = matvec(basis[-1])
        a = float(basis[-1] @ w)
        w = w - a * basis[-1] - (beta[-1] * basis[-2] if beta else 0.0)
        for _ in range(2):  # full reorthogonalisation (twice is enough)
            for b_vec in basis + extra:
                w -= (b_vec @ w) * b_vec
        alpha.append(a)
        norm = float(np.linalg.norm(w))
        beta.append(norm)
        scale = max(abs(x) for x in alpha + beta)
        if norm <= 1e-9 * scale or j == steps - 1:
            break
        basis.append(w / norm)
    return np.array(alpha), np.array(beta[:-1]), np.array(beta[-1:])


def _tridiag_eig(alpha: np.ndarray, beta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from scipy.linalg import eigh_tridiagonal

    if len(alpha) == 1:
        return alpha.copy(), np.ones((1, 1))
    return eigh_tridiagonal(alpha, beta)


# ------------------------------------------------------------------------ shape operator


def shape_operator(model: Classifier, point: BoundaryPoint, h: float) -> tuple[Matvec, float, np.ndarray]:
    """Matvec of S = P H_h P / ‖∇m‖ at x_a on flat float64 vectors, ‖∇m‖ and the unit
    normal n = ∇m/‖∇m‖ (pointing into class y). Each call costs two margin gradients."""
    other = point.label_adv
    _, grad = margin_grad(model, point.x_a[None], point.y, other)
    grad = grad[0].double().flatten().cpu().numpy()
    grad_norm = float(np.linalg.norm(grad))
    n = grad / grad_norm
    x_a = point.x_a
    shape = tuple(x_a.shape)

    def matvec(v: np.ndarray) -> np.ndarray:
        v = v - (n @ v) * n
        norm = float(np.linalg.norm(v))
        if norm == 0:
            return np.zeros_like(v)
        step = torch.from_numpy(v / norm).float().view(shape).to(x_a.device)
        pair = torch.stack([x_a + h * step, x_a - h * step])
        _, grads = margin_grad(model, pair, point.y, other)
        hv = (grads[0] - grads[1]).double().flatten().cpu().numpy() * (norm / (2 * h))
        hv = hv - (n @ hv) * n
        return hv / grad_norm

    return matvec, grad_norm, n


def estimate_curvature(model: Classifier, point: BoundaryPoint, config: CurvatureConfig,
                       progress: Progress | None = None) -> CurvatureResult:
    """Top of the curvature spectrum (Lanczos) and SLQ nodes for Σ log(1 + βκ̃_i) at x_a."""
    progress = progress or NullProgress()
    h = config.h_ratio * config.sigma
    operator, _, n = shape_operator(model, point, h)
    calls = [0]
    total = config.hvps

    def matvec(v: np.ndarray) -> np.ndarray:
        progress.check_cancel()
        calls[0] += 1
        progress.report(calls[0], total, "curvature: Hessian-vector products")
        return operator(v)

    rng = np.random.default_rng(config.seed)
    d = n.size
    start = rng.standard_normal(d)
    start -= (n @ start) * n
    alpha, beta, last = lanczos(matvec, start, config.lanczos_steps, n)
    theta, vectors = _tridiag_eig(alpha, beta)
    error = np.abs(last[0] * vectors[-1, :])
    order = np.argsort(-theta)
    nodes, weights, scale = [], [], []
    for _ in range(config.probes):
        z = rng.choice([-1.0, 1.0], size=d)
        z -= (n @ z) * n
        a, b, _ = lanczos(matvec, z, config.slq_steps, n)
        t, vec = _tridiag_eig(a, b)
        k = config.slq_steps
        pad = k - len(t)  # early stop: pad with zero-weight nodes
        nodes.append(np.pad(t, (0, pad)))
        weights.append(np.pad(vec[0, :] ** 2, (0, pad)))
        scale.append(float(z @ z))
    return CurvatureResult(sigma=config.sigma, h=h, dim=d, ritz=theta[order],
                           ritz_error=error[order], nodes=np.array(nodes),
                           weights=np.array(weights), scale=np.array(scale),
                           hvps=calls[0], forward_passes=2 * calls[0] + 1)


# ----------------------------------------------------------------------- SORM formulas


def sorm_prob_adversarial(curvature: CurvatureResult, beta: np.ndarray | float,
                          variant: Variant = "eq3") -> np.ndarray:
    """1 − π0 = P[f(x + σN) ≠ y] predicted at signed standardised distance β from ∂f
    (β > 0 on x_o's side); NaN where the variant is undefined (eq. 3: some 1 + βκ̃ ≤ 0)."""
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    sigma = curvature.sigma
    if variant == "quadratic":
        s1 = sigma * curvature.trace_f(lambda k: k)[0]
        s2 = sigma ** 2 * curvature.trace_f(lambda k: k ** 2)[0]
        return stats.norm.cdf(-(beta + 0.5 * s1) / math.sqrt(1 + 0.5 * max(s2, 0.0)))
    if variant == "eq3":
        log_sum = curvature.log_det(beta)[0]
    elif variant == "first_order":
        log_sum = beta * sigma * curvature.trace_f(lambda k: k)[0]
    else:
        raise ConfigError(f"Unknown SORM variant {variant!r}; choose from {', '.join(VARIANTS)}.")
    return sorm_from_log_sum(beta, log_sum)


def sorm_from_log_sum(beta: np.ndarray, log_sum: np.ndarray) -> np.ndarray:
    """Eq. (3) given Σ log(1 + βκ̃_i): Φ(−β) e^{−½Σ} for β ≥ 0, 1 − Φ(β) e^{−½Σ} past ∂f."""
    with np.errstate(over="ignore", invalid="ignore"):
        factor = np.exp(-0.5 * log_sum)
        before = stats.norm.cdf(-beta) * factor
        after = 1 - stats.norm.cdf(beta) * factor
    return np.where(beta >= 0, before, after)


def sorm_from_curvatures(beta: np.ndarray | float, kappa_tilde: np.ndarray,
                         variant: Variant = "eq3") -> np.ndarray:
    """SORM with an explicit list of standardised curvatures κ̃_i (analytic references)."""
    beta = np.atleast_1d(np.asarray(beta, dtype=np.float64))
    kappa_tilde = np.asarray(kappa_tilde, dtype=np.float64)
    if variant == "quadratic":
        s1, s2 = kappa_tilde.sum(), (kappa_tilde ** 2).sum()
        return stats.norm.cdf(-(beta + 0.5 * s1) / math.sqrt(1 + 0.5 * s2))
    if variant == "first_order":
        return sorm_from_log_sum(beta, beta * kappa_tilde.sum())
    arg = 1 + beta[:, None] * kappa_tilde[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        log_sum = np.where((arg > 0).all(1), np.log(np.where(arg > 0, arg, 1)).sum(1), np.nan)
    return sorm_from_log_sum(beta, log_sum)
