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


@pytest.mark.usefixtures("one_thread")
def test_default_run_compares_f_and_g_on_one_chart(app_env):
    """The page's default: the same attack against f and g_{σ,n}, both curves on one chart,
    each run cached alone (the CLI's `rsviz attack` opens either at once)."""
    from rsviz.cache import default_cache
    from rsviz.views.attack import CompareRequest

    at = make_app(PAGE)
    assert at.radio(key="attack_target_w").value == "both"
    at.number_input(key="attack_budget_w").set_value(BUDGET).run()
    start(at, "live_attack", lambda a: any("Same attack and seed" in c.value
                                           for c in a.caption))
    model, x, ids = page_inputs()
    request = CompareRequest(**ids, attack="hsja", config=config())
    runs = request.runs()
    assert runs["f"].config.sigma is None and runs["g"].config.sigma == 0.05
    # equal compute: f gets n queries (one pass each) per query on g (up to n passes)
    assert runs["f"].config.budget == runs["g"].config.n * BUDGET
    for sub in runs.values():  # each run was stored under its own key
        assert default_cache().get(sub.key()) is not None
    curve = next(f for f in figures(at) if f["layout"]["yaxis"]["title"]["text"].startswith("L2"))
    names = [t["name"] for t in curve["data"]]
    assert len(names) == 2 and any("· f ·" in n for n in names)
    assert any("g(σ=0.05, n=10)" in n for n in names)
    assert request.cost().passes == sum(r.cost().passes for r in runs.values())


def test_cli_compare_prints_f_and_g(capsys):
    from rsviz.cli import main

    code = main(["attack", "sample:coffee", "--model", "tiny_cnn", "--device", "cpu",
                 "--engine", "eager", "--sigma", "0.05", "--budget", "60", "--compare",
                 "--f-budget", "120", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["compare"]) == {"f", "g"}
    assert out["compare"]["f"]["config"]["budget"] == 120
    assert out["compare"]["g"]["config"]["budget"] == 60
    assert out["compare"]["f"]["oracle"] == "undefended f"
    assert "σ=0.05" in out["compare"]["g"]["oracle"]
    assert main(["attack", "sample:coffee", "--model", "tiny_cnn", "--compare"]) != 0  # no σ


def test_the_compare_gives_f_equal_compute_up_to_the_cap():
    """f's budget in a comparison: n × g's budget (a query of f is one pass, one of g up to
    n), capped at COMPARE_F_BUDGET_CAP; an explicit f_budget wins."""
    from rsviz.attacks import OracleConfig
    from rsviz.views.attack import COMPARE_F_BUDGET_CAP, CompareRequest, compare_f_budget

    ids = {"model_id": "m", "image_hash": "h"}
    assert compare_f_budget(OracleConfig(sigma=0.05, n=10, budget=150)) == 1500
    assert compare_f_budget(OracleConfig(sigma=0.05, n=50, budget=2000)) == COMPARE_F_BUDGET_CAP
    runs = CompareRequest(**ids, config=OracleConfig(sigma=0.05, n=10, budget=150),
                          f_budget=40).runs()
    assert runs["f"].config.budget == 40 and runs["g"].config.budget == 150
    # the key holds the number that runs, not the rule: the rule's result equals it spelled out
    implicit = CompareRequest(**ids, config=OracleConfig(sigma=0.05, n=10, budget=150))
    explicit = CompareRequest(**ids, config=OracleConfig(sigma=0.05, n=10, budget=150),
                              f_budget=1500)
    assert implicit.f_budget == 1500 and implicit == explicit  # every keyed field equal
