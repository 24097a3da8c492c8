"""The "Image & model" page on the tiny CNN: numbers change consistently with σ and n.

n, α and P_a do not enter the sampling (its cache key): changing n must keep p̂ and the radius
and change only the draws of g and the thresholds; changing σ resamples, and eq. (6)'s extra
distance scales exactly with σ for a fixed n.
"""

from __future__ import annotations

import time

import pytest
from scipy import stats

from rsviz.theory import threshold_exact, threshold_paper
from tests.conftest import make_app

PAGE = "pages/1_Image_and_model.py"


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def wait_for_result(at, timeout: float = 90.0) -> dict[str, str]:
    """Rerun until the vote panel is drawn (clicking Start if the job did not auto-start)."""
    deadline = time.monotonic() + timeout
    while "p̂_A" not in metrics(at):
        assert not at.exception, at.exception
        assert time.monotonic() < deadline, "the vote job did not finish"
        starts = [b for b in at.button if b.key == "start_image_votes"]
        if starts:
            starts[0].click()
        else:
            time.sleep(0.3)
        at.run()
    assert not at.exception, at.exception
    return metrics(at)


def test_sigma_and_n_change_the_numbers_consistently(app_env):
    at = make_app(PAGE)
    first = wait_for_result(at)
    N = 1000  # CPU default
    assert first["Draws of g (N // n)"] == str(N // 10)
    assert float(first["π0 threshold, exact"]) == pytest.approx(threshold_exact(10, 0.9), abs=1e-4)
    assert float(first["π0 threshold, paper"]) == pytest.approx(threshold_paper(10, 0.9), abs=1e-4)
    assert float(first["Interval low"]) <= float(first["p̂_A"]) <= float(first["Interval high"])

    at.sidebar.number_input(key="sb_n").set_value(11).run()
    second = metrics(at)  # same votes: straight from the cache, no job
    assert second["p̂_A"] == first["p̂_A"]
    assert second["Certified radius R̲"] == first["Certified radius R̲"]
    assert second["Draws of g (N // n)"] == str(N // 11)
    assert second["π0 threshold, exact"] == second["π0 threshold, paper"]  # odd n: exact
    assert float(second["π0 threshold, exact"]) > float(first["π0 threshold, exact"])

    at.sidebar.number_input(key="sb_sigma").set_value(0.5).run()
    third = wait_for_result(at)
    assert float(third["eq. (6) extra distance"]) == pytest.approx(  # default σ: the paper's 0.05
        0.5 / 0.05 * float(second["eq. (6) extra distance"]), abs=2e-3)
    assert third["π0 threshold, exact"] == second["π0 threshold, exact"]
    for shown in (second, third):
        sigma = 0.05 if shown is second else 0.5
        if shown["Certified radius R̲"] != "abstain":
            expected = sigma * stats.norm.ppf(float(shown["p̲_A (one-sided)"]))
            assert float(shown["Certified radius R̲"]) == pytest.approx(expected, abs=2e-3)


def test_reopening_is_instant_and_bad_settings_are_messages(app_env):
    at = make_app(PAGE)
    first = wait_for_result(at)
    again = make_app(PAGE)  # a new session: the result comes from the disk cache
    assert metrics(again)["p̂_A"] == first["p̂_A"]
    again.number_input(key="img_N_w").set_value(5).run()
    assert not again.exception
    assert any("exceeds" in e.value for e in again.error)


def test_page_details_are_the_votes_own_numbers():
    """`page_details` (what the page draws beyond the summary) on hand-made votes: every class's
    count, the first blocks of n votes, P[g ≠ ĉ] over n (binomial from p̂ by scipy, empirical
    for n = 1 the share of votes off ĉ, none below 20 draws), Cohen's-n radius and eq. (5)."""
    import numpy as np

    from rsviz.theory import theory_summary
    from rsviz.views.image import COHEN_N, page_details, summarize

    labels = np.random.default_rng(3).choice(4, size=400, p=[0.7, 0.2, 0.1, 0.0])
    sampled = {"labels": labels, "num_classes": 4, "sigma": 0.5, "counts0": [9, 1, 0, 0],
               "n0": 10}
    n, alpha, seed, p_a = 7, 0.01, 2, 0.9
    summary = {"sigma": 0.5, "n": n, "alpha": alpha, "seed": seed,
               **summarize(sampled, n, alpha, seed)}
    details = page_details(sampled, summary, p_a, n_show=3)

    assert details["counts"].tolist() == np.bincount(labels, minlength=4).tolist()
    classes = details["block_classes"]
    assert details["block_counts"].shape == (3, len(classes))
    for b in range(3):
        block = labels[b * n:(b + 1) * n]
        assert details["block_counts"][b].tolist() == [int((block == c).sum()) for c in classes]
    curve = details["prob_g_wrong_curve"]
    assert curve["n"] == sorted(curve["n"]) and n in curve["n"] and curve["n"][0] == 1
    wrong = 1 - summary["p_hat"]
    for k, exact, emp, draws in zip(curve["n"], curve["binomial"], curve["empirical"],
                                    curve["draws"]):
        tail = stats.binom.sf(k // 2, k, wrong) + (0.5 * stats.binom.pmf(k // 2, k, wrong)
                                                   if k % 2 == 0 else 0.0)
        assert exact == pytest.approx(tail, rel=1e-9)
        assert draws == 400 // k and (emp is None) == (draws < 20)
    assert curve["empirical"][0] == pytest.approx(float((labels != 0).mean()))
    k_big = round(summary["p_hat"] * COHEN_N)
    assert details["radius_cohen_n"] == pytest.approx(
        0.5 * stats.norm.ppf(stats.beta.ppf(alpha, k_big, COHEN_N - k_big + 1)), rel=1e-9)
    assert details["theory"] == theory_summary(n, p_a, 0.5,
                                               summary["certify"]["p_lower_one_sided"])
