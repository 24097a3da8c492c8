"""The ∂g_σ search along a ray, against the exact crossings of the analytic toys."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from rsviz.config import GSigmaSearch
from rsviz.errors import ConfigError
from rsviz.gsigma import AT_XO, BEYOND_CAP, FOUND, find_gsigma

pytestmark = pytest.mark.usefixtures("one_thread")
SEARCH = GSigmaSearch()
# p_y moves by ~0.4/σ per unit distance at ∂g_σ (linear case), and a point with 256 votes is
# misjudged only within |p̂ − ½| ≲ 3·0.03: ±0.25 σ, plus the bisection's last half-bracket.
VOTE_TOL_SIGMAS = 0.25


def grey(model):
    return torch.full(model.info.input_shape, 0.5)


def test_linear_crossing_is_the_hyperplane(linear_model):
    """For a half-space, p_y(t) = Φ((d − t)/σ): ∂g_σ = ∂f exactly, at d = 0.2 from grey."""
    sigma = 0.05
    net = linear_model.net
    w = net.w.view(linear_model.info.input_shape)
    d = float(net.distance_to_boundary(grey(linear_model)[None])[0])
    out = find_gsigma(linear_model, grey(linear_model), w, 0, sigma, SEARCH, seed=0)
    assert out.status == FOUND and out.found
    assert out.low <= out.t <= out.high
    bracket = out.high - out.low
    assert abs(out.t - d) <= VOTE_TOL_SIGMAS * sigma + bracket, (out.t, d)
    assert out.forward_passes <= SEARCH.max_passes()
    assert "∂g_σ at" in out.describe()


def test_ball_crossing_is_pushed_out_on_the_concave_side(ball_model):
    """Outside a ball (class 1), moving towards its centre: ∂g_σ lies where the noncentral χ²
    median reaches r²/σ², far past ∂f (the paper's concave case), at the exact distance."""
    sigma, rho, r = 0.03, 3.5, ball_model.net.radius
    dim = int(np.prod(ball_model.info.input_shape))
    centre = grey(ball_model)
    u = torch.randn(ball_model.info.input_shape, generator=torch.Generator().manual_seed(1))
    u = u / u.norm()
    x_o = centre + rho * u

    def p_inside(t):  # P[‖x(t) + σN − c‖ < r], x(t) at distance rho − t from the centre
        return stats.ncx2.cdf(r ** 2 / sigma ** 2, dim, (rho - t) ** 2 / sigma ** 2)

    exact = optimize.brentq(lambda t: p_inside(t) - 0.5, 0.0, rho)
    out = find_gsigma(ball_model, x_o, -u, 1, sigma, SEARCH, seed=0)
    assert out.status == FOUND
    assert exact > (rho - r) + 10 * sigma  # pushed out: well past ∂f at rho − r = 0.5
    assert abs(out.t - exact) <= VOTE_TOL_SIGMAS * sigma + (out.high - out.low), (out.t, exact)


def test_no_crossing_within_the_cap_says_so_with_its_lower_bound(linear_model):
    sigma = 0.0005  # the cap (2000σ = 1) stays inside the half-space
    w = linear_model.net.w.view(linear_model.info.input_shape)
    out = find_gsigma(linear_model, grey(linear_model), -w, 0, sigma, SEARCH, seed=0)
    assert out.status == BEYOND_CAP and out.t is None
    assert out.low == pytest.approx(SEARCH.cap_sigmas * sigma)
    assert "beyond" in out.describe() and f"{SEARCH.cap_sigmas:.0f}σ" in out.describe()
    # far from any boundary every point stops after one round of votes
    assert out.forward_passes == len(out.tested) * SEARCH.round_votes


def test_disagreement_at_x_o_is_reported_first(linear_model):
    w = linear_model.net.w.view(linear_model.info.input_shape)
    out = find_gsigma(linear_model, grey(linear_model), w, 1, 0.05, SEARCH, seed=0)
    assert out.status == AT_XO and len(out.tested) == 1
    assert "already disagrees at x_o" in out.describe()


def test_same_seed_same_crossing(linear_model):
    w = linear_model.net.w.view(linear_model.info.input_shape)
    a = find_gsigma(linear_model, grey(linear_model), w, 0, 0.05, SEARCH, seed=3)
    b = find_gsigma(linear_model, grey(linear_model), w, 0, 0.05, SEARCH, seed=3)
    assert a == b


def test_search_budget_is_validated():
    with pytest.raises(ConfigError):
        GSigmaSearch(max_votes=16, round_votes=32)
    with pytest.raises(ConfigError):
        GSigmaSearch(cap_sigmas=0)
    assert GSigmaSearch(doublings=2, steps=3).max_passes() == (1 + 2 + 1 + 3) * 256
    assert GSigmaSearch(cap_sigmas=50).cap_sigmas == 50


# --- check_at_xo: the one test every page runs before its Start button (#25 item 7) ---------


def test_check_at_xo_follows_the_ball_law(ball_model):
    """At the centre of the ball (f says 0 = inside), p_0 = P[σ‖N‖ < r] = F_χ²_d(r²/σ²): far
    below ½ once σ√d is well past r (g_σ says 1 = outside), near 1 well inside."""
    from rsviz.gsigma import check_at_xo

    d, r = int(np.prod(ball_model.info.input_shape)), float(ball_model.net.radius)
    outside = 1.5 * r / d ** 0.5
    assert stats.chi2.cdf((r / outside) ** 2, d) < 1e-6
    out = check_at_xo(ball_model, grey(ball_model), outside, seed=0)
    agrees, p_hat, g_label, message = out  # unpacks as the pages use it
    assert not agrees and p_hat < 0.2 and g_label == 1
    assert message.startswith("g_σ already disagrees with f at x_o")
    assert f"σ = {outside:g}" in message and "g_σ says " in message
    inside = 0.6 * r / d ** 0.5
    assert stats.chi2.cdf((r / inside) ** 2, d) > 0.999
    out = check_at_xo(ball_model, grey(ball_model), inside, seed=0)
    assert out.agrees and out.p_hat > 0.9 and out.g_label == 0 and out.message == ""


def test_check_at_xo_never_disagrees_for_a_half_space(linear_model):
    """For a half-space p_y = Φ(d/σ) > ½ at every σ: even at σ = 25d (p_y = 0.516, within the
    votes' error of ½) the check must not cry wolf; given y of the other side it disagrees."""
    from rsviz.gsigma import check_at_xo

    x = grey(linear_model)
    d = float(linear_model.net.distance_to_boundary(x[None])[0])
    for sigma in (0.05, d, 25 * d):
        for seed in range(3):
            assert check_at_xo(linear_model, x, sigma, seed=seed).agrees, (sigma, seed)
    out = check_at_xo(linear_model, x, 0.05, seed=0, y=1)
    assert not out.agrees and out.g_label == 0 and out.p_hat < 0.05


def test_check_at_xo_on_the_tiny_cnn_case_of_the_app_test(tiny_model):
    """The case tests/test_app.py uses: sample rocket at σ = 1 disagrees, coffee agrees."""
    from rsviz.gsigma import check_at_xo
    from rsviz.views.inputs import load_image

    rocket, _ = load_image("sample:rocket", tiny_model)
    coffee, _ = load_image("sample:coffee", tiny_model)
    assert not check_at_xo(tiny_model, rocket, 1.0).agrees
    assert check_at_xo(tiny_model, coffee, 1.0).agrees
    assert check_at_xo(tiny_model, rocket, 0.05).agrees
