"""The "Live attack" page on the tiny CNN: the RS-aware variant with its empirical P_a, and the
theory-vs-practice figure (R(x_o), ∂g_σ, plain and RS-aware run) drawn from the same numbers
as its view."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_app
from tests.test_app import page_inputs, start

PAGE = "pages/5_Live_attack.py"
BUDGET = 200


def figures(at) -> list[dict]:
    """The page's plotly figures as JSON dicts."""
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def title(fig: dict) -> str:
    return (fig["layout"].get("title") or {}).get("text") or ""


def config():
    from rsviz.attacks import OracleConfig

    return OracleConfig(sigma=0.05, n=10, budget=BUDGET, seed=0)  # the sidebar's σ and n


@pytest.mark.usefixtures("one_thread")
def test_rs_aware_variant_shows_its_empirical_p_a(app_env):
    from rsviz.views.attack import AttackRequest

    at = make_app(PAGE)
    at.number_input(key="attack_budget_w").set_value(BUDGET).run()
    at.selectbox(key="attack_variant_w").set_value("rs-aware").run()
    start(at, "live_attack", lambda a: any(m.label == "Queries" for m in a.metric))
    model, x, ids = page_inputs()
    trace = AttackRequest(**ids, attack="hsja", config=config(),
                          variant="rs-aware").run(model, x)["trace"]
    shown = {m.label: m.value for m in at.metric}
    assert trace.variant == "rs-aware" and trace.p_a_empirical is not None
    assert shown["Empirical P_a"] == f"{trace.p_a_empirical:.2f}"
    assert shown["Queries"] == f"{trace.queries:,}" and trace.queries <= BUDGET
    assert shown["L2"] == (f"{trace.l2:.4g}" if trace.success else "—")


@pytest.mark.usefixtures("one_thread")
def test_theory_vs_practice_figure_from_its_view(app_env):
    from rsviz.views.rs_aware import TheoryVsPracticeRequest

    at = make_app(PAGE)
    at.number_input(key="attack_budget_w").set_value(BUDGET).run()
    at.number_input(key="tvp_cert_n_w").set_value(100).run()
    at.number_input(key="tvp_votes_w").set_value(20).run()

    def drawn(a) -> bool:
        return any("theory vs practice" in title(f) for f in figures(a))

    start(at, "theory_vs_practice", drawn)
    model, x, ids = page_inputs()
    row = TheoryVsPracticeRequest(**ids, attack="hsja", config=config(), cert_n=100,
                                  votes=20).run(model, x)["row"]
    fig = next(f for f in figures(at) if "theory vs practice" in title(f))
    markers = {t["name"]: t["x"] for t in fig["data"] if t.get("name")}
    for key, name in (("radius", "certified radius R(x_o)"), ("plain", "plain attack"),
                      ("rs_aware", "RS-aware attack"),
                      ("boundary", "∂g_σ along the attack direction")):
        assert 0 < row[key] < float("inf")     # all four measured on this image
        assert markers[name] == pytest.approx([row[key]])
    assert row["p_a_rs_aware"] is not None and row["p_a_plain"] is not None


def test_theory_vs_practice_needs_g():
    from rsviz.attacks import OracleConfig
    from rsviz.errors import ConfigError
    from rsviz.views.rs_aware import TheoryVsPracticeRequest

    with pytest.raises(ConfigError, match="g_"):
        TheoryVsPracticeRequest(model_id="m", image_hash="h", config=OracleConfig(sigma=None))
