"""Panels of the "Boundary slice" page: the label maps, P[adversarial], images at points.

Everything is drawn from a finished slice (rsviz.views.slice); the images at chosen points and
their labels come from `rsviz.views.slice.point_labels`, cached here per slice and points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from rsviz.figures.slices import adversarial_figure, label_maps_figure, samples_figure
from rsviz.images import to_pil
from rsviz.progress import format_eta
from rsviz.views.slice import passes_note as shared_passes_note
from rsviz.views.slice import point_labels
from ui.export import export_panel


def passes_note(result: Any, config: Any) -> str:
    """The caption's words on the passes spent (`rsviz.views.slice.passes_note`, shared with
    the CLI)."""
    return shared_passes_note(result.forward_passes, result.dense_passes, config.mode)


def slice_panels(result: Any, request: Any, model: Any, x: Any, params: dict) -> None:
    """Everything drawn from a finished slice (the result of the SliceRequest `request`)."""
    config, summary = request.config, result.summary()
    st.success(f"{result.forward_passes:,} forward passes ({passes_note(result, config)}) in "
               f"{format_eta(result.seconds)}; y = g_σ(x_o) = {summary['y_name']}, "
               f"extent ±{result.extent:g} L2.")
    fig = label_maps_figure(result)
    event = st.plotly_chart(fig, key="sl_chart", on_select="rerun", selection_mode="points")
    inferred = {n: 1 - float(m.mean()) for n, m in result.draw_exact.items()}
    if any(inferred.values()):
        st.caption("g_σ,n realisations inferred (approximate: fewer than n votes "
                   "were not all drawn) at " + ", ".join(f"{v:.0%} of the points for n = {n}"
                                                         for n, v in inferred.items() if v)
                   + "; elsewhere they are exact draws. Tick 'Exact realisations everywhere' "
                     "for exact draws at every point.")
    maps = {"u": result.u, "v": result.v, "f_labels": result.f_labels,
            "g_labels": result.g_labels, "p_y": result.p_y,
            **{f"g_n{n}": m for n, m in result.draws.items()}}
    params = {**params, "extent_used": result.extent}
    export_panel(fig, "boundary_slice", {k: np.asarray(v).tolist() for k, v in maps.items()},
                 params, key="sl_labels")
    adv = adversarial_figure(result)
    st.plotly_chart(adv, key="sl_adv")
    export_panel(adv, "boundary_slice_p_adv",
                 {f"p_adv_n{n}": result.p_adversarial(n).tolist() for n in config.ns},
                 params, key="sl_adv")
    with st.expander("Where the forward passes went"):
        st.plotly_chart(samples_figure(result), key="sl_samples")
    picked = []
    selection = getattr(event, "selection", None) or {}
    for point in (selection.get("points", []) if isinstance(selection, dict) else []):
        if point.get("x") is not None and point.get("y") is not None:
            picked.append((float(point["x"]), float(point["y"])))
    thumbnails(result, request, model, x, picked)


@st.cache_data(show_spinner=False, max_entries=32)
def _point_labels(key: str, points: tuple, sigma: float, seed: int, _result: Any, _model: Any,
                  _x: Any) -> list[dict]:
    return point_labels(_result, _model, _x, points, sigma, seed)


def thumbnails(result: Any, request: Any, model: Any, x: Any,
               picked: list[tuple[float, float]]) -> None:
    """Images (and one noisy sample) at chosen points of the slice (`point_labels`, once per
    slice and list of points)."""
    st.subheader("Images at chosen points")
    st.caption("Click a point of the label maps to add it here (or type u, v). Each point "
               "shows x(u, v) and one noisy sample x(u, v) + σN, with f's label.")
    a, b, _ = st.columns([1, 1, 2])
    u = a.number_input("u", value=0.0, format="%.4g", key="sl_pick_u")
    v = b.number_input("v", value=0.0, format="%.4g", key="sl_pick_v")
    points = [(name, lu, lv) for name, lu, lv in result.landmarks]
    points += [("clicked", pu, pv) for pu, pv in picked[-3:]]
    if (u, v) != (0.0, 0.0):
        points.append(("typed", float(u), float(v)))
    config, name_of = request.config, model.info.class_name
    shown = _point_labels(request.key(), tuple(points[:10]), config.sigma, config.seed, result,
                          model, x)
    cols = st.columns(min(len(points), 5))
    for col, p in zip(cols * 2, shown):
        col.image([to_pil(p["image"]), to_pil(p["noisy"])], width=96)
        col.caption(f"**{p['name']}** (u={p['u']:.3g}, v={p['v']:.3g}) · f: {name_of(p['f'])} · "
                    f"f(noisy): {name_of(p['f_noisy'])} · g_σ: {name_of(p['g'])} "
                    f"(p̂={p['p_top']:.2f})")
