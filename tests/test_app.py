"""The app starts, every page runs without an exception, the sidebar drives the pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, make_app

PAGES = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("[0-9]*.py"))


def test_app_runs_without_exception(app_env):
    at = make_app()
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="sb_model").value == "tiny_cnn"
    assert any("Top-5" in s.value for s in at.subheader)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_runs(app_env, page):
    at = make_app(page)
    assert not at.exception, at.exception


def test_missing_weights_shown_as_message(app_env):
    at = make_app()
    at.sidebar.selectbox(key="sb_model").select("resnet50.imagenet1k_v1").run()
    assert not at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "resnet50-0676ba61.pth" in errors and "copy it into" in errors
