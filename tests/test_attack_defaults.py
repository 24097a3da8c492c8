"""Attack hyper-parameters written once (the classes' signatures), the RS-aware variants as
hook overrides of the published classes, one bisection, one revision of the RS-aware change."""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import torch

from rsviz.attacks import REGISTRY, make_attack, run_attack
from rsviz.attacks.base import signature_defaults
from rsviz.attacks.bisection import bisect, bisect_bracket
from rsviz.attacks.hsja import HopSkipJump
from rsviz.attacks.oracle import Oracle, OracleConfig
from rsviz.attacks.rays import RayS
from rsviz.attacks.rs_aware.attacks import (TEST_KEYS, NoiseAware, RSAwareHopSkipJump,
                                            RSAwareRayS)
from rsviz.attacks.rs_aware.noisy_oracle import NoiseAwareOracle, ProbeView
from rsviz.config import RS_AWARE_REVISION
from rsviz.models import Classifier, REGISTRY as MODELS, make_linear_toy, spec_info

SIZE = 8  # d = 192


def linear_oracle(sigma: float | None) -> Oracle:
    """An oracle on the linear toy at the grey image (f, or g_{σ,10} when σ is set)."""
    info = dataclasses.replace(spec_info(MODELS["linear_toy"]), input_size=SIZE, resize=SIZE)
    model = Classifier(make_linear_toy(size=SIZE), info, normalize=False)
    return Oracle(model, torch.full((3, SIZE, SIZE), 0.5), 0,
                  OracleConfig(sigma=sigma, n=10, budget=1000))


def init_defaults(cls: type) -> dict:
    """Keyword defaults of cls.__init__ alone (what the registry must agree with)."""
    return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not p.empty}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_plain_defaults_are_the_signature(name):
    spec = REGISTRY[name]
    assert spec.defaults_for("plain") == init_defaults(spec.factory)
    assert spec.defaults_for() == spec.defaults_for("plain")


def test_published_defaults_are_unchanged():
    """The values the registry listed before it read them from the signatures."""
    assert REGISTRY["hsja"].defaults_for() == {
        "gamma": 1.0, "min_theta": 1.7e-6, "init_num_evals": 100, "max_num_evals": 10_000,
        "first_delta": 0.1, "max_init_tries": 100, "max_step_halvings": 25}
    assert REGISTRY["rays"].defaults_for() == {"lin_search_steps": 10, "tol": 1e-3}
    surfree = REGISTRY["surfree"].defaults_for()
    assert (surfree["BS_gamma"], surfree["theta_max"], surfree["rho"], surfree["basis"]) \
        == (0.01, 30.0, 0.98, "dct")
    test = {"test_level": None, "test_margin": 0.25, "test_error": 0.1, "max_repeats": 7,
            "check_repeats": 10, "push_steps": 4}
    assert set(TEST_KEYS) == set(test)
    assert REGISTRY["hsja"].defaults_for("rs-aware") == {
        **REGISTRY["hsja"].defaults_for(), **test, "probe_scale": 1.0, "bisection_tol": 0.5}
    assert REGISTRY["rays"].defaults_for("rs-aware") == {
        **REGISTRY["rays"].defaults_for(), **test, "tol_sigma": 0.5}
    assert REGISTRY["surfree"].defaults_for("rs-aware") == {**surfree, **test}


def test_signature_defaults_follow_kwargs_into_the_base_class():
    class Base:
        def __init__(self, a: int = 1, b: int = 2) -> None: ...

    class Child(Base):
        def __init__(self, b: int = 20, c: int = 3, **rest) -> None: ...

    class Closed(Base):
        def __init__(self, c: int = 3) -> None: ...

    assert signature_defaults(Child) == {"b": 20, "c": 3, "a": 1}  # the child's b wins
    assert signature_defaults(Closed) == {"c": 3}  # no **kwargs: the base's are not its own
    assert signature_defaults(NoiseAware) == {k: init_defaults(NoiseAware)[k] for k in TEST_KEYS}


def test_make_attack_uses_the_signature_and_the_overrides():
    attack = make_attack("hsja", {"gamma": 2.0, "check_repeats": 8}, variant="rs-aware")
    core = attack.inner
    assert isinstance(core, RSAwareHopSkipJump)
    assert (core.gamma, core.init_num_evals, core.probe_scale) == (2.0, 100, 1.0)
    assert attack.check_repeats == 8 and attack.push_steps == 4
    rays = make_attack("rays", {"tol_sigma": 0.25}, variant="rs-aware").inner
    assert isinstance(rays, RSAwareRayS) and (rays.tol_sigma, rays.tol) == (0.25, 1e-3)


def test_the_noise_aware_view_gets_its_checks_from_the_attack(monkeypatch):
    """ℓ and the final push are written once, as NoiseAware's defaults: the oracle view has no
    default of its own and receives the attack's values (defaults or overrides)."""
    from rsviz.attacks.rs_aware import attacks

    assert not set(init_defaults(NoiseAwareOracle)) & set(TEST_KEYS)
    with pytest.raises(TypeError):
        NoiseAwareOracle(linear_oracle(0.1))
    seen = []

    class Recording(NoiseAwareOracle):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            seen.append((self.check_repeats, self.push_steps))

    monkeypatch.setattr(attacks, "NoiseAwareOracle", Recording)
    oracle = linear_oracle(0.1)  # budget 1 000: room for 4 push steps of ℓ = 8
    next(make_attack("rays", {"check_repeats": 8}, variant="rs-aware").steps(
        oracle, oracle.x_o, torch.Generator().manual_seed(0)))
    assert seen == [(8, signature_defaults(NoiseAware)["push_steps"])]


def test_trace_records_the_defaults_and_the_overrides():
    oracle = linear_oracle(0.1)
    trace = run_attack(oracle.model, oracle.x_o, 0, "rays", oracle.config, 0,
                       params={"tol_sigma": 0.25}, variant="rs-aware", measure_queries=0)
    assert trace.params == {**REGISTRY["rays"].defaults_for("rs-aware"), "tol_sigma": 0.25}


def test_rs_aware_classes_override_hooks_only():
    """No copied loop: the RS-aware HSJA and RayS run the published `steps`."""
    assert issubclass(RSAwareHopSkipJump, HopSkipJump) and issubclass(RSAwareRayS, RayS)
    for cls in (RSAwareHopSkipJump, RSAwareRayS):
        assert "steps" not in vars(cls)
        assert cls.name == cls.__mro__[1].name


def test_hsja_hooks_are_the_papers_against_f_and_sigma_wide_against_g():
    plain, aware = HopSkipJump(), RSAwareHopSkipJump(probe_scale=1.0, bisection_tol=0.5)
    x_o = torch.full((3, SIZE, SIZE), 0.5)
    d = x_o.numel()
    x_far = x_o + 0.5 * torch.ones_like(x_o) / math.sqrt(d)  # at L2 distance 0.5
    on_f, on_g = linear_oracle(None), linear_oracle(0.1)
    for hook, args in (("search_threshold", (x_o, x_far)), ("probe_radius", (3, d, 0.4)),
                       ("iteration_reserve", (x_o, x_far)), ("phase", (2, 50, 0.01, True))):
        assert getattr(aware, hook)(on_f, *args) == getattr(plain, hook)(on_f, *args), hook
    assert aware.probes(on_f) is on_f
    assert aware.search_threshold(on_g, x_o, x_far) == pytest.approx(0.5 * 0.1 / 0.5)
    assert aware.probe_radius(on_g, 3, d, 0.4) == pytest.approx(0.1 * math.sqrt(d))
    assert aware.phase(on_g, 2, 50, 0.01, True) == "iteration 2: 50 probes at δ=0.01"
    assert isinstance(aware.probes(on_g), ProbeView)  # single queries, not tested decisions
    assert RSAwareRayS(tol_sigma=0.5).radius_tolerance(on_g) == pytest.approx(0.05)
    assert RSAwareRayS(tol_sigma=0.5).radius_tolerance(on_f) == RayS().radius_tolerance(on_f)


def test_bisect_bracket_returns_both_ends():
    calls = []
    bad, good = bisect_bracket(lambda t: calls.append(t) or t >= 0.3, 0.0, 1.0, tol=0.0,
                               max_steps=3)
    assert calls == [0.5, 0.25, 0.375] and (bad, good) == (0.25, 0.375)
    assert bisect(lambda t: t >= 0.3, 0.0, 1.0, tol=0.0, max_steps=3) == good


def test_one_revision_of_the_rs_aware_change():
    """The views' keys version the RS-aware runs by RS_AWARE_REVISION, the torch-free constant
    the study's task ids import too; the theory-vs-practice row adds the geometry's revision."""
    import subprocess
    import sys

    from rsviz.views.attack import AttackRequest
    from rsviz.views.rs_aware import GEOMETRY_REVISION, TheoryVsPracticeRequest

    assert AttackRequest.VERSION == str(RS_AWARE_REVISION)
    assert TheoryVsPracticeRequest.VERSION == f"{AttackRequest.VERSION}.{GEOMETRY_REVISION}"
    code = "import sys, rsviz.views.rs_aware; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # the views read it without torch
