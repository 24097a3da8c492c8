"""Download buttons under every figure, and a figure pack per page.

`export_panel(fig, name, data, params, key)` offers the interactive HTML, the figure bundle
(figure + data + parameters, JSON, re-creatable with `python -m rsviz figure`), the data as
CSV when it is a table, and PNG/SVG/PDF in a popover (size preset, background, DPI). Every
file is produced only when its button is clicked (deferred `st.download_button` data), so a
page rerun costs no export. `page_pack_button(...)` offers one zip with every figure that
export_panel showed during the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from rsviz.figures.export import (MIME, bundle_json, data_to_csv, export_figure, figure_pack,
                                  safe_name, standard_params, static_export_available)
from rsviz.figures.theme import BACKGROUNDS, PRESETS, resolve_preset

SETTINGS_KEY = "rsviz_export_settings"
REGISTRY_KEY = "rsviz_export_registry"
DPI_CHOICES = (72, 96, 150, 200, 300, 600)
_DEFAULTS = {"preset": "slide 16:9", "background": "light", "dpi": 150}


def _settings() -> dict[str, Any]:
    """Export settings shared by every panel of the session (the last choice is the default)."""
    return st.session_state.setdefault(SETTINGS_KEY, dict(_DEFAULTS))


def _remember(setting: str, widget_key: str) -> None:
    _settings()[setting] = st.session_state[widget_key]


def _registry() -> dict[str, dict]:
    return st.session_state.setdefault(REGISTRY_KEY, {"current": {}, "last": {}})


def _app_params(params: dict[str, Any] | None) -> Callable[[], dict[str, Any]]:
    """A thunk giving the sidebar selection (model, image hash, σ, n, ...) under `params`."""
    from ui.common import STATE_KEY

    state = st.session_state.get(STATE_KEY)
    own = dict(params or {})

    def build() -> dict[str, Any]:
        base: dict[str, Any] = {}
        if state is not None:
            base = {"sigma": state.sigma, "n": state.n, "device": str(state.device)}
            if state.model is not None:
                from rsviz.engines import describe_forward, forward_of

                base.update(model=state.model.info.name, model_id=state.model_id,
                            forward=forward_of(state.model).tag(),
                            engine=describe_forward(state.model))
            if state.image is not None:
                base["image"] = state.image.name
            if state.x is not None:
                base["image_hash"] = state.image_hash
        return {**base, **own}

    return build


def _looks_tabular(data: Any) -> bool:
    """Cheap check (no conversion) that data_to_csv will probably succeed."""
    if isinstance(data, list):
        return bool(data) and isinstance(data[0], dict)
    if isinstance(data, dict) and data:
        return all(hasattr(v, "__len__") and not isinstance(v, (str, dict)) for v in data.values())
    return False


def export_panel(fig: go.Figure, name: str, data: dict[str, Any] | None = None,
                 params: dict[str, Any] | None = None, key: str | None = None) -> None:
    """Download buttons for one figure: HTML, bundle JSON, CSV, and PNG/SVG/PDF on demand.

    Args:
        fig: the figure as shown.
        name: figure name (file names, metadata).
        data: the data behind the figure (a dict of columns or a list of rows gives a CSV).
        params: the parameters that produced it; the sidebar's model, image hash, σ and n are
            added unless given (a page-specific σ or the seed belong here).
        key: unique widget key prefix on the page (default: derived from name).
    """
    key = key or safe_name(name)
    stem = safe_name(name)
    get_params = _app_params(params)
    registry = _registry()
    entry = {"name": name, "fig": fig, "data": data, "params": get_params}
    registry["current"][key] = entry
    registry["last"][key] = entry
    ok, reason = static_export_available()
    if not ok:
        st.info(f"PNG/SVG/PDF export is unavailable: {reason} The interactive HTML and the "
                "data (JSON/CSV) can still be downloaded.", icon=":material/info:")

    row = st.container(horizontal=True, gap="small")
    if ok:
        with row.popover("PNG · SVG · PDF", icon=":material/image:"):
            _static_buttons(fig, name, stem, data, get_params, key)
    row.download_button("HTML", lambda: export_figure(fig, "html", None, metadata=get_params(),
                                                      data=data, name=name),
                        file_name=f"{stem}.html", mime=MIME["html"], key=f"dl_html_{key}",
                        on_click="ignore", icon=":material/download:",
                        help="Interactive figure; plotly.js embedded, works offline.")
    row.download_button("Data + parameters (JSON)",
                        lambda: bundle_json(fig, data, get_params(), name),
                        file_name=f"{stem}.json", mime=MIME["json"], key=f"dl_json_{key}",
                        on_click="ignore", icon=":material/download:",
                        help="Figure bundle: the figure, its data and the parameters that "
                             "produced it. Rebuild with `python -m rsviz figure FILE.json`.")
    if _looks_tabular(data):
        row.download_button("Data (CSV)", lambda: data_to_csv(data) or "",
                            file_name=f"{stem}.csv", mime=MIME["csv"], key=f"dl_csv_{key}",
                            on_click="ignore", icon=":material/download:")


def _static_buttons(fig: go.Figure, name: str, stem: str, data: Any,
                    get_params: Callable[[], dict[str, Any]], key: str) -> None:
    settings = _settings()
    presets = list(PRESETS)
    preset = st.selectbox("Size", presets, index=presets.index(settings["preset"]),
                          key=f"exp_preset_{key}", on_change=_remember,
                          args=("preset", f"exp_preset_{key}"))
    backgrounds = list(BACKGROUNDS)
    background = st.radio("Background", backgrounds, horizontal=True,
                          index=backgrounds.index(settings["background"]),
                          key=f"exp_bg_{key}", on_change=_remember,
                          args=("background", f"exp_bg_{key}"))
    dpi = st.select_slider("PNG resolution (DPI)", DPI_CHOICES, value=settings["dpi"],
                           key=f"exp_dpi_{key}", on_change=_remember,
                           args=("dpi", f"exp_dpi_{key}"))
    p = resolve_preset(preset)
    scale = dpi / 96
    st.caption(f"{p.inches[0]:.2f} × {p.inches[1]:.2f} in · PNG "
               f"{round(p.width * scale)} × {round(p.height * scale)} px · parameters and "
               "data embedded in the file metadata")
    buttons = st.container(horizontal=True, gap="small")
    for fmt in ("png", "svg", "pdf"):
        buttons.download_button(
            fmt.upper(), _deferred(fig, fmt, preset, background, dpi, data, get_params, name),
            file_name=f"{stem}.{fmt}", mime=MIME[fmt], key=f"dl_{fmt}_{key}",
            on_click="ignore", icon=":material/download:")


def _deferred(fig: go.Figure, fmt: str, preset: str, background: str, dpi: int, data: Any,
              get_params: Callable[[], dict[str, Any]], name: str) -> Callable[[], bytes]:
    """The export, run only when the download button is clicked (on Streamlit's thread)."""
    def run() -> bytes:
        return export_figure(fig, fmt, preset, background, dpi=dpi if fmt == "png" else None,
                             metadata=get_params(), data=data, name=name)
    return run


def page_pack_button(name: str = "figures", key: str = "rsviz_page_pack") -> None:
    """One zip with every figure export_panel showed in this run (call at the end of a page).

    The zip holds PNG, SVG, PDF (when available), HTML, bundle JSON and CSV per figure, with
    the export settings last chosen in any panel.
    """
    registry = _registry()
    registry["last"], registry["current"] = registry["current"], {}
    entries = registry["last"]  # figures redrawn later by a fragment update this same dict
    if not entries:
        return
    settings = _settings()
    ok, reason = static_export_available()

    def build() -> bytes:
        snapshot = list(entries.values())
        return figure_pack({e["name"]: e["fig"] for e in snapshot},
                           {e["name"]: e["data"] for e in snapshot},
                           {e["name"]: standard_params(e["params"](), e["name"])
                            for e in snapshot},
                           preset=settings["preset"], background=settings["background"],
                           dpi=settings["dpi"], title=f"rsviz — {name}")

    formats = "PNG, SVG, PDF, HTML, JSON, CSV" if ok else "HTML, JSON, CSV (no static export)"
    st.download_button(f"Figure pack (zip, {len(entries)} figure{'s' * (len(entries) > 1)})",
                       build, file_name=f"rsviz_{safe_name(name)}.zip", mime=MIME["zip"],
                       key=key, on_click="ignore", icon=":material/folder_zip:",
                       help=f"Every figure of this page as {formats}, with "
                            f"{settings['preset']} size and {settings['background']} "
                            "background (change them in any figure's PNG · SVG · PDF menu).")
