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
