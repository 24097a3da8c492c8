"""Pages hold no computation (docs/architecture.md): each page is widgets -> request ->
`view_panel` (or a ui/ panel built on `job_panel`) -> ui/ panels.

Every pages/*.py is parsed with `ast` (nothing is imported or run). A page fails when it
imports torch or the vote sampler (rsviz.smoothing), calls the model, calls a sampler function
(any name rsviz.smoothing exports), runs a request or an engine entry point itself (`.run(...)`,
`run_*`, `compute_*`, `measure*`), or takes f's labels or the measured rate directly; and when
it grows past MAX_LINES.

The ui/ modules that only draw a view's result (DRAWING_UI) are held to the same rule for the
engine: a module fails when it imports torch, the vote sampler or the theory (rsviz.smoothing,
rsviz.theory), or calls any name either exports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "pages").glob("*.py"))
ON_IMAGE = [p for p in PAGES if p.name[0] in "12345"]  # pages computing on the sidebar's image
MAX_LINES = 100
BANNED_MODULES = ("torch", "rsviz.smoothing")
# model passes the views and ui/ take for the pages: f's labels, top-5, votes at x_adv,
# g_σ at x_o, the sampler's rate (the ETA comes from rsviz.views.base.estimate in view_panel)
BANNED_CALLS = {"top5", "f_label", "votes_at_adv", "check_at_xo", "estimate_rate",
                "measured_rate", "timed_run", "run_cached", "run_view"}
BANNED_PREFIXES = ("run_", "compute_", "measure")
MODEL_NAMES = {"model", "_model"}
# ui/ modules that draw what rsviz.views returns (rsviz.views.image.page_details,
# rsviz.views.slice.point_labels) and derive nothing from votes or the model themselves
DRAWING_UI = [ROOT / "ui/votes.py", ROOT / "ui/slices.py"]
ENGINE_MODULES = ("torch", "rsviz.smoothing", "rsviz.theory")


def sampler_names() -> set[str]:
    """The names rsviz.smoothing exports (its `__all__`, read without importing it)."""
    tree = ast.parse((ROOT / "rsviz/smoothing/__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("rsviz.smoothing has no __all__")


def theory_names() -> set[str]:
    """The functions rsviz.theory defines (read without importing it)."""
    tree = ast.parse((ROOT / "rsviz/theory.py").read_text(encoding="utf-8"))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    return [node.module or ""] if isinstance(node, ast.ImportFrom) else []


def _within(module: str, banned: tuple[str, ...]) -> bool:
    return any(module == b or module.startswith(b + ".") for b in banned)


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
        found += [(node.lineno, f"imports {m}") for m in _imported(node)
                  if _within(m, BANNED_MODULES)]
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


@pytest.mark.parametrize("page", ON_IMAGE, ids=lambda p: p.stem)
def test_pages_on_one_image_share_one_preamble(page):
    """Pages 1–5 compute on the sidebar's model and image: they take them (and the g_σ check)
    from ui.common.page_inputs, not from a copy of its steps."""
    called = {_called(node) for node in ast.walk(ast.parse(page.read_text(encoding="utf-8")))
              if isinstance(node, ast.Call)}
    assert "page_inputs" in called and not called & {"current", "require_ready"}, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_is_short(page):
    lines = len(page.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{page.name}: {lines} lines; move rendering into ui/"


def engine_uses(source: str) -> list[str]:
    """What makes `source` (a ui/ module that should only draw) derive numbers itself: imports
    of ENGINE_MODULES and calls of the names rsviz.smoothing exports or rsviz.theory defines,
    one line each, in the order of the source."""
    banned = sampler_names() | theory_names()
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        found += [(node.lineno, f"imports {m}") for m in _imported(node)
                  if _within(m, ENGINE_MODULES)]
        if isinstance(node, ast.Call) and _called(node) in banned:
            found.append((node.lineno, f"calls {_called(node)}"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_the_ui_check_catches_derivations():
    """What ui/votes.py and ui/slices.py once computed is flagged; drawing a view's output is
    not."""
    computing = """
import torch
from rsviz.smoothing import VoteRecord, forward_labels, make_generator
from rsviz.theory import theory_summary
votes = VoteRecord(labels[None], 10, sigma)
exact = [float(smoothing.prob_wrong_binomial(p_hat, k)) for k in ns]
theory = theory_summary(n, p_a, sigma, None)
generator = make_generator(seed, "cpu")
labels = forward_labels(model, torch.stack([img, noisy]))
"""
    assert [f.split(": ", 1)[1] for f in engine_uses(computing)] == [
        "imports torch", "imports rsviz.smoothing", "imports rsviz.theory", "calls VoteRecord",
        "calls prob_wrong_binomial", "calls theory_summary", "calls make_generator",
        "calls forward_labels"]
    drawing = """
from rsviz.views.image import page_details
details = page_details(sampled, summary, p_a, n_show)
fig = prob_wrong_figure(curve["n"], curve["binomial"], curve["empirical"], curve["draws"])
shown = _point_labels(request.key(), points, sigma, seed, result, model, x)
"""
    assert engine_uses(drawing) == []


@pytest.mark.parametrize("module", DRAWING_UI, ids=lambda p: p.stem)
def test_drawing_ui_derives_nothing(module):
    assert engine_uses(module.read_text(encoding="utf-8")) == [], module.name
