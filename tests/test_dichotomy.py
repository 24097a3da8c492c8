"""Dichotomy against g_{σ,n}: exact references (linear classifier), simulation vs live (KS),
the CLI and the page."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from scipy import stats

from rsviz.dichotomy import (DichotomyConfig, SegmentProfile, base_answer, bisect,
                             exact_output_distribution, prob_wrong_at, run_dichotomy,
                             segment_points, segment_towards, simulated_answer)
from rsviz.errors import ConfigError
from rsviz.models import Classifier, LinearClassifier, ModelInfo
from rsviz.smoothing import forward_labels, prob_wrong_binomial

SIGMA = 0.25
OFFSET = 0.2  # L2 distance from A to the linear boundary
LENGTH = 0.6  # ‖B − A‖
KS_ALPHA = 0.01  # level of every Kolmogorov–Smirnov test below


def small_linear(size: int = 4) -> Classifier:
    """A half-space on [0,1]^{3×size×size} (d = 48): exact p, nearly free forward passes."""
    d = 3 * size * size
    w = torch.randn(d, generator=torch.Generator().manual_seed(1))
    w = w / w.norm()
    b = -(float(w @ torch.full((d,), 0.5)) + OFFSET)
    info = ModelInfo(name="small_linear", model_id="small_linear", input_size=size, resize=size,
                     mean=(0.0,) * 3, std=(1.0,) * 3, class_names=("y", "other"),
                     source="test")
    return Classifier(LinearClassifier(w, b, logit_scale=10.0), info, normalize=False)


@pytest.fixture(scope="module")
def linear_segment():
    """A = grey (class 0, OFFSET from the boundary), B = A + LENGTH·w (class 1)."""
    model = small_linear()
    w = model.net.w.view(3, 4, 4)
    a = torch.full((3, 4, 4), 0.5)
    return model, a, a + LENGTH * w


def exact_law(model, a, b, n, steps):
    """Output law of the dichotomy computed from the exact p(t) = Φ((w·x_t + b)/σ)."""
    def q(t):
        p_y = model.net.exact_p(segment_points(a, b, t), SIGMA)[:, 0]
        return prob_wrong_binomial(p_y, n)
    return exact_output_distribution(q, steps)


def ks_distance(samples: np.ndarray, positions: np.ndarray, probs: np.ndarray) -> float:
    """Kolmogorov distance between an empirical sample and a discrete law on `positions`."""
    ecdf = np.searchsorted(np.sort(samples), positions, side="right") / len(samples)
    return float(np.abs(ecdf - np.cumsum(probs)).max())


def exact_profile(model, a, b, grid: int = 257) -> SegmentProfile:
    """A SegmentProfile holding the exact class probabilities (no sampling error)."""
    t = np.linspace(0, 1, grid)
    freq = model.net.exact_p(segment_points(a, b, t), SIGMA)
    return SegmentProfile(t=t, freq=freq, classes=np.array([0, 1]), y=0, n_samples=0,
                          forward_passes=0)


# ------------------------------------------------------------------ config and pure functions


@pytest.mark.parametrize("kwargs", [dict(sigma=0.0), dict(n_values=(0,)), dict(n_values=()),
                                    dict(steps=0), dict(trials=0), dict(tolerance=-1.0),
                                    dict(grid=1), dict(method="poisson")])
def test_config_rejects_bad_values(kwargs):
    with pytest.raises(ConfigError):
        DichotomyConfig(**kwargs)


def test_tolerance_sets_the_number_of_steps():
    config = DichotomyConfig(tolerance=0.01)
    assert config.steps_for(1.0) == 7  # 1 / 2^7 < 0.01 ≤ 1 / 2^6
    assert 1.0 / 2 ** config.steps_for(1.0) <= 0.01


def test_exact_law_of_trivial_answers():
    steps = 6
    pos, prob = exact_output_distribution(lambda t: np.full(len(t), 0.5), steps)
    np.testing.assert_allclose(prob, 1 / 2 ** steps)  # fair coins: uniform over the leaves
    pos, prob = exact_output_distribution(lambda t: (t > 0.3).astype(float), steps)
    assert prob.sum() == pytest.approx(1.0) and prob.max() == 1.0
    assert 0.3 < pos[prob.argmax()] <= 0.3 + 2 ** -steps  # a deterministic answer: one leaf


def test_probit_fit_recovers_a_probit_curve():
    """k ~ Bin(N, Φ(1.5 − 4t)) on 32 points: the fit is closer to the truth than raw p̂."""
    from rsviz.dichotomy import fit_probit

    t = np.linspace(0, 1, 32)
    p = stats.norm.cdf(1.5 - 4 * t)
    k = np.random.default_rng(0).binomial(256, p)
    fitted = fit_probit(t, k, 256, degree=3)
    assert np.abs(fitted - p).max() < 0.03
    assert np.abs(fitted - p).mean() < 0.5 * np.abs(k / 256 - p).mean()


# ------------------------------------------------------------------ deterministic classifier


def test_deterministic_classifier_gives_one_output_at_the_crossing(linear_segment):
    model, a, b = linear_segment
    steps = 10
    outputs = bisect(base_answer(model, a, b, 0, [0]), 5, steps)
    assert len(set(outputs.tolist())) == 1  # every trial agrees
    t_true = OFFSET / LENGTH
    assert t_true < outputs[0] <= t_true + 2 ** -steps  # adversarial end, within one leaf
    config = DichotomyConfig(sigma=SIGMA, n_values=(10,), trials=50, steps=steps, grid=8,
                             n_samples=64, precision="fp32")
    result = run_dichotomy(model, a, b, 0, config)
    assert result.t_f * LENGTH == pytest.approx(OFFSET, abs=1e-5)
    assert result.base.positions[0] * LENGTH == pytest.approx(OFFSET, abs=LENGTH / 2 ** steps)


# ------------------------------------------------------------------ simulation vs exact p(t)


@pytest.mark.parametrize("method", ["binomial", "multinomial"])
@pytest.mark.parametrize("n", [10, 50])
def test_simulation_from_exact_p_matches_exact_law(linear_segment, method, n):
    """Given the exact p(t), simulated trials follow the exact DP law (KS, α = 0.01)."""
    model, a, b = linear_segment
    steps, trials = 8, 4000
    profile = exact_profile(model, a, b)
    rng = np.random.default_rng(3)
    outputs = bisect(simulated_answer(profile, n, method, rng), trials, steps)
    pos, prob = exact_law(model, a, b, n, steps)
    critical = stats.kstwo.ppf(1 - KS_ALPHA, trials)  # conservative for a discrete law
    assert ks_distance(outputs, pos, prob) < critical
    # the engine's own exact law from this profile differs only by the interpolation in t
    _, prob_engine = exact_output_distribution(prob_wrong_at(profile, n, method), steps)
    assert np.abs(np.cumsum(prob_engine) - np.cumsum(prob)).max() < 2e-3


def test_measured_simulation_matches_exact_law(linear_segment):
    """End to end on the linear classifier: p̂ from one segment pass (17 × 16 384 votes), then
    4 000 simulated trials per n; moments match the law from the exact p(t). Tolerance: the
    p̂ error moves the crossing by about 0.004/p'(t) ≈ 0.004 in t, so ±0.01 L2 on the mean."""
    model, a, b = linear_segment
    steps = 8
    config = DichotomyConfig(sigma=SIGMA, n_values=(10, 50), trials=4000, steps=steps, grid=17,
                             n_samples=16384, precision="fp32", seed=2)
    result = run_dichotomy(model, a, b, 0, config)
    assert result.warning is None
    assert result.t_g * LENGTH == pytest.approx(OFFSET, abs=0.01)  # ∂g_σ = ∂f for a half-space
    for n in (10, 50):
        pos, prob = exact_law(model, a, b, n, steps)
        mean = (pos * prob).sum() * LENGTH
        std = np.sqrt((pos ** 2 * prob).sum() - (pos * prob).sum() ** 2) * LENGTH
        stats_n = result.stats(result.simulated[n])
        assert stats_n["mean"] == pytest.approx(mean, abs=0.01)
        assert stats_n["std"] == pytest.approx(std, rel=0.2)
        assert stats_n["forward_passes"] == 0
    spread = [result.stats(result.simulated[n])["std"] for n in (10, 50)]
    assert spread[0] > 1.5 * spread[1]  # the output concentrates as n grows (Fig. 3)


def test_boundary_uncertainty_matches_its_spread_over_seeds(linear_segment):
    """The bootstrap sd of ∂g_σ agrees (within a factor 2) with its sd over 8 segment passes."""
    model, a, b = linear_segment
    found, reported = [], []
    for seed in range(8):
        result = run_dichotomy(model, a, b, 0, DichotomyConfig(
            sigma=SIGMA, n_values=(10,), trials=10, steps=8, grid=64, n_samples=128,
            precision="fp32", seed=seed))
        found.append(result.t_g * LENGTH)
        reported.append(result.t_g_std * LENGTH)
    empirical = np.std(found, ddof=1)
    assert 0.5 * empirical < np.mean(reported) < 2 * empirical


# ------------------------------------------------------------------ simulation vs live queries


def test_simulation_matches_live_queries_linear(linear_segment):
    """Two-sample KS (α = 0.01) between 400 live trials and 4 000 simulated ones, n = 10; and
    a negative control: the live n = 10 outputs are told apart from simulated n = 100."""
    model, a, b = linear_segment
    config = DichotomyConfig(sigma=SIGMA, n_values=(10, 100), trials=400, steps=8, grid=17,
                             n_samples=16384, precision="fp32", seed=5)
    result = run_dichotomy(model, a, b, 0, config)
    live = run_dichotomy(model, a, b, 0, DichotomyConfig(
        sigma=SIGMA, n_values=(10,), trials=400, steps=8, grid=2, n_samples=1,
        precision="fp32", live=True, seed=6)).live[10]
    assert live.forward_passes > 0
    assert stats.ks_2samp(live.positions, result.simulated[10].positions).pvalue > KS_ALPHA
    assert stats.ks_2samp(live.positions, result.simulated[100].positions).pvalue < KS_ALPHA


def test_simulation_matches_live_queries_tiny_cnn(tiny_model):
    """Multi-class model (multinomial simulation, probit fit) on chelsea → rocket, B 8σ past
    ∂f so that it is past ∂g_σ too: KS at α = 0.01 for n = 10."""
    from rsviz.images import load_sample, preprocess

    x_o, other = (preprocess(load_sample(s).original, 32, 32) for s in ("chelsea", "rocket"))
    y = int(forward_labels(tiny_model, x_o[None])[0])
    segment = segment_towards(tiny_model, x_o, y, other, 0.25, extension=8.0)
    config = DichotomyConfig(sigma=0.25, n_values=(10,), trials=200, steps=7, grid=16,
                             n_samples=1024, live=True, seed=1, precision="fp32")
    result = run_dichotomy(tiny_model, segment.a, segment.b, y, config)
    sim, live = result.simulated[10], result.live[10]
    assert live.forward_passes > 0 and sim.forward_passes == 0
    assert result.profile.forward_passes == 16 * 1024
    assert result.warning is None  # A on the y side of ∂g_σ, B past it
    assert stats.ks_2samp(live.positions, sim.positions).pvalue > KS_ALPHA


# ------------------------------------------------------------------ CLI and page


def test_segment_auto_is_whitebox():
    """"auto" (rsviz dichotomy --segment auto, old scripts) is the white-box segment."""
    from rsviz.views.dichotomy import SEGMENTS, DichotomyRequest

    auto, whitebox = (DichotomyRequest(model_id="m", image_hash="h", kind=kind,
                                       forward="cpu/eager/fp32/torch-2.14.1",
                                       config=DichotomyConfig(sigma=0.25))
                      for kind in ("auto", "whitebox"))
    assert auto.kind == "whitebox" and auto.key() == whitebox.key()
    assert DichotomyRequest(model_id="m", image_hash="h", forward="cpu/eager/fp32/torch-2.14.1",
                            config=DichotomyConfig(sigma=0.25)).kind == "whitebox"
    assert "auto" not in SEGMENTS  # the page offers the three real kinds


def test_cli_json(capsys):
    from rsviz.cli import main

    code = main(["dichotomy", "sample:chelsea", "--model", "tiny_cnn", "--sigma", "0.25",
                 "--n", "5", "20", "--trials", "30", "--steps", "6", "--grid", "8",
                 "--samples", "32", "--segment", "towards", "--towards", "sample:rocket",
                 "--live", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["per_n"]) == {"5", "20"}
    for entry in out["per_n"].values():
        assert entry["simulated"]["forward_passes"] == 0
        assert entry["live"]["forward_passes"] > 0
        assert entry["simulated"]["std"] >= 0 and 0 <= entry["simulated"]["wrong_side"] <= 1
    assert out["segment_forward_passes"] == 8 * 32


def test_cli_whitebox_segment_search_is_bounded(capsys):
    from rsviz.cli import main

    code = main(["dichotomy", "sample:chelsea", "--model", "tiny_cnn", "--sigma", "0.25",
                 "--n", "5", "--trials", "20", "--steps", "4", "--grid", "6", "--samples", "16",
                 "--segment", "whitebox", "--attack-iters", "3", "--json"])
    assert code == 0
    captured = capsys.readouterr()
    out, err = json.loads(captured.out), captured.err
    assert out["segment"] == "whitebox"  # DeepFool crosses tiny_cnn's boundary within 3
    assert re.search(r", [123] of at most 3 gradient iterations\)", out["segment_caption"])
    # stderr: the estimate, as the page shows it before Start
    assert re.search(r"dichotomy: about [\d,]+ forward passes, ≈ [\d.,]+ s at the measured "
                     r"[\d.,]+ passes/s × [\d.]+ \((prior|learned)", err)
    assert main(["dichotomy", "sample:chelsea", "--model", "tiny_cnn", "--sigma", "0.25",
                 "--n", "5", "--trials", "20", "--steps", "4", "--grid", "6", "--samples", "16",
                 "--segment", "whitebox", "--attack-iters", "3", "--json"]) == 0
    err = capsys.readouterr().err
    assert "loaded from the disk cache" in err and "forward passes, ≈" not in err
    assert main(["dichotomy", "sample:chelsea", "--model", "tiny_cnn", "--attack-iters", "0",
                 "--json"]) != 0
    assert "at least 1 iteration" in capsys.readouterr().err


def test_page_runs_and_shows_histograms(app_env):
    from tests.conftest import make_app, run_until

    at = make_app("pages/4_Dichotomy.py")
    assert not at.exception, at.exception
    at.number_input(key="dich_trials_w").set_value(50)
    at.number_input(key="dich_grid_w").set_value(8)
    at.number_input(key="dich_N_w").set_value(32)
    at.slider(key="dich_steps_w").set_value(6)
    at.run()
    at.button(key="start_dichotomy").click().run()
    if not at.get("plotly_chart"):
        run_until(at, lambda at: at.get("plotly_chart"), timeout=30)
    assert not at.exception, at.exception
    assert at.get("plotly_chart"), "no histogram after the job"
    assert len(at.table) == 1
