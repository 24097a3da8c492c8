"""View requests: cache keys, costs known before running, one disk cache for CLI and app."""

from __future__ import annotations

import contextlib
import io
import json

import pytest

from rsviz.views.base import Cost, inputs, run_cached

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def coffee(tiny_model):
    from rsviz.views.inputs import load_image

    x, _ = load_image("sample:coffee", tiny_model)
    return x


def votes_request(model, x, **changes):
    from rsviz.views.image import VotesRequest

    params = dict(sigma=0.25, n_samples=200, n0=20, seed=0, n=10, alpha=0.001)
    return VotesRequest(**inputs(model, x), **{**params, **changes})


def test_key_ignores_summary_fields_only(tiny_model, coffee):
    base = votes_request(tiny_model, coffee)
    assert base.key() == votes_request(tiny_model, coffee, n=5, alpha=0.01, batch_size=7).key()
    for change in ({"sigma": 0.5}, {"n_samples": 300}, {"n0": 10}, {"seed": 1},
                   {"precision": "bf16"}):
        assert base.key() != votes_request(tiny_model, coffee, **change).key(), change
    # "auto" is settled on the forward identity (eager fp32 here): the same key as explicit fp32
    assert base.precision == "fp32" and base.forward.startswith("cpu/eager/fp32/")
    assert base.key() == votes_request(tiny_model, coffee, precision="fp32").key()
    other = votes_request(tiny_model, coffee.flip(-1))
    assert other.key() != base.key()


def test_key_changes_with_view_version(tiny_model, coffee, monkeypatch):
    from rsviz.views.image import VotesRequest

    request = votes_request(tiny_model, coffee)
    before = request.key()
    monkeypatch.setattr(VotesRequest, "VERSION", "test")
    assert request.key() != before


def test_exact_costs_match_the_passes_spent(tiny_model, coffee):
    from rsviz.certification import CertificationConfig
    from rsviz.views.certification import CertifyRequest

    request = votes_request(tiny_model, coffee)
    assert request.cost() == Cost(220, "exact")
    sampled, cached = run_cached(request, tiny_model, coffee)
    assert not cached and sampled["forward_passes"] == 220
    again, cached = run_cached(request, tiny_model, coffee)
    assert cached and (again["labels"] == sampled["labels"]).all()
    cert = CertifyRequest(**inputs(tiny_model, coffee),
                          config=CertificationConfig(sigmas=(0.25, 0.5), n0=16, n=64))
    rows, _ = run_cached(cert, tiny_model, coffee)
    # 1 pass for f's label, then per σ n0 + n votes and f's label (counted in the row)
    assert [r.forward_passes for r in rows] == [81, 81]
    assert cert.cost().passes == 1 + sum(r.forward_passes for r in rows)


def test_attack_cost_is_an_upper_bound(tiny_model, coffee):
    from rsviz.attacks import OracleConfig
    from rsviz.views.attack import AttackRequest

    request = AttackRequest(**inputs(tiny_model, coffee), attack="hsja",
                            config=OracleConfig(sigma=0.25, n=5, budget=60, seed=0))
    cost = request.cost()
    assert cost.kind == "at most" and cost.passes == 1 + 60 * 5
    result, _ = run_cached(request, tiny_model, coffee)
    assert 0 < result["trace"].forward_passes <= cost.passes - 1


def test_request_refuses_another_model_or_image(tiny_model, linear_model, coffee):
    from rsviz.errors import ConfigError

    request = votes_request(tiny_model, coffee)
    with pytest.raises(ConfigError):
        run_cached(request, linear_model, coffee)
    with pytest.raises(ConfigError):
        run_cached(request, tiny_model, coffee.flip(-1))


def test_bad_parameters_are_one_clear_error(tiny_model, coffee):
    from rsviz.errors import ConfigError

    with pytest.raises(ConfigError, match="exceeds N"):
        votes_request(tiny_model, coffee, n=500)


def cli(*argv: str) -> tuple[dict, str]:
    from rsviz.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main([*argv, "--json"]) == 0, err.getvalue()
    return json.loads(out.getvalue()), err.getvalue()


def test_cli_reads_and_writes_the_shared_disk_cache(tiny_model, coffee):
    """A command stores its view under the request's key; the same request (as a page builds
    it) finds it there, and a second command loads it instead of recomputing."""
    from rsviz.cache import default_cache

    argv = ("smooth", "sample:coffee", "--model", "tiny_cnn", "--device", "cpu",
            "--sigma", "0.25", "--samples", "200", "--n0", "20", "--n", "10")
    first, err = cli(*argv)
    assert "disk cache" not in err
    request = votes_request(tiny_model, coffee)
    assert default_cache().get(request.key()) is not None
    second, err = cli(*argv)
    assert "loaded from the disk cache" in err
    assert second["p_hat"] == first["p_hat"] and second["g_draws"] == first["g_draws"]


SLICE_ARGS = ("slice", "sample:coffee", "--model", "tiny_cnn", "--device", "cpu", "--grid", "5",
              "--n", "5", "--samples", "10", "--no-png")


def small_slice_page(at):
    at.number_input(key="sl_grid_w").set_value(5).run()
    at.multiselect(key="sl_ns_w").set_value([5]).run()
    at.number_input(key="sl_N_w").set_value(10).run()
    return at


def test_the_app_opens_a_view_the_cli_computed(app_env, tmp_path):
    from tests.conftest import make_app

    computed, _ = cli(*SLICE_ARGS, "--out", str(tmp_path / "slice"))
    at = small_slice_page(make_app("pages/2_Boundary_slice.py"))
    assert not at.exception, at.exception
    assert not [b for b in at.button if b.key == "start_slice"]  # no Start: already there
    assert f"{computed['forward_passes']:,} forward passes" in at.success[0].value


def test_the_cli_opens_a_view_the_app_computed(app_env, tmp_path):
    from tests.conftest import make_app, run_until

    at = small_slice_page(make_app("pages/2_Boundary_slice.py"))
    at.button(key="start_slice").click().run()
    run_until(at, lambda a: bool(a.success) or bool(a.exception), timeout=60)
    assert at.success, [e.value for e in at.error]
    shown, err = cli(*SLICE_ARGS, "--out", str(tmp_path / "slice"))
    assert "loaded from the disk cache" in err
    assert f"{shown['forward_passes']:,} forward passes" in at.success[0].value


def test_certify_request_has_one_source_of_settings(tiny_model, coffee):
    """CertifyRequest carries a CertificationConfig; batch size and name leave the key alone."""
    from dataclasses import replace

    from rsviz.certification import CertificationConfig
    from rsviz.errors import ConfigError
    from rsviz.views.certification import CertifyRequest

    config = CertificationConfig(sigmas=(0.25,), n0=16, n=64)
    request = CertifyRequest(**inputs(tiny_model, coffee), config=config, name="a")
    assert request.key() == replace(request, name="b",
                                    config=replace(config, batch_size=7)).key()
    assert request.key() != replace(request, config=replace(config, n=65)).key()
    assert request.summary(request.run(tiny_model, coffee))["n"] == 64
    with pytest.raises(ConfigError):
        CertificationConfig(sigmas=(0.25,), n0=0)


def test_estimates_learn_the_views_own_factor_here(tiny_model, coffee, monkeypatch):
    """Before any run the prior; after runs, the median of their actual ÷ (passes ÷ rate),
    per view, model and forward identity; runs under MIN_TIMED_S teach nothing."""
    from rsviz.views import base

    request = votes_request(tiny_model, coffee)
    rate = request.cost().passes / 10.0  # a 10 s unit, whatever this CPU's speed
    monkeypatch.setattr(base, "measured_rate", lambda model, precision="auto": rate)
    first = base.estimate(request, tiny_model)
    assert first.runs == 0 and first.factor == base._prior("image-votes")
    assert first.seconds == pytest.approx(10.0 * first.factor)
    base.record_timing(request, tiny_model, base.MIN_TIMED_S / 2)  # too short: ignored
    assert base.estimate(request, tiny_model).runs == 0
    for elapsed in (20.0, 30.0, 5000.0):  # ratios 2, 3 and an outlier the filter drops
        base.record_timing(request, tiny_model, elapsed)
    learned = base.estimate(request, tiny_model)
    assert learned.runs == 2 and learned.factor == pytest.approx(2.5)
    assert learned.seconds == pytest.approx(25.0) and "learned from 2 runs" in learned.describe()
    # another view keeps its own prior
    slice_factor, runs = base.view_factor("slice", tiny_model, request.forward)
    assert runs == 0 and slice_factor == base._prior("slice")
