"""Adversarial-direction profile (paper Fig. 1, eq. 4–6) with SORM predictions (eq. 3).

From x_o, a white-box boundary point x_a ∈ ∂f gives the direction u = (x_a − x_o)/‖x_a − x_o‖.
Along x(t) = x_o + t·u one vote record (N noisy labels per point) gives p̂_y(t) with
Clopper–Pearson bands (ideal g_σ), P[g_{σ,n}(x) ≠ y] for every n ≤ N (exact binomial law from
p̂_y, and empirically from disjoint blocks of n votes), and the crossings: ∂f (t = ‖x_a − x_o‖),
∂g_σ (p̂_y = ½), and where each n reaches each level P_a, whose exact eq. (5) thresholds and
eq. (6) lower bounds are listed beside the measured distances.

The default window is drawn around ∂g_σ, found first (`rsviz.gsigma.find_gsigma`): from x_o
to past the distance where the smallest n reaches the highest P_a level, so every curve
visibly crosses its levels. When ∂g_σ lies beyond the search's cap, the window covers what was
searched and the result says so (smoothing pushed the boundary out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import stats

from rsviz.config import (GSigmaSearch, check_alpha, check_count, check_probability, check_sigma,
                          check_votes_within)
from rsviz.errors import ConfigError
from rsviz.gsigma import AT_XO, GSigmaCrossing, find_gsigma
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.smoothing import VoteRecord, lower_confidence_bound, make_generator, sample_votes
from rsviz.sorm import VARIANTS, CurvatureConfig, CurvatureResult, estimate_curvature, sorm_prob_adversarial
from rsviz.theory import extra_distance, prob_wrong_binomial, threshold_exact, threshold_random_tie
from rsviz.whitebox import BoundaryPoint, find_boundary_point, predict_labels

CHUNK = 4  # profile points per vote-sampling call (one progress report each)
WINDOWS = ("gsigma", "x_a")
ZONE_SIGMAS = 3.0  # the dense part of a far ∂g_σ window starts this far before the bracket
CLEAR_Y = 0.9  # p̂_y of a searched point clearly on y's side (`window_points`)


@dataclass(frozen=True)
class ProfileConfig:
    """Parameters of a profile.

    Attributes:
        sigma: noise level σ.
        n_values: sizes n of the practical classifiers g_{σ,n} shown (each ≤ n_samples).
        n_samples: N noisy votes per profile point.
        points: number of profile points.
        start, stop: profile range as distances from x_o (L2); stop None: the window of
            `window`.
        window: "gsigma" (default): past ∂g_σ, found first, by the distance the smallest n
            needs to reach the highest P_a; "x_a": ‖x_a − x_o‖ + beyond·σ.
        beyond: extent past x_a of the "x_a" window, in units of σ.
        gsigma: budget of the ∂g_σ search (window "gsigma").
        p_levels: levels P_a of eq. (4)–(5).
        alpha: Clopper–Pearson level (1 − α bands).
        seed: noise seed (votes, attack fallback, curvature probes).
        attack_iters, attack_tol: white-box attack budget (gradients) and bisection tolerance.
        curvature: measure curvature and draw SORM (costs 2 gradients per HVP).
        lanczos_steps, probes, slq_steps: curvature budget (see rsviz.sorm.CurvatureConfig).
        precision, batch_size: forward settings of the vote sampling.
    """

    sigma: float = 0.25
    n_values: tuple[int, ...] = (5, 10, 50)
    n_samples: int = 256
    points: int = 30
    start: float = 0.0
    stop: float | None = None
    window: str = "gsigma"
    beyond: float = 8.0
    gsigma: GSigmaSearch = GSigmaSearch()
    p_levels: tuple[float, ...] = (0.5, 0.8)
    alpha: float = 0.001
    seed: int = 0
    attack_iters: int = 20
    attack_tol: float = 1e-3
    curvature: bool = True
    lanczos_steps: int = 16
    probes: int = 4
    slq_steps: int = 6
    precision: str = "auto"
    batch_size: int | None = None

    def __post_init__(self) -> None:
        check_sigma(self.sigma)
        check_count("N (samples)", self.n_samples)
        check_count("profile points", self.points, 2)
        if not self.n_values:
            raise ConfigError("Give at least one n.")
        for n in self.n_values:
            check_votes_within(n, self.n_samples)
        for p_a in self.p_levels:
            check_probability("P_a", p_a)
        check_alpha(self.alpha)
        if self.start < 0 or (self.stop is not None and self.stop <= self.start):
            raise ConfigError(f"The profile range must satisfy 0 ≤ start < stop "
                              f"(got {self.start}, {self.stop}).")
        if not self.beyond > 0:
            raise ConfigError(f"'beyond' must be > 0 (got {self.beyond}).")
        if self.window not in WINDOWS:
            raise ConfigError(f"Unknown window {self.window!r}; use {' or '.join(WINDOWS)}.")
        check_count("attack iterations", self.attack_iters)
        if not self.attack_tol > 0:
            raise ConfigError(f"The attack tolerance must be > 0 (got {self.attack_tol}).")
        self.curvature_config()  # validates the curvature budget

    def curvature_config(self) -> CurvatureConfig:
        return CurvatureConfig(sigma=self.sigma, lanczos_steps=self.lanczos_steps,
                               probes=self.probes, slq_steps=self.slq_steps, seed=self.seed)

    def estimated_passes(self) -> int:
        """Forward passes, roughly: votes + white-box attack (at most attack_iters iterations,
        each counted as WHITEBOX_ITERATION_PASSES) + curvature (HVP_PASSES per Hessian-vector
        product) + the ∂g_σ search."""
        from rsviz.config import HVP_PASSES, WHITEBOX_ITERATION_PASSES

        curvature = HVP_PASSES * self.curvature_config().hvps if self.curvature else 0
        return (self.points * self.n_samples + self.attack_iters * WHITEBOX_ITERATION_PASSES
                + curvature + self.search_passes())

    def search_passes(self) -> int:
        """The ∂g_σ search's typical passes when the window needs it (0 otherwise)."""
        searched = self.stop is None and self.window == "gsigma"
        return self.gsigma.typical_passes() if searched else 0

    def window_stop(self, distance: float, crossing=None) -> float:
        """The end of the default window, given ‖x_a − x_o‖ and the ∂g_σ search's outcome: past
        the bracket by what the smallest n needs to reach the highest P_a on a flat boundary,
        or by half the fall the search saw before ½ when that is longer."""
        if crossing is None or crossing.status == AT_XO:
            return distance + self.beyond * self.sigma
        if not crossing.found:
            return max(crossing.low, distance * 1.1)
        pi0 = min(threshold_exact(n, p) for n in self.n_values for p in self.p_levels)
        reach = float(stats.norm.ppf(1 - max(pi0, 1e-6)))  # p_y falls to π0 (hyperplane)
        margin = self.sigma * (reach + 2.0)
        clear = last_clear(crossing)
        if clear is not None:  # a smeared fall (concave region) goes on as far past ½
            margin = max(margin, 0.5 * (crossing.low - clear))
        # from the bracket's far end: the search locates ∂g_σ only within [low, high]
        return max(crossing.high + margin, distance * 1.1)

    def window_points(self, distance: float, crossing=None) -> np.ndarray:
        """The profile's distances from x_o. When the default window is long compared with the
        few σ around the ∂g_σ found (usually: RS pushes ∂g_σ hundreds of σ past x_a on ImageNet
        photos; or x_a itself lies far from x_o), half the points go to
        [low − ZONE_SIGMAS·σ, stop], where p̂_y falls over a few σ, so that a fall narrower than
        the spacing of a uniform grid is still drawn; the other half cover x_o … that zone.
        The zone starts earlier when the search saw p̂_y still ≥ CLEAR_Y farther back."""
        stop = self.stop if self.stop is not None else self.window_stop(distance, crossing)
        zone = None
        if self.stop is None and crossing is not None and crossing.found:
            # a boundary pushed out by RS is often smeared: p̂_y leaves 1 long before ½, so the
            # zone starts no later than the search's last point still clearly on y's side
            zone = crossing.low - ZONE_SIGMAS * self.sigma
            clear = last_clear(crossing)
            if clear is not None:
                zone = min(zone, clear)
            zone = max(zone, self.start)
        if zone is None or (stop - zone) > 0.5 * (stop - self.start) or self.points < 4:
            return np.linspace(self.start, stop, self.points)
        near = self.points // 2
        return np.concatenate([np.linspace(self.start, zone, self.points - near, endpoint=False),
                               np.linspace(zone, stop, near)])


def last_clear(crossing: GSigmaCrossing) -> float | None:
    """The farthest point the ∂g_σ search tested before its bracket with p̂_y ≥ CLEAR_Y (clearly
    on y's side), None when none: low − that point is how far p̂_y takes to fall to ½ (a few σ
    on a flat boundary, much more in a concave region)."""
    clear = [t for t, k, m in crossing.tested if t < crossing.low and m and k >= CLEAR_Y * m]
    return max(clear, default=None)


@dataclass(frozen=True)
class Crossing:
    """Where a curve crosses a level along the profile (None when it does not)."""

    label: str
    level: float
    t: float | None  # distance from x_o
    beyond: float | None  # t − ‖x_a − x_o‖ (negative: before x_a)
    bound: float | None = None  # eq. (6) lower bound on t, where it applies


@dataclass(frozen=True, eq=False)
class ProfileResult:
    """Everything the profile figure, the CLI and the exports show.

    Attributes:
        t: [m] distances from x_o; beyond: [m] t − distance (distance beyond x_a).
        p_y, ci_low, ci_high: [m] p̂_y = π̂0 and its two-sided (1 − α) Clopper–Pearson band.
        f_labels: [m] base-classifier labels along the profile (no noise).
        prob_binomial, prob_empirical: {n: [m]} P[g_{σ,n} ≠ y], exact law from p̂_y / block draws.
        thresholds: {(n, P_a): π0*} exact eq. (5) (strict majority); thresholds_tie with the
            random tie-break the binomial curves use (equal for odd n).
        crossings: ∂f, ∂g_σ and each (n, P_a).
        sorm: {variant: [m] predicted 1 − π0} (NaN where undefined); sorm_valid: β interval.
    """

    config: ProfileConfig
    y: int
    label_adv: int
    distance: float
    attack: dict
    t: np.ndarray
    p_y: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    f_labels: np.ndarray
    prob_binomial: dict[int, np.ndarray]
    prob_empirical: dict[int, np.ndarray]
    thresholds: dict[tuple[int, float], float]
    thresholds_tie: dict[tuple[int, float], float]
    radius: float
    crossings: list[Crossing]
    curvature: CurvatureResult | None
    sorm: dict[str, np.ndarray] = field(default_factory=dict)
    sorm_valid: tuple[float, float] = (-math.inf, math.inf)
    forward_passes: int = 0
    gsigma: GSigmaCrossing | None = None  # the ∂g_σ search of the default window

    @property
    def beyond(self) -> np.ndarray:
        return self.t - self.distance

    @property
    def zone(self) -> int | None:
        """Index of the first point of the dense part of a window whose fall of p̂_y is a narrow
        part of it (`ProfileConfig.window_points`), None when the points are evenly spaced."""
        first = 1 if self.config.start > 0 else 0  # x_o, put in front of a later window
        gaps = np.diff(self.t)[first:]
        if len(gaps) <= 2:
            return None
        big = np.flatnonzero(gaps > 5 * gaps.min()) + first
        return int(big[-1]) + 1 if len(big) and big[-1] + 1 < len(self.t) - 1 else None

    @property
    def beta(self) -> np.ndarray:
        """Signed standardised distance to ∂f, (‖x_a − x_o‖ − t)/σ (> 0 on x_o's side)."""
        return (self.distance - self.t) / self.config.sigma

    def table(self) -> dict[str, np.ndarray]:
        """Column name -> [m] values (the CSV export)."""
        columns = {"t_from_xo": self.t, "beyond_xa": self.beyond, "beta": self.beta,
                   "p_y": self.p_y, "p_y_ci_low": self.ci_low, "p_y_ci_high": self.ci_high,
                   "f_label": self.f_labels}
        for n in self.config.n_values:
            columns[f"p_adv_n{n}_binomial"] = self.prob_binomial[n]
            columns[f"p_adv_n{n}_empirical"] = self.prob_empirical[n]
        for variant, values in self.sorm.items():
            columns[f"sorm_{variant}_p_adv"] = values
        return columns


def first_crossing(t: np.ndarray, values: np.ndarray, level: float) -> float | None:
    """First t where `values` reaches `level` going up, linearly interpolated (None if never)."""
    above = np.flatnonzero(values >= level)
    if len(above) == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(t[0])
    v0, v1 = values[i - 1], values[i]
    return float(t[i - 1] + (level - v0) / (v1 - v0) * (t[i] - t[i - 1]))


def profile_points(x_o: torch.Tensor, direction: torch.Tensor, t: np.ndarray) -> torch.Tensor:
    """[m,3,H,W] points x_o + t·u (no clipping: noise is not clipped either)."""
    ts = torch.as_tensor(t, dtype=torch.float32, device=x_o.device).view(-1, 1, 1, 1)
    return x_o[None] + ts * direction[None]


def compute_profile(model: Classifier, x_o: torch.Tensor, config: ProfileConfig,
                    point: BoundaryPoint | None = None,
                    progress: Progress | None = None) -> ProfileResult:
    """Attack (unless `point` is given), sample votes along the profile, measure curvature.

    Progress stages: white-box attack, votes (partial results after each chunk), curvature.
    """
    progress = progress or NullProgress()
    device = model.device
    x_o = x_o.to(device=device, dtype=torch.float32)
    if point is None:
        generator = make_generator(config.seed, "cpu")
        point = find_boundary_point(model, x_o, max_iter=config.attack_iters,
                                    tol=config.attack_tol, generator=generator, progress=progress)
    y, distance = point.y, point.distance
    direction = point.direction.to(device)
    search = None
    if config.search_passes():
        progress.report(0, None, "∂g_σ along x_a − x_o")
        search = find_gsigma(model, x_o, direction, y, config.sigma, config.gsigma,
                             start=distance, seed=config.seed, progress=progress,
                             precision=config.precision)
    t = config.window_points(distance, search)
    if t[0] > 0:  # x_o itself is needed for R(x_o, σ) in eq. (6)
        t = np.concatenate([[0.0], t])
    points = profile_points(x_o, direction, t)
    f_labels = predict_labels(model, points).cpu().numpy()
    generator = make_generator(config.seed, device)
    labels = []
    total = len(t) * config.n_samples
    for start in range(0, len(t), CHUNK):
        progress.check_cancel()
        record = sample_votes(model, points[start:start + CHUNK], config.sigma, config.n_samples,
                              generator, config.batch_size, config.precision)
        labels.append(record.labels)
        done = min(start + CHUNK, len(t))
        p_part = (np.concatenate(labels) == y).mean(1)
        progress.report(done * config.n_samples, total, f"votes: {done}/{len(t)} points",
                        partial={"t": t[:done], "p_y": p_part, "distance": distance})
    record = VoteRecord(np.concatenate(labels), model.info.num_classes, config.sigma)
    p_y = record.p_hat(y)
    ci_low, ci_high = record.interval(y, config.alpha)
    rng = np.random.default_rng(config.seed)
    prob_binomial = {n: prob_wrong_binomial(p_y, n) for n in config.n_values}
    prob_empirical = {n: record.prob_g_wrong(y, n, "empirical", rng) for n in config.n_values}
    thresholds = {(n, p): threshold_exact(n, p) for n in config.n_values for p in config.p_levels}
    thresholds_tie = {(n, p): threshold_random_tie(n, p)
                      for n in config.n_values for p in config.p_levels}
    p_lower = lower_confidence_bound(int(record.counts[0, y]), config.n_samples, config.alpha)
    radius = float(config.sigma * stats.norm.ppf(p_lower)) if p_lower > 0.5 else 0.0
    crossings = [Crossing("∂f (white-box x_a)", 0.5, distance, 0.0)]
    g_cross = first_crossing(t, 1 - p_y, 0.5)
    crossings.append(Crossing("∂g_σ (p̂_y = ½)", 0.5, g_cross,
                              None if g_cross is None else g_cross - distance, radius))
    if search is not None and search.found:
        crossings.append(Crossing("∂g_σ (sequential search)", 0.5, search.t,
                                  search.t - distance, radius))
    for n in config.n_values:
        for p_a in config.p_levels:
            where = first_crossing(t, prob_binomial[n], p_a)
            bound = radius + extra_distance(config.sigma, thresholds[(n, p_a)])
            crossings.append(Crossing(f"n = {n}, P_a = {p_a:g}", p_a, where,
                                      None if where is None else where - distance, bound))
    curvature = None
    sorm: dict[str, np.ndarray] = {}
    valid = (-math.inf, math.inf)
    if config.curvature:
        curvature = estimate_curvature(model, point, config.curvature_config(), progress)
        beta = (distance - t) / config.sigma
        sorm = {v: sorm_prob_adversarial(curvature, beta, v) for v in VARIANTS}  # type: ignore[arg-type]
        valid = curvature.valid_beta()
    passes = point.forward_passes + len(t) * config.n_samples + len(t)
    passes += curvature.forward_passes if curvature else 0
    passes += search.forward_passes if search else 0
    attack = {"iterations": point.iterations, "bracket": point.bracket,
              "cos_angle": point.cos_angle, "grad_norm": point.grad_norm,
              "forward_passes": point.forward_passes}
    return ProfileResult(config=config, y=y, label_adv=point.label_adv, distance=distance,
                         attack=attack, t=t, p_y=p_y, ci_low=ci_low, ci_high=ci_high,
                         f_labels=f_labels, prob_binomial=prob_binomial,
                         prob_empirical=prob_empirical, thresholds=thresholds,
                         thresholds_tie=thresholds_tie, radius=radius, crossings=crossings,
                         curvature=curvature, sorm=sorm, sorm_valid=valid,
                         forward_passes=passes, gsigma=search)


def summary(result: ProfileResult) -> dict:
    """JSON-ready summary: crossings, thresholds, eq. (6) bounds, curvature numbers."""
    out: dict = {
        "y": result.y, "label_adv": result.label_adv, "distance_xa": result.distance,
        "attack": result.attack, "radius_xo": result.radius,
        "forward_passes": result.forward_passes,
        "crossings": [{"label": c.label, "level": c.level, "from_xo": c.t, "beyond_xa": c.beyond,
                       "eq6_bound_from_xo": c.bound} for c in result.crossings],
        "thresholds": [{"n": n, "p_a": p, "pi0_exact_eq5": v,
                        "pi0_random_tie": result.thresholds_tie[(n, p)],
                        "eq6_extra_distance": extra_distance(result.config.sigma, v)}
                       for (n, p), v in result.thresholds.items()],
    }
    if result.gsigma is not None:
        g = result.gsigma
        out["gsigma_search"] = {"status": g.status, "from_xo": g.t, "low": g.low, "high": g.high,
                                "forward_passes": g.forward_passes, "text": g.describe()}
    curvature = result.curvature
    if curvature is not None:
        trace, trace_se = curvature.trace_f(lambda k: k)
        lo, hi = result.sorm_valid
        out["curvature"] = {
            "sigma": curvature.sigma, "h": curvature.h, "dim": curvature.dim,
            "top_ritz": curvature.ritz[:5].tolist(), "bottom_ritz": curvature.ritz[-5:].tolist(),
            "sum_kappa": trace, "sum_kappa_se": trace_se,
            "mean_kappa": curvature.mean_curvature, "hvps": curvature.hvps,
            "eq3_valid_beta": [lo, hi],
            "eq3_valid_beyond_xa": [-hi * curvature.sigma, -lo * curvature.sigma],
        }
        for variant, values in result.sorm.items():
            where = first_crossing(result.t, np.nan_to_num(values, nan=-1.0), 0.5)
            out["curvature"][f"sorm_{variant}_gsigma_beyond_xa"] = (
                None if where is None else where - result.distance)
    return out
