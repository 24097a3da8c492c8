"""One source per default and per cost: the page defaults fit their budget by the views' own
cost(), and the CLI's defaults are the configs' defaults."""

from __future__ import annotations

import pytest

from rsviz import defaults
from rsviz.cli import build_parser
from rsviz.defaults import BUDGET_S, page_defaults

RATES = (2.0, 12.0, 60.0, 400.0, 50_000.0)
IDS = {"model_id": "m", "image_hash": "h"}


def page_request(page: str, setting: dict):
    """The request a page runs with its default `setting`: `rsviz.defaults.page_request` (the
    sizing's own builder), except the attack page, whose default is the f-and-g comparison
    (sized at `passes_per_query("both", n)` passes per query on g)."""
    if page != "attack":
        return defaults.page_request(page, setting)
    from rsviz.attacks import OracleConfig
    from rsviz.views.attack import CompareRequest

    return CompareRequest(**IDS, config=OracleConfig(sigma=0.25, n=10, budget=setting["budget"]))


def page_setting(page: str, rate: float) -> dict:
    """The page's quick default at `rate`, as the page asks for it."""
    from rsviz.views.attack import passes_per_query

    return page_defaults(page, rate, n=passes_per_query("both", 10) if page == "attack" else 10)


@pytest.mark.parametrize("page", defaults.PAGES)
def test_a_quick_default_finishes_within_the_budget_by_its_views_cost(page):
    """What the page will run, costed by the view itself, fits BUDGET_S at the rate (the
    smallest setting excepted: nothing smaller is offered)."""
    smallest = page_setting(page, 1e-6)
    for rate in RATES:
        setting = page_setting(page, rate)
        cost = page_request(page, setting).cost().passes
        seconds = cost / rate * defaults.OVERHEAD[page]
        assert seconds <= BUDGET_S or setting == smallest, (rate, setting, seconds)


def parse(*argv: str):
    return build_parser(list(argv)).parse_args(list(argv))


def test_the_cli_defaults_are_the_configs_defaults():
    """A command run without options builds the config its dataclass defaults give."""
    from rsviz.commands import dichotomy, profile, slice, smooth
    from rsviz.dichotomy import DichotomyConfig
    from rsviz.profile import ProfileConfig
    from rsviz.slices import SliceConfig
    from rsviz.views.dichotomy import DichotomyRequest
    from rsviz.views.image import VotesRequest

    assert slice.slice_config(parse("slice", "sample:coffee")) == SliceConfig()
    assert profile.profile_config(parse("profile", "sample:coffee"), 0.25) == ProfileConfig()
    args = parse("dichotomy", "sample:coffee")
    assert dichotomy.dichotomy_config(args, 0.25) == DichotomyConfig()
    assert (DichotomyRequest(**IDS, config=DichotomyConfig(), **dichotomy.segment_options(args))
            == DichotomyRequest(**IDS, config=DichotomyConfig()))
    assert (VotesRequest(**IDS, **smooth.votes_options(parse("smooth", "sample:coffee")))
            == VotesRequest(**IDS))


def test_cli_options_reach_the_config():
    """The flags that invert a default still invert it (dest and sense of the switches)."""
    from rsviz.commands import dichotomy, profile

    assert not profile.profile_config(parse("profile", "x", "--no-curvature"), 0.25).curvature
    options = dichotomy.segment_options(parse("dichotomy", "x", "--past-f", "--segment",
                                              "random", "--attack-iters", "7"))
    assert options == {"kind": "random", "extension": 3.0, "attack_iters": 7,
                       "past_gsigma": False}


def test_the_app_standard_is_the_engines_default():
    """Where a page's standard setting names a config field, it holds the config's default:
    one value of each, whether the app, the CLI or a script runs it."""
    from rsviz.attacks.oracle import OracleConfig
    from rsviz.dichotomy import DichotomyConfig
    from rsviz.profile import ProfileConfig
    from rsviz.views.dichotomy import DichotomyRequest
    from rsviz.views.image import VotesRequest

    standard = defaults.STANDARD
    profile = ProfileConfig()
    assert standard["profile"] == {k: getattr(profile, k) for k in standard["profile"]}
    dichotomy = {**vars(DichotomyConfig()),
                 "attack_iters": DichotomyRequest(**IDS, config=DichotomyConfig()).attack_iters}
    assert standard["dichotomy"] == {k: dichotomy[k] for k in standard["dichotomy"]}
    assert standard["image"] == {"N": VotesRequest(**IDS).n_samples}
    assert standard["attack"] == {"budget": OracleConfig().budget}
    from rsviz.slices import SliceConfig

    sliced = {**vars(SliceConfig()), "ns": list(SliceConfig().ns)}
    assert standard["slice"] == {k: sliced[k] for k in standard["slice"]}
