"""A dichotomy experiment: f, the simulated g_{σ,n} for every n, and optionally live trials."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rsviz.dichotomy.bisection import bisect, crossing, exact_output_distribution
from rsviz.dichotomy.config import DichotomyConfig
from rsviz.dichotomy.law import (SegmentProfile, base_answer, fit_probit, live_answer,
                                 measure_segment, prob_wrong_at, simulated_answer, with_p_y)
from rsviz.errors import ConfigError
from rsviz.progress import NullProgress, Progress, SubProgress
from rsviz.models import Classifier
from rsviz.smoothing import forward_labels, make_generator


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
        star = SegmentProfile(profile.t, with_p_y(raw, profile.iy, p_star), profile.classes,
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
