"""Sidebar: the vote sampler's forward engine, its measured rate, and forcing one.

The first use per model and machine measures the engines (docs/engines.md); the sidebar shows
that measurement's steps while it runs, then the chosen engine and its passes/s. A forced
engine that fails the fidelity check is reported, and the fastest accepted one is used.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from rsviz.models import Classifier


def engine_options(model: Classifier) -> list[str]:
    """'auto' and every engine this model and device offer."""
    from rsviz.engines.candidates import candidates

    return ["auto"] + [e.name for e in candidates(model, model.info.input_shape)]


def engine_sidebar(sb: Any, model: Classifier) -> Any:
    """Draw the engine select and status; returns the attached `EngineChoice` (None: eager)."""
    from rsviz.engines import ensure_engine, environment_force, needs_measurement

    options = engine_options(model)
    default = environment_force() or "auto"
    force = sb.selectbox("Forward engine", options,
                         index=options.index(default) if default in options else 0,
                         key="sb_engine",
                         help="auto: the fastest engine whose labels agree with eager fp32 on "
                              "≥ 99.9 % of 512 noisy inputs, measured once per model and "
                              "machine. Forcing one still checks its labels.")
    try:
        if needs_measurement(model, force):
            with sb.status("Choosing the forward engine (once per model and machine)…",
                           expanded=True) as status:
                choice = ensure_engine(model, force, report=status.write)
                status.update(label="Forward engine chosen", state="complete", expanded=False)
        else:
            choice = ensure_engine(model, force)
    except Exception as exc:  # noqa: BLE001 - a failed selection leaves eager fp32
        from rsviz.engines import attach

        attach(model, None, None)
        sb.warning(f"Engine selection failed ({type(exc).__name__}: {exc}); using eager fp32.")
        return None
    _describe(sb, model, force, choice)
    return choice


def _describe(sb: Any, model: Classifier, force: str, choice: Any) -> None:
    from rsviz.views.base import measured_rate

    if choice is None:
        why = "forced" if force == "eager" else "small input: not measured"
        sb.caption(f"Engine: **eager fp32** ({why}), about {measured_rate(model):,.0f} passes/s")
        return
    sb.caption(f"Engine: **{choice.summary()}**")
    if force not in ("auto", choice.name):
        reason = next((r.reason for r in choice.reports if r.name == force), "")
        sb.warning(f"Engine {force} rejected: {reason or 'not usable here'}. "
                   f"Using {choice.name}.")
    rejected = [r for r in choice.rejected() if r.name != force]
    for r in rejected:
        sb.caption(f"Rejected {r.name}: {r.reason}")
