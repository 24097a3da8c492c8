"""Pages hold no computation (docs/architecture.md): each page is widgets -> request ->
`view_panel` (or a ui/ panel built on `job_panel`) -> ui/ panels.

Every pages/*.py is parsed with `ast` (nothing is imported or run). A page fails when it
imports torch or the vote sampler (rsviz.smoothing), calls the model, calls a sampler function
(any name rsviz.smoothing exports), runs a request or an engine entry point itself (`.run(...)`,
`run_*`, `compute_*`, `measure*`), or takes f's labels or the measured rate directly; and when
it grows past MAX_LINES.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "pages").glob("*.py"))
MAX_LINES = 100
BANNED_MODULES = ("torch", "rsviz.smoothing")
# model passes the views and ui/ take for the pages: f's labels, top-5, votes at x_adv,
# g_σ at x_o, the sampler's rate (the ETA comes from rsviz.views.base.estimate in view_panel)
BANNED_CALLS = {"top5", "f_label", "votes_at_adv", "check_at_xo", "estimate_rate",
                "measured_rate", "timed_run", "run_cached", "run_view"}
BANNED_PREFIXES = ("run_", "compute_", "measure")
MODEL_NAMES = {"model", "_model"}


def sampler_names() -> set[str]:
    """The names rsviz.smoothing exports (its `__all__`, read without importing it)."""
    tree = ast.parse((ROOT / "rsviz/smoothing/__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("rsviz.smoothing has no __all__")


def _called(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def violations(source: str) -> list[str]:
    """What makes `source` (a page) compute: banned imports and calls, one line each, in the
    order of the source."""
    banned = BANNED_CALLS | sampler_names()
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            modules = []
        found += [(node.lineno, f"imports {m}") for m in modules
                  if any(m == b or m.startswith(b + ".") for b in BANNED_MODULES)]
        if not isinstance(node, ast.Call):
            continue
        name = _called(node)
        if name in MODEL_NAMES:
            found.append((node.lineno, "calls the model"))
        elif name in banned or name.startswith(BANNED_PREFIXES):
            found.append((node.lineno, f"calls {name}"))
        elif name == "run" and isinstance(node.func, ast.Attribute):
            found.append((node.lineno, "runs a request (.run)"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_the_check_catches_computation():
    """Each kind of computation a page once held is flagged; a thin page's calls are not."""
    computing = """
import torch
from rsviz.smoothing import forward_labels
from rsviz.views.base import measured_rate
y = top5(model, x)[0]
labels = forward_labels(model, x[None])
logits = state.model(x[None])
eta = cost.passes / measured_rate(model)
out = request.run(model, x)
trace = run_attack(model, x, y, "hsja", config, 0)
"""
    found = violations(computing)
    assert [f.split(": ", 1)[1] for f in found] == [
        "imports torch", "imports rsviz.smoothing", "calls top5", "calls forward_labels",
        "calls the model", "calls measured_rate", "runs a request (.run)", "calls run_attack"]
    thin = """
import streamlit as st
from ui.jobs import view_panel
config = request_or_stop(lambda: SliceConfig(sigma=0.05))
view_panel("slice", request, model, x, lambda r, fresh: slice_panels(r), "Slice")
st.rerun()
"""
    assert violations(thin) == []


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_holds_no_computation(page):
    assert violations(page.read_text(encoding="utf-8")) == [], page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_is_short(page):
    lines = len(page.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{page.name}: {lines} lines; move rendering into ui/"
