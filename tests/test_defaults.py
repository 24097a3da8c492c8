"""Page defaults sized in seconds: a pure function of the measured rate (fake rates here)."""

from __future__ import annotations

import pytest

from rsviz import defaults
from rsviz.defaults import BUDGET_S, PAGES, estimate_seconds, page_defaults, passes
from rsviz.dichotomy import DichotomyConfig
from rsviz.errors import ConfigError
from rsviz.views import dichotomy

RATES = (2.0, 5.0, 12.0, 30.0, 60.0, 150.0, 400.0, 2000.0, 50_000.0)


@pytest.mark.parametrize("page", PAGES)
def test_quick_defaults_fit_the_budget_and_grow_with_the_rate(page):
    costs = []
    for rate in RATES:
        setting = page_defaults(page, rate)
        seconds = estimate_seconds(page, setting, rate) * defaults.OVERHEAD[page]
        smallest = page_defaults(page, 1e-6)  # the bottom of the ladder
        assert seconds <= BUDGET_S or setting == smallest, (rate, setting, seconds)
        costs.append(passes(page, setting))
    assert costs == sorted(costs)  # a faster machine never gets a smaller default
    assert page_defaults(page, 1e9) == defaults.STANDARD[page]  # capped at the standard one
    assert page_defaults(page, 1e9, gpu=True) == defaults.PAPER[page]


def test_slow_machines_get_smaller_pages_and_presets_are_fixed():
    slow = page_defaults("slice", 10.0)
    assert slow["grid"] < 17 and slow["mode"] == "dense"
    assert max(slow["ns"]) <= slow["n_samples"]
    assert page_defaults("attack", 20.0, n=10)["budget"] == 100
    assert page_defaults("attack", 100.0, n=1, smoothed=False)["budget"] == 2000
    # (45 s × 100 / 1.5 − 1) / 10 = 299.9 queries: rounded down to 250 (defaults.NICE)
    assert page_defaults("attack", 100.0, n=10)["budget"] == 250
    assert page_defaults("image", 20.0) == {"N": 750}  # 45 s × 20 / 1.0 − 100 = 800
    for page in PAGES:
        assert page_defaults(page, 3.0, preset="paper") == defaults.PAPER[page]
        assert page_defaults(page, 3.0, preset="standard") == defaults.STANDARD[page]
    with pytest.raises(ValueError, match="unknown preset"):
        page_defaults("slice", 10.0, preset="fast")
    assert "≈ 45 s at 20.0 passes/s" in defaults.describe(
        "image", {"N": 800}, 20.0, "quick")  # (100 + 800) / 20


def test_the_dichotomy_shortens_its_whitebox_search_before_its_votes():
    """The white-box segment search is a fixed cost: a slow machine shortens it first."""
    full = defaults.STANDARD["dichotomy"]
    rate = passes("dichotomy", full) * defaults.OVERHEAD["dichotomy"] / BUDGET_S * 0.9
    quick = page_defaults("dichotomy", rate)
    assert quick["attack_iters"] == defaults.QUICK_WHITEBOX_ITERATIONS < full["attack_iters"]
    assert quick["n_samples"] == full["n_samples"] and quick["grid"] == full["grid"]
    assert page_defaults("dichotomy", rate / 0.9 * 1.01) == full
    towards = [dichotomy.DichotomyRequest(model_id="m", image_hash="h", kind="towards",
                                          forward="cpu/eager/fp32/torch-2.14.1",
                                          attack_iters=i, config=DichotomyConfig(sigma=0.25))
               for i in (20, 100)]  # the field is unused there: one cache key
    assert towards[0].key() == towards[1].key() and towards[0].cost() == towards[1].cost()
    with pytest.raises(ConfigError, match="at least 1 iteration"):
        dichotomy.DichotomyRequest(model_id="m", image_hash="h", attack_iters=0,
                                   config=DichotomyConfig(sigma=0.25))
