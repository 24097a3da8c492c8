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
    from rsviz.engines import describe_forward
    from rsviz.views.base import measured_rate

    words = describe_forward(model)  # what every result of this model records
    if choice is None:
        why = "forced" if force == "eager" else "small input: not measured"
        sb.caption(f"f runs on **{words}** ({why}), about {measured_rate(model):,.0f} passes/s")
        return
    sb.caption(f"f runs on **{words}**: {choice.rate:.1f} passes/s "
               f"({'forced' if choice.forced else 'measured'})")
    if force not in ("auto", choice.name):
        reason = next((r.reason for r in choice.reports if r.name == force), "")
        sb.warning(f"Engine {force} rejected: {reason or 'not usable here'}. "
                   f"Using {choice.name}.")
    rejected = [r for r in choice.rejected() if r.name != force]
    for r in rejected:
        sb.caption(f"Rejected {r.name}: {r.reason}")


# Widget keys whose defaults come from rsviz.defaults: a preset change resets them.
SIZED_KEYS = ("img_N", "sl_grid", "sl_N", "sl_ns", "sl_mode", "prof_N", "prof_points",
              "prof_attack", "prof_lanczos", "prof_probes", "dich_grid", "dich_N", "dich_trials",
              "attack_budget")
PRESET_LABELS = {"quick": "quick (≤ 45 s here)", "paper": "paper (GPU-sized)",
                 "standard": "standard (fixed)"}


def _reset_sized() -> None:
    store = st.session_state.setdefault("rsviz_persist", {})
    for key in SIZED_KEYS:
        store.pop(key, None)
        st.session_state.pop(key + "_w", None)


def preset() -> str:
    """The preset of the page defaults: the sidebar's, else $RSVIZ_PRESET, else quick."""
    import os

    return st.session_state.get("sb_preset") or os.environ.get("RSVIZ_PRESET", "quick")


def preset_sidebar(sb: Any, model: Classifier) -> None:
    """The 'Page defaults' switch: quick (sized to the measured rate) or the paper's sizes."""
    import os

    from rsviz.defaults import BUDGET_S
    from rsviz.views.base import measured_rate

    options = ["quick", "paper"] + (["standard"] if os.environ.get("RSVIZ_PRESET") ==
                                    "standard" else [])
    default = os.environ.get("RSVIZ_PRESET", "quick")
    chosen = sb.radio("Page defaults", options, horizontal=True, key="sb_preset",
                      index=options.index(default) if default in options else 0,
                      format_func=PRESET_LABELS.get, on_change=_reset_sized,
                      help="quick: every page's default finishes in about "
                           f"{BUDGET_S:.0f} s at this model's measured rate; paper: the "
                           "paper's sizes (minutes to hours on a CPU). Switching resets the "
                           "pages' sized inputs.")
    if chosen == "quick":
        sb.caption(f"Defaults sized for ≤ {BUDGET_S:.0f} s at "
                   f"{measured_rate(model):,.1f} passes/s.")


def sized(page: str, model: Classifier, **target: Any) -> dict:
    """The default setting of a page for this model's measured rate and the chosen preset."""
    from rsviz.defaults import VIEW_OF_PAGE, page_defaults
    from rsviz.engines import forward_of
    from rsviz.views.base import measured_rate, view_factor

    factor, runs = view_factor(VIEW_OF_PAGE.get(page, page), model, forward_of(model).tag())
    return page_defaults(page, measured_rate(model), preset(),
                         gpu=model.device.type == "cuda", overhead=factor if runs else None,
                         **target)
