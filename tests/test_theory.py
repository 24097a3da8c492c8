"""Eq. (2), (5), (6) and the paper's shortcut against a Monte Carlo of the binomial vote.

Monte Carlo: M = 200 000 seeded draws of W ~ Bin(n, 1 − π0) (numpy); tolerance 4 standard
errors of the estimated probability (plus 1e-9). Where the paper's closed form is only
approximate (even n; the French ⌈n/2⌉ variant), the tests say so by asserting the gap.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import special, stats

from rsviz.cli import main
from rsviz.errors import ConfigError
from rsviz.theory import (certified_radius, extra_distance, prob_adversarial_strict,
                          prob_wrong_binomial, shortcut_wrong_votes, theory_summary,
                          threshold_exact, threshold_paper, threshold_random_tie)

M = 200_000
NS = [1, 2, 5, 10, 11, 50, 51, 100]
PAS = [0.5, 0.9, 0.99]


def monte_carlo(pi0: float, n: int, rule: str, seed: int) -> tuple[float, float]:
    """P[g_{σ,n} ≠ y] by simulation, and 4 standard errors. rule: strict | random_tie."""
    rng = np.random.default_rng(seed)
    wrong = rng.binomial(n, 1.0 - pi0, size=M)
    if rule == "strict":
        event = wrong >= n // 2 + 1
    else:
        tie = (2 * wrong == n) & (rng.random(M) < 0.5)
        event = (2 * wrong > n) | tie
    p = float(event.mean())
    return p, 4 * math.sqrt(max(p * (1 - p), 1e-12) / M) + 1e-9


@pytest.mark.parametrize("n", NS)
@pytest.mark.parametrize("p_a", PAS)
def test_exact_thresholds_hit_p_a_in_monte_carlo(n, p_a):
    seed = 1000 * n + int(100 * p_a)
    pi0 = threshold_exact(n, p_a)
    estimate, tol = monte_carlo(pi0, n, "strict", seed)
    assert abs(estimate - p_a) <= tol, (estimate, p_a)
    assert float(prob_adversarial_strict(pi0, n)) == pytest.approx(p_a, abs=1e-9)
    pi0_tie = threshold_random_tie(n, p_a)
    estimate, tol = monte_carlo(pi0_tie, n, "random_tie", seed + 1)
    assert abs(estimate - p_a) <= tol, (estimate, p_a)
    assert float(prob_wrong_binomial(pi0_tie, n)) == pytest.approx(p_a, abs=1e-9)


@pytest.mark.parametrize("n", [1, 5, 11, 51, 101])
def test_paper_closed_form_is_exact_for_odd_n(n):
    for p_a in PAS:
        assert threshold_paper(n, p_a, "floor") == pytest.approx(threshold_exact(n, p_a), abs=1e-12)
        assert threshold_random_tie(n, p_a) == pytest.approx(threshold_exact(n, p_a), abs=1e-9)
        # the French ⌈n/2⌉ variant is the exact threshold of n + 2 votes
        assert threshold_paper(n, p_a, "ceil") == pytest.approx(threshold_exact(n + 2, p_a),
                                                                abs=1e-12)


@pytest.mark.parametrize("n", [2, 10, 50, 100])
def test_paper_closed_form_is_only_approximate_for_even_n(n):
    """For even n the printed form is the threshold of n + 1 votes: at it, the strict-majority
    event of n votes has probability clearly below P_a (Monte Carlo, beyond 4 s.e.)."""
    p_a = 0.9
    paper = threshold_paper(n, p_a)
    assert paper == threshold_paper(n, p_a, "ceil")  # ⌊n/2⌋ = ⌈n/2⌉
    assert paper == pytest.approx(threshold_exact(n + 1, p_a), abs=1e-12)
    estimate, tol = monte_carlo(paper, n, "strict", seed=n)
    assert estimate < p_a - tol
    estimate, tol = monte_carlo(paper, n, "random_tie", seed=n + 1)
    assert estimate < p_a - tol
    assert threshold_exact(n, p_a) < threshold_random_tie(n, p_a) < paper
    gaps = {2: 0.1445, 10: 0.0504, 50: 0.0106, 100: 0.0052}  # paper − exact, at P_a = 0.9
    assert paper - threshold_exact(n, p_a) == pytest.approx(gaps[n], abs=5e-4)


def test_paper_form_is_the_beta_quantile_as_printed():
    n, p_a = 10, 0.9
    n_tilde = 1 + n // 2
    assert threshold_paper(n, p_a) == pytest.approx(1 - special.betaincinv(n_tilde, n_tilde, p_a))


def test_extra_distance_eq6():
    sigma, n, p_a = 0.25, 11, 0.9
    pi0 = threshold_exact(n, p_a)
    extra = extra_distance(sigma, pi0)
    n_tilde = 1 + n // 2
    assert extra == pytest.approx(sigma * stats.norm.ppf(special.betaincinv(n_tilde, n_tilde, p_a)))
    assert extra_distance(2 * sigma, pi0) == pytest.approx(2 * extra)
    # linear f: a point δ beyond the boundary has π0 = Φ(−δ/σ), so δ = extra gives π0 = π0*
    assert stats.norm.cdf(-extra / sigma) == pytest.approx(pi0)
    assert extra_distance(sigma, 0.5) == pytest.approx(0.0, abs=1e-12)
    assert extra > 0 and extra_distance(sigma, 0.7) < 0


def test_certified_radius_eq2():
    assert float(certified_radius(stats.norm.cdf(1.5), 0.5)) == pytest.approx(0.75)
    np.testing.assert_array_equal(certified_radius(np.array([0.2, 0.5]), 1.0), [0.0, 0.0])


def test_shortcut_wrong_votes():
    assert shortcut_wrong_votes(10, 0.9) == 9
    assert shortcut_wrong_votes(10, 0.3) == 3  # n·P_a = 3.0000000000000004 in floating point
    assert shortcut_wrong_votes(100, 0.5) == 50
    assert shortcut_wrong_votes(7, 0.51) == 4


def test_summary_and_validation():
    out = theory_summary(10, 0.9, sigma=0.25, p_lower=0.99)
    assert out["min_distance"] == pytest.approx(out["radius"] + out["extra_distance"])
    assert out["radius"] == pytest.approx(0.25 * stats.norm.ppf(0.99))
    for bad in (lambda: threshold_exact(0, 0.9), lambda: threshold_exact(10, 1.0),
                lambda: threshold_paper(10, 0.9, "round"), lambda: extra_distance(0.0, 0.3),
                lambda: extra_distance(0.25, 1.0), lambda: theory_summary(10, 0.9, 0.25, 1.5)):
        with pytest.raises(ConfigError):
            bad()


def test_theory_cli_json(capsys):
    assert main(["theory", "--n", "10", "--pa", "0.9", "--sigma", "0.25", "--p-lower", "0.9",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["threshold_exact"] == pytest.approx(threshold_exact(10, 0.9))
    assert out["threshold_paper"] == pytest.approx(threshold_paper(10, 0.9))
    assert out["extra_distance"] == pytest.approx(extra_distance(0.25, out["threshold_exact"]))
    assert main(["theory", "--n", "11", "--pa", "0.9", "--json"]) == 0
    assert "extra_distance" not in json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("argv", [["--n", "0", "--pa", "0.9"], ["--n", "5", "--pa", "1.2"],
                                  ["--n", "5", "--pa", "0.9", "--sigma", "0"]])
def test_theory_cli_bad_input_one_line(capsys, argv):
    assert main(["theory", *argv, "--json"]) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


@pytest.mark.parametrize("n", [1, 2, 7, 10, 512, 100_000])
def test_random_tie_law_matches_scipy_stats(n):
    """P[W > n/2] + ½ P[W = n/2], W ~ Bin(n, 1 − p_y), against scipy.stats' binomial."""
    p_y = np.r_[0.0, 1.0, 0.5, np.linspace(0.3, 0.7, 41), 0.5 + 1e-3]
    q = 1 - p_y
    tie = stats.binom.pmf(n // 2, n, q) if n % 2 == 0 else 0.0
    expected = stats.binom.sf(n // 2, n, q) + 0.5 * tie
    np.testing.assert_allclose(prob_wrong_binomial(p_y, n), expected, rtol=1e-8, atol=1e-300)


def test_theory_starts_without_scipy_stats():
    code = ("import sys, rsviz.theory as t; t.theory_summary(10, 0.5, 0.25, 0.9); "
            "print(sorted(m for m in ('torch', 'scipy.stats', 'scipy.optimize') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
