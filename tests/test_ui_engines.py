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
    from rsviz.engines import candidates as module
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
    assert "Engine: **eager fp32** (small input: not measured)" in captions(at)

    engine.select("eager_nchw").run()
    assert not at.exception, at.exception
    assert "Engine: **eager_nchw:" in captions(at) and "(forced)" in captions(at)
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
    assert "Engine: **eager fp32** (forced)" in captions(at)
