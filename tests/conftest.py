"""Shared fixtures: an isolated disk cache per test, offline mode, tiny models, AppTest helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("RSVIZ_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own empty disk cache."""
    monkeypatch.setenv("RSVIZ_CACHE_DIR", str(tmp_path / "cache"))
    yield tmp_path / "cache"


@pytest.fixture
def linear_model():
    from rsviz.models import load_model

    return load_model("linear_toy")


@pytest.fixture
def ball_model():
    from rsviz.models import load_model

    return load_model("ball_toy")


@pytest.fixture
def tiny_model():
    from rsviz.models import load_model

    return load_model("tiny_cnn")


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread: thread synchronisation dominates their ops
    (badly so on a busy CPU). Use with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fresh_streamlit():
    """Clear Streamlit's resource/data caches before and after a test (fresh job manager)."""
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()
    yield
    st.cache_resource.clear()
    st.cache_data.clear()


@pytest.fixture
def app_env(monkeypatch, fresh_streamlit):
    """AppTest on the tiny CNN and a sample photo (fast on CPU)."""
    monkeypatch.setenv("RSVIZ_MODEL", "tiny_cnn")
    # eager fp32: no minute-long engine measurement in the sidebar for a large checkpoint
    # (tests/test_ui_engines.py drops it to test auto)
    monkeypatch.setenv("RSVIZ_ENGINE", "eager")
    # the pages' standard defaults, not sized to this machine's (load-dependent) rate
    monkeypatch.setenv("RSVIZ_PRESET", "standard")
    monkeypatch.chdir(ROOT)
    yield


def run_until(at, condition, timeout: float = 30.0, every: float = 0.5):
    """Rerun an AppTest until `condition(at)` holds (a background job finished) or `timeout`
    seconds pass; returns the AppTest. The caller asserts what it expects afterwards."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(every)
        at.run()
        if condition(at):
            break
    return at


def make_app(page: str | None = None, timeout: float = 60):
    """An AppTest of app.py, optionally switched to a page file (e.g. 'pages/2_Boundary_slice.py')."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    return at
