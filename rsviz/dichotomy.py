"""Dichotomy (binary search) on a segment against the random classifier g_{σ,n} (paper Fig. 3).

A decision-based attack locates the boundary on [A, B] (A classified y, B adversarial) by
bisection: k times, query the midpoint; an adversarial answer moves B there, else A. Against
f the output is one point; against g_{σ,n} each answer is a fresh random vote, so the output is
a random variable that spreads around the ideal boundary ∂g_σ as n shrinks.

Two ways to draw it (docs/dichotomy.md, "How it is computed"):
- live: every query of every trial is a fresh lazy exact vote of g_{σ,n} on the model
  (`rsviz.smoothing.lazy_votes`), counting forward passes;
- simulated: measure the class frequencies p̂(t) along the segment once (`sample_votes` on a
  grid of t with N samples) and simulate every query from them. Because g_{σ,n}(x) depends on x
  only through p(x), this is exact up to the error of p̂ and of its linear interpolation in t.
  Thousands of trials for several n cost the one segment pass.

Positions are fractions t ∈ [0, 1] of the segment x_t = A + t (B − A); `DichotomyResult`
converts them to L2 distances from A in pixel space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Literal

import numpy as np
import torch

from rsviz.config import check_count, check_sigma
from rsviz.errors import ConfigError, RsvizError
from rsviz.jobs import NullProgress, Progress, SubProgress
from rsviz.models import Classifier
from rsviz.smoothing import forward_labels, lazy_votes, make_generator, sample_votes
from rsviz.theory import prob_wrong_binomial

Method = Literal["multinomial", "binomial"]
Output = Literal["adversarial", "midpoint"]
Fit = Literal["probit", "none"]
FINE_STEPS = 40  # bisection steps used to locate ∂f and ∂g_σ (2^-40 of the segment)


@dataclass(frozen=True)
class DichotomyConfig:
    """A dichotomy experiment on one segment.

    Attributes:
        sigma: noise level of g_{σ,n}.
        n_values: vote counts n of g_{σ,n} to compare (each ≥ 1).
        trials: independent dichotomies per n.
        steps: bisection steps k (resolution ‖B − A‖ / 2^k); ignored when `tolerance` is set.
        tolerance: stop resolution in L2 pixel units: k = ⌈log2(‖B − A‖ / tolerance)⌉.
        grid: points of t on [0, 1] where p̂ is measured for the simulation.
        n_samples: N, noisy samples per grid point.
        method: how the simulation answers a query at t: "multinomial" draws n votes from the
            interpolated class frequencies (exact g_{σ,n} for any number of classes);
            "binomial" answers adversarial with P[Bin(n, 1 − p̂_y) > n/2] (+ ½ tie), exact
            only for two classes (top-vs-rest otherwise).
        fit: "probit" smooths p̂_y(t) by a binomial maximum-likelihood fit of Φ⁻¹(p_y(t)) as a
            polynomial in t (exact for a half-space at degree 1; other classes keep their
            measured shares of 1 − p_y). The sampling error of p̂ is amplified about √n times
            in P[g_{σ,n} ≠ y], so the fit matters when n is not ≪ N. "none" interpolates the
            raw frequencies.
        fit_degree: degree of the probit polynomial.
        output: which point a dichotomy returns: the adversarial end (what attacks keep) or
            the midpoint of the last interval.
        live: also run every trial live against the model (costly: up to trials·k·n passes).
        seed: seed of the segment pass, the live noise and the simulation.
        batch_size: forward batch size (None: chosen from the device).
        precision: forward precision ("auto", "fp32", "bf16", "fp16").
    """

    sigma: float = 0.25
    n_values: tuple[int, ...] = (10, 50, 100)
    trials: int = 1000
    steps: int = 12
    tolerance: float | None = None
    grid: int = 64
    n_samples: int = 128
    method: Method = "multinomial"
    fit: Fit = "probit"
    fit_degree: int = 3
    output: Output = "adversarial"
    live: bool = False
    seed: int = 0
    batch_size: int | None = None
    precision: str = "auto"

    def __post_init__(self) -> None:
        check_sigma(self.sigma)
        if not self.n_values:
            raise ConfigError("Give at least one value of n.")
        for n in self.n_values:
            check_count("n", n)
        check_count("trials", self.trials)
        check_count("steps", self.steps)
        if self.steps > 30:
            raise ConfigError(f"steps must be ≤ 30 (got {self.steps}); 2^-30 is below float noise.")
        if self.tolerance is not None and not (isinstance(self.tolerance, (int, float))
                                               and self.tolerance > 0):
            raise ConfigError(f"tolerance must be a positive L2 distance (got {self.tolerance!r}).")
        check_count("grid points", self.grid, minimum=2)
        check_count("N (samples per grid point)", self.n_samples)
        if self.method not in ("multinomial", "binomial"):
            raise ConfigError(f"Unknown simulation method {self.method!r}.")
        if self.fit not in ("probit", "none"):
            raise ConfigError(f"Unknown fit {self.fit!r}.")
        check_count("fit degree", self.fit_degree)
        if self.output not in ("adversarial", "midpoint"):
            raise ConfigError(f"Unknown output {self.output!r}.")
        if self.batch_size is not None:
            check_count("batch size", self.batch_size)

    def steps_for(self, length: float) -> int:
        """Bisection steps k for a segment of L2 length `length`."""
        if self.tolerance is None:
            return self.steps
        return int(min(30, max(1, math.ceil(math.log2(max(length / self.tolerance, 1.0))))))


# ------------------------------------------------------------------ bisection, pure functions


def bisect(answer: Callable[[np.ndarray], np.ndarray], trials: int, steps: int,
           output: Output = "adversarial", progress: Progress | None = None) -> np.ndarray:
    """Run `trials` dichotomies of `steps` steps in parallel on [0, 1].

    Args:
        answer: maps the [T] current midpoints t to [T] booleans, True = adversarial.
        trials: T.
        steps: k.
        output: "adversarial" returns the final adversarial end, "midpoint" the last interval's
            centre.

    Returns:
        [T] output positions t.
    """
    lo, hi = np.zeros(trials), np.ones(trials)
    for step in range(steps):
        mid = (lo + hi) / 2
        adversarial = np.asarray(answer(mid), dtype=bool)
        hi = np.where(adversarial, mid, hi)
        lo = np.where(adversarial, lo, mid)
        if progress is not None:
            progress.report(step + 1, steps)
    return hi if output == "adversarial" else (lo + hi) / 2


def exact_output_distribution(q: Callable[[np.ndarray], np.ndarray], steps: int,
                              output: Output = "adversarial") -> tuple[np.ndarray, np.ndarray]:
    """Exact law of a k-step dichotomy whose query at t is adversarial with probability q(t).

    Dynamic programming over the 2^k leaves: the mass of an interval splits at its midpoint
    m into q(m) (left half kept) and 1 − q(m) (right half kept).

    Returns:
        (positions [2^k], probabilities [2^k]) of the output.
    """
    mass = np.ones(1)
    for depth in range(steps):
        width = 2.0 ** -depth
        mids = (np.arange(len(mass)) + 0.5) * width
        qm = np.clip(np.asarray(q(mids), dtype=np.float64), 0.0, 1.0)
        split = np.empty(2 * len(mass))
        split[0::2], split[1::2] = mass * qm, mass * (1 - qm)
        mass = split
    leaves = np.arange(len(mass))
    width = 2.0 ** -steps
    positions = (leaves + 1) * width if output == "adversarial" else (leaves + 0.5) * width
    return positions, mass


def crossing(adversarial: Callable[[np.ndarray], np.ndarray], steps: int = FINE_STEPS) -> float:
    """Where a deterministic decision along [0, 1] switches, located by bisection."""
    return float(bisect(adversarial, 1, steps, output="midpoint")[0])


# ------------------------------------------------------------------ measured segment


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
        freq = _with_p_y(raw, iy, p_y)
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


def _with_p_y(raw: np.ndarray, iy: int, p_y: np.ndarray) -> np.ndarray:
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


# ------------------------------------------------------------------ answers of g_{σ,n}


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


# ------------------------------------------------------------------ experiment


@dataclass
class DichotomyRun:
    """Outputs of many dichotomies against one classifier.

    Attributes:
        n: votes of g_{σ,n}; None for the base classifier f.
        mode: "simulated", "live" or "base".
        positions: [T] output positions t in [0, 1].
        forward_passes: base-model forward passes spent by the trials themselves (the
            simulation's are 0: it reuses the segment pass).
        exact_t, exact_p: exact output law given p̂ (simulated runs only).
    """

    n: int | None
    mode: str
    positions: np.ndarray
    forward_passes: int
    exact_t: np.ndarray | None = None
    exact_p: np.ndarray | None = None


@dataclass
class DichotomyResult:
    """A dichotomy experiment on the segment [A, B] (distances are L2 in pixel space)."""

    config: DichotomyConfig
    y: int
    length: float
    steps: int
    profile: SegmentProfile
    t_f: float  # ∂f: where f leaves y along the segment
    t_g: float  # ∂g_σ: where the measured ideal g_σ (argmax p̂) leaves y
    base: DichotomyRun
    simulated: dict[int, DichotomyRun]
    live: dict[int, DichotomyRun] = field(default_factory=dict)
    warning: str | None = None
    t_g_std: float = 0.0  # sampling sd of ∂g_σ's position (parametric bootstrap of p̂)

    def stats(self, run: DichotomyRun) -> dict:
        """Mean, std, bias w.r.t. ∂g_σ and wrong-side fraction of a run's outputs (L2)."""
        d = run.positions * self.length
        d_g = self.t_g * self.length
        return {"n": run.n, "mode": run.mode, "trials": len(d),
                "mean": float(d.mean()), "std": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                "bias": float(d.mean() - d_g), "mean_abs_error": float(np.abs(d - d_g).mean()),
                "wrong_side": float((run.positions < self.t_g).mean()),
                "forward_passes": int(run.forward_passes)}

    def summary(self) -> dict:
        """JSON-ready summary: segment, boundaries, and per-n statistics."""
        per_n = {}
        for n, run in self.simulated.items():
            entry = {"simulated": self.stats(run)}
            if n in self.live:
                entry["live"] = self.stats(self.live[n])
            per_n[str(n)] = entry
        return {"y": self.y, "length": self.length, "steps": self.steps,
                "resolution": self.length / 2 ** self.steps,
                "boundary_f": self.t_f * self.length, "boundary_g_sigma": self.t_g * self.length,
                "boundary_g_sigma_std": self.t_g_std * self.length,
                "segment_forward_passes": self.profile.forward_passes,
                "base_output": float(self.base.positions[0] * self.length),
                "per_n": per_n, "warning": self.warning}


def run_live(model: Classifier, a: torch.Tensor, b: torch.Tensor, y: int, n: int,
             config: DichotomyConfig, steps: int, progress: Progress | None = None,
             stage: tuple[int, int] = (0, 1)) -> DichotomyRun:
    """`config.trials` live dichotomies against g_{σ,n}, in chunks that fit in memory."""
    progress = progress or NullProgress()
    a, b = a.to(model.device), b.to(model.device)
    generator = make_generator(config.seed * 1_000_003 + n, model.device)
    counter = [0]
    answer = live_answer(model, a, b, y, config.sigma, n, generator, counter, config)
    chunk = max(1, min(config.trials, 2 ** 26 // a.numel()))
    out = []
    for start in range(0, config.trials, chunk):
        size = min(chunk, config.trials - start)

        def checked(t: np.ndarray) -> np.ndarray:
            progress.check_cancel()
            return answer(t)

        out.append(bisect(checked, size, steps, config.output))
        done = stage[0] + (start + size) / config.trials
        progress.report(done, stage[1], f"live g_σ,{n}: {start + size}/{config.trials} trials, "
                                        f"{counter[0]:,} forward passes")
    return DichotomyRun(n, "live", np.concatenate(out), counter[0])


def run_dichotomy(model: Classifier, a: torch.Tensor, b: torch.Tensor, y: int,
                  config: DichotomyConfig, progress: Progress | None = None) -> DichotomyResult:
    """Dichotomies on [A, B] against f and g_{σ,n} for every n of the config.

    One segment pass (`grid` × `n_samples` forward passes) feeds the exact simulation of all
    trials for every n; with `config.live` every trial is also run against the model.

    Args:
        model: base classifier f.
        a: [3, H, W] start, classified y (e.g. x_o).
        b: [3, H, W] end, adversarial (e.g. a point past the white-box boundary point x_a).
        y: the original class.
        config: the experiment.
        progress: receives the segment pass, then the live trials.
    """
    progress = progress or NullProgress()
    device = model.device
    a, b = a.to(device, torch.float32), b.to(device, torch.float32)
    length = float((b - a).norm())
    if length == 0:
        raise ConfigError("The segment is empty: A and B are the same image.")
    steps = config.steps_for(length)
    stages = 1 + (len(config.n_values) if config.live else 0)

    segment_pass = SubProgress(progress, 0.0, 1.0, stages, lambda m: f"segment pass: {m}")
    profile = measure_segment(model, a, b, y, config, segment_pass)
    counter = [0]
    f_answer = base_answer(model, a, b, y, counter, config.precision)
    base = DichotomyRun(None, "base", bisect(f_answer, 1, steps, config.output), counter[0])
    t_f = crossing(f_answer)
    t_g = crossing(lambda t: profile.margin(t) < 0)
    simulated = {}
    for n in config.n_values:
        rng = np.random.default_rng([config.seed, n])
        positions = bisect(simulated_answer(profile, n, config.method, rng), config.trials, steps,
                           config.output)
        exact_t, exact_p = exact_output_distribution(
            prob_wrong_at(profile, n, config.method, seed=config.seed), steps, config.output)
        simulated[n] = DichotomyRun(n, "simulated", positions, 0, exact_t, exact_p)
    live = {}
    if config.live:
        for i, n in enumerate(config.n_values):
            live[n] = run_live(model, a, b, y, n, config, steps, progress, (1 + i, stages))
    progress.report(stages, stages, "done")
    return DichotomyResult(config, int(y), length, steps, profile, t_f, t_g, base, simulated,
                           live, _segment_warning(profile, y, model, a, b),
                           crossing_std(profile, config))


def crossing_std(profile: SegmentProfile, config: DichotomyConfig, reps: int = 40) -> float:
    """Sampling sd of the ∂g_σ position: redraw the votes k ~ Bin(N, p_y(t)) at every grid
    point, redo the fit, relocate the crossing. Every simulated histogram shares this error
    (they all read the same p̂), so it bounds how far they may sit from live trials."""
    rng = np.random.default_rng([config.seed, 7])
    raw = profile.raw_freq if profile.raw_freq is not None else profile.freq
    p_y, found = profile.freq[:, profile.iy], []
    for _ in range(reps):
        k = rng.binomial(profile.n_samples, np.clip(p_y, 0.0, 1.0))
        p_star = (fit_probit(profile.t, k, profile.n_samples, config.fit_degree)
                  if config.fit == "probit" else k / profile.n_samples)
        star = SegmentProfile(profile.t, _with_p_y(raw, profile.iy, p_star), profile.classes,
                              profile.y, profile.n_samples, 0)
        found.append(crossing(lambda t: star.margin(t) < 0, steps=24))
    return float(np.std(found, ddof=1))


def _segment_warning(profile: SegmentProfile, y: int, model: Classifier, a: torch.Tensor,
                     b: torch.Tensor) -> str | None:
    ends = forward_labels(model, torch.stack([a, b]))
    m = profile.margin(np.array([0.0, 1.0]))
    problems = []
    if ends[0] != y:
        problems.append(f"f does not classify A as class {y}")
    if ends[1] == y:
        problems.append("f still classifies B as the original class")
    if m[0] <= 0:
        problems.append("p̂ at A does not favour the original class (A is not y for g_σ)")
    if m[1] > 0:
        problems.append("p̂ at B still favours the original class: ∂g_σ lies past B; extend "
                        "the segment")
    if not problems:
        return None
    text = "; ".join(problems)
    return text[0].upper() + text[1:] + "."


# ------------------------------------------------------------------ choosing the segment


@dataclass(frozen=True)
class Segment:
    """The segment [A, B] of a dichotomy and how it was chosen (`caption` says it in words)."""

    a: torch.Tensor
    b: torch.Tensor
    y: int
    kind: str
    caption: str


def whitebox_available() -> bool:
    """True when the white-box boundary module `rsviz.whitebox` is installed."""
    import importlib.util

    return importlib.util.find_spec("rsviz.whitebox") is not None


def segment_past_whitebox(model: Classifier, x_o: torch.Tensor, y: int, sigma: float,
                          extension: float = 3.0, progress: Progress | None = None) -> Segment:
    """A = x_o, B = x_o + (‖x_a − x_o‖ + extension·σ) u past the white-box boundary point x_a of
    f (u the unit direction to x_a), clamped to [0, 1]^d."""
    from rsviz.whitebox import find_boundary_point

    x_o = x_o.to(model.device, torch.float32)
    point = find_boundary_point(model, x_o, y, progress=progress)
    x_a = point.x_a.to(x_o.device, torch.float32).reshape(x_o.shape)
    dist = float((x_a - x_o).norm())
    b = (x_o + (x_a - x_o) * (1 + extension * sigma / dist)).clamp(0, 1)
    return Segment(x_o, b, y, "whitebox", f"B lies {extension:g}σ past the white-box boundary "
                   f"point x_a of f (‖x_a − x_o‖ = {dist:.3f}), clamped to [0, 1]^d.")


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
