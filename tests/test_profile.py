"""Profile along x_a − x_o: exact references on the linear classifier, vote bookkeeping,
crossings and eq. (5)–(6), CLI and page."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats

from rsviz.errors import ConfigError
from rsviz.profile import ProfileConfig, compute_profile, first_crossing, summary
from rsviz.smoothing import prob_wrong_binomial
from rsviz.theory import threshold_exact, threshold_random_tie

SIGMA = 0.25


@pytest.fixture(scope="module")
def linear_profile():
    from rsviz.models import load_model

    model = load_model("linear_toy")
    x_o = torch.full((3, 32, 32), 0.5)
    config = ProfileConfig(sigma=SIGMA, n_values=(5, 10, 51), n_samples=2048, points=25,
                           window="x_a", beyond=4.0, p_levels=(0.5, 0.8), precision="fp32",
                           lanczos_steps=4, probes=2, slq_steps=2)
    return model, compute_profile(model, x_o, config)


def test_default_window_is_drawn_around_the_searched_gsigma():
    """The default window: ∂g_σ searched first (= ∂f at 0.2 for the half-space), then every
    (n, P_a) curve crosses its level inside the window."""
    from rsviz.models import load_model

    model = load_model("linear_toy")
    x_o = torch.full((3, 32, 32), 0.5)
    config = ProfileConfig(sigma=0.05, n_values=(1, 10), n_samples=256, points=16,
                           p_levels=(0.5, 0.9), curvature=False, attack_iters=5)
    result = compute_profile(model, x_o, config)
    assert result.gsigma is not None and result.gsigma.found
    assert abs(result.gsigma.t - 0.2) < 0.25 * 0.05 + (result.gsigma.high - result.gsigma.low)
    for c in result.crossings:
        assert c.t is not None, c.label  # every level is crossed inside the window
    assert result.t[-1] > max(c.t for c in result.crossings)
    table = summary(result)
    assert table["gsigma_search"]["status"] == "found" and "∂g_σ at" in table["gsigma_search"]["text"]
    assert result.forward_passes >= result.gsigma.forward_passes > 0


def test_linear_profile_matches_exact_probabilities(linear_profile):
    model, result = linear_profile
    assert abs(result.distance - 0.2) < 1e-3  # linear_toy: ∂f at 0.2 from grey
    exact = stats.norm.cdf(result.beta)  # p_y = Φ(β), β = signed distance to ∂f / σ
    covered = (result.ci_low <= exact) & (exact <= result.ci_high)
    assert covered.mean() >= 0.95  # 99.9% bands, 26 points
    assert np.abs(result.p_y - exact).max() < 0.05
    for n in result.config.n_values:
        truth = prob_wrong_binomial(exact, n)
        assert np.abs(result.prob_binomial[n] - truth).max() < 0.08
        assert np.abs(result.prob_empirical[n] - truth).max() < 0.25  # 2048 // n block draws
    assert np.all(result.f_labels[result.t < result.distance - 1e-3] == 0)
    assert np.all(result.f_labels[result.t > result.distance + 1e-3] == 1)


def test_linear_crossings_and_thresholds(linear_profile):
    _, result = linear_profile
    crossings = {c.label: c for c in result.crossings}
    # linear f: ∂g_σ = ∂f
    assert abs(crossings["∂g_σ (p̂_y = ½)"].beyond) < 0.05 * SIGMA + 0.02
    for n in result.config.n_values:
        for p_a in result.config.p_levels:
            c = crossings[f"n = {n}, P_a = {p_a:g}"]
            assert result.thresholds[(n, p_a)] == threshold_exact(n, p_a)
            # exact crossing: Φ(β) = threshold (random tie) -> beyond = −σ Φ^{-1}(threshold)
            truth = -SIGMA * stats.norm.ppf(threshold_random_tie(n, p_a))
            assert abs(c.beyond - truth) < 0.03, (n, p_a, c.beyond, truth)
            # eq. (6) is a lower bound on the distance from x_o (R uses p̲_y at x_o)
            assert c.bound <= c.t + 0.03
    # the linear boundary is flat: every curvature ≈ 0, SORM reduces to Φ(−β)
    curvature = result.curvature
    assert np.abs(curvature.ritz).max() < 1e-3
    for variant, values in result.sorm.items():
        assert np.allclose(values, stats.norm.cdf(-result.beta), atol=1e-3), variant


def test_first_crossing_interpolates():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    assert first_crossing(t, np.array([0.0, 0.2, 0.6, 1.0]), 0.5) == pytest.approx(1.75)
    assert first_crossing(t, np.array([0.0, 0.1, 0.2, 0.3]), 0.5) is None
    assert first_crossing(t, np.array([0.9, 1.0, 1.0, 1.0]), 0.5) == 0.0


def test_config_validation():
    with pytest.raises(ConfigError):
        ProfileConfig(n_values=(500,), n_samples=256)
    with pytest.raises(ConfigError):
        ProfileConfig(sigma=-1.0)
    with pytest.raises(ConfigError):
        ProfileConfig(p_levels=(1.0,))
    with pytest.raises(ConfigError):
        ProfileConfig(start=2.0, stop=1.0)


def test_tiny_cnn_profile_and_summary(tiny_model):
    from rsviz.jobs import Job

    x_o = torch.rand((3, 32, 32), generator=torch.Generator().manual_seed(1))
    config = ProfileConfig(sigma=0.1, n_values=(5, 10), n_samples=64, points=10,
                           lanczos_steps=4, probes=2, slq_steps=2, attack_iters=30)
    job = Job("j", "profile", lambda j: None, None)
    result = compute_profile(tiny_model, x_o, config, progress=job)
    snap = job.snapshot()
    assert snap.partial is not None and len(snap.partial["p_y"]) == len(result.t)
    assert result.label_adv != result.y
    out = summary(result)
    json.dumps(out, default=str)
    # ∂f, ∂g_σ from the curve and from the search, then every (n, P_a)
    assert len(out["crossings"]) == 3 + 2 * 2
    assert result.curvature.hvps == 4 + 2 * 2
    assert set(result.table()) >= {"t_from_xo", "beyond_xa", "p_y", "p_adv_n5_binomial",
                                   "p_adv_n10_empirical", "sorm_eq3_p_adv"}


def test_cli_writes_curves(tmp_path, capsys):
    from rsviz.cli import main

    code = main(["profile", "sample:coffee", "--model", "linear_toy", "--sigma", "0.25",
                 "--n", "5", "11", "--samples", "128", "--points", "8", "--lanczos-steps", "3",
                 "--probes", "2", "--slq-steps", "2", "--out", str(tmp_path), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert {c["label"] for c in out["crossings"]} >= {"n = 5, P_a = 0.5", "n = 11, P_a = 0.8"}
    assert (tmp_path / "profile.csv").read_text().startswith("t_from_xo")
    assert json.loads((tmp_path / "profile.json").read_text())["curves"]["p_y"]
    assert (tmp_path / "profile.html").exists()


def test_page_computes_profile(app_env):
    from tests.conftest import make_app, run_until

    at = make_app("pages/3_Profile_and_SORM.py")
    assert not at.exception, at.exception
    at.number_input(key="prof_N_w").set_value(64)
    at.number_input(key="prof_points_w").set_value(8)
    at.number_input(key="prof_lanczos_w").set_value(3)
    at.number_input(key="prof_probes_w").set_value(2)
    at.run()
    at.button(key="start_profile").click().run()
    if not at.get("plotly_chart"):
        run_until(at, lambda at: at.get("plotly_chart"), timeout=45)
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 2  # profile + curvature spectrum
    assert len(at.table) == 1


def test_far_gsigma_gets_half_the_points_where_p_y_falls():
    """∂g_σ found 1 000σ past x_a: a uniform grid would space points 2.5 apart (50σ) and miss
    a fall of a few σ; the window puts half its points from 3σ before the bracket to its end,
    and that end lies past the bracket's far side."""
    from rsviz.gsigma import FOUND, GSigmaCrossing

    sigma = 0.05
    far = GSigmaCrossing(FOUND, 50.1, 50.0, 50.2, sigma, 2000)
    config = ProfileConfig(sigma=sigma, points=30, n_values=(5, 10, 50))
    t = config.window_points(0.2, far)
    assert len(t) == 30 and np.all(np.diff(t) > 0)
    assert t[-1] > far.high + sigma
    zone = t[t >= far.low - 3 * sigma]
    assert len(zone) == 15 and np.diff(zone).max() < sigma  # the fall is resolved
    assert t[0] == 0.0 and (t < far.low - 3 * sigma).sum() == 15
    # a smeared fall (concave region): p̂_y was still 0.94 at 37.5 but 0.6 at 50 → the
    # dense part starts at 37.5, the last searched point clearly on y's side
    smeared = GSigmaCrossing(FOUND, 50.1, 50.0, 50.2, sigma, 2000,
                             ((25.0, 32, 32), (37.5, 30, 32), (50.0, 154, 256), (50.2, 100, 256)))
    t = config.window_points(0.2, smeared)
    assert t[15] == pytest.approx(37.5) and (t < 37.5).sum() == 15
    # and the window goes on past the bracket by half that fall: (50 − 37.5) / 2
    assert t[-1] == pytest.approx(50.2 + 6.25)
    near = GSigmaCrossing(FOUND, 0.3, 0.28, 0.32, sigma, 2000)  # ∂g_σ near x_a: uniform
    assert np.allclose(np.diff(config.window_points(0.2, near)), np.diff(config.window_points(0.2, near))[0])


def test_far_gsigma_window_is_drawn_on_a_broken_axis(linear_profile):
    """The far window's two parts become two panels: the coarse one holds x_o … the zone,
    the zoomed one the zone; every point of the ideal curve is drawn exactly once."""
    import dataclasses

    from rsviz.figures.profile import profile_figure

    _, result = linear_profile
    assert result.zone is None
    assert {tr.xaxis for tr in profile_figure(result).data} == {"x"}
    m = len(result.t)
    split = np.r_[np.linspace(0, 40, m - m // 2, endpoint=False), np.linspace(40, 40.5, m // 2)]
    far = dataclasses.replace(result, t=split)
    assert far.zone == m - m // 2
    fig = profile_figure(far)
    ideal = [tr for tr in fig.data if str(tr.name).startswith("ideal g_σ")]
    assert [tr.xaxis for tr in ideal] == ["x", "x2"]
    assert np.allclose(np.r_[ideal[0].x, ideal[1].x], far.beyond)
    assert ideal[0].showlegend and not ideal[1].showlegend
    assert max(ideal[0].x) < 40 - far.distance <= min(ideal[1].x)


def test_a_window_starting_later_is_not_taken_for_a_broken_one(linear_profile):
    """`--start > 0` puts x_o in front of the window: that first gap is not the axis break."""
    import dataclasses

    _, result = linear_profile
    config = dataclasses.replace(result.config, start=10.0, stop=12.0)
    later = dataclasses.replace(result, config=config,
                                t=np.r_[0.0, np.linspace(10, 12, len(result.t) - 1)])
    assert later.zone is None
