"""Sidebar engine: shows the attached engine and its rate, forcing one, a rejection message."""

from __future__ import annotations

import pytest

from tests.conftest import make_app
from tests.test_engines import Permuted


def captions(at) -> str:
    return "\n".join(c.value for c in at.sidebar.caption)


@pytest.fixture
def with_permuted(monkeypatch):
    """The real candidates plus an engine whose labels are always wrong."""
    from rsviz.engines import candidates as module  # the submodule
    from rsviz.engines import select

    real = module.candidates

    def more(model, shape):
        return [*real(model, shape), Permuted(model, shape)]

    monkeypatch.setattr(module, "candidates", more)
    monkeypatch.setattr(select, "candidates", more)


def test_sidebar_shows_and_forces_the_engine(app_env, with_permuted, monkeypatch):
    monkeypatch.delenv("RSVIZ_ENGINE")  # app_env forces eager; the sidebar's default is auto
    at = make_app()
    assert not at.exception, at.exception
    engine = at.sidebar.selectbox(key="sb_engine")
    assert engine.value == "auto" and "openvino" in engine.options
    assert "f runs on **eager torch fp32, CPU** (small input: not measured)" in captions(at)

    engine.select("eager_nchw").run()
    assert not at.exception, at.exception
    assert "f runs on **eager torch (NCHW) fp32, batch " in captions(at)
    assert "(forced)" in captions(at)
    assert not at.sidebar.warning
    status = at.sidebar.status[0]  # the measurement's steps, shown while it runs
    assert status.label == "Forward engine chosen"
    assert "trying engine eager_nchw" in "\n".join(m.value for m in status.markdown)

    at.sidebar.selectbox(key="sb_engine").select("permuted").run()
    assert not at.exception, at.exception
    warnings = [w.value for w in at.sidebar.warning]
    assert len(warnings) == 1 and "Engine permuted rejected: labels agree" in warnings[0]
    assert "Using eager" in warnings[0]

    at.sidebar.selectbox(key="sb_engine").select("auto").run()
    assert "small input: not measured" in captions(at) and not at.sidebar.warning


def test_sidebar_follows_the_forced_environment(app_env):
    at = make_app()  # app_env sets RSVIZ_ENGINE=eager
    assert at.sidebar.selectbox(key="sb_engine").value == "eager"
    assert "f runs on **eager torch fp32, CPU** (forced)" in captions(at)


def test_page_defaults_follow_the_rate_and_the_preset(app_env, monkeypatch):
    from rsviz.defaults import page_defaults
    from rsviz.views import base

    monkeypatch.delenv("RSVIZ_PRESET")  # app_env fixes the standard defaults
    monkeypatch.setattr(base, "measured_rate", lambda model, precision="auto": 10.0)
    at = make_app("pages/2_Boundary_slice.py")
    assert not at.exception, at.exception
    assert at.sidebar.radio(key="sb_preset").value == "quick"
    assert "Defaults sized for ≤ 45 s at 10.0 passes/s." in captions(at)
    quick = page_defaults("slice", 10.0)
    assert at.number_input(key="sl_grid_w").value == quick["grid"] < 17
    assert at.number_input(key="sl_N_w").value == quick["n_samples"]
    assert at.radio(key="sl_mode_w").value == "dense"
    notes = [c.value for c in at.caption if c.value.startswith("Estimated cost")]
    assert notes and "at the measured 10 passes/s" in notes[0], notes

    at.sidebar.radio(key="sb_preset").set_value("paper").run()
    assert not at.exception, at.exception
    assert at.number_input(key="sl_grid_w").value == 201
    assert at.radio(key="sl_mode_w").value == "adaptive"
