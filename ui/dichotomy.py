"""Panels of the "Dichotomy" page: the histograms of outputs per n and their table."""

from __future__ import annotations

from typing import Any

import streamlit as st

from rsviz.figures.dichotomy import dichotomy_figure, histogram_data, segment_figure
from ui.export import export_panel


def dichotomy_panels(out: dict, class_name: Any, params: dict) -> None:
    result = out["result"]
    st.caption(f"Segment: A = x_o (class {class_name(result.y)}), ‖B − A‖ = "
               f"{result.length:.3f}. {out['caption']}")
    if result.warning:
        st.warning(result.warning)
    cols = st.columns(3)
    origin = cols[0].radio("Axis", ["A", "boundary"], horizontal=True, key="dich_origin",
                           format_func={"A": "distance from A",
                                        "boundary": "distance from ∂g_σ"}.get)
    layout = cols[1].radio("Layout", ["overlay", "facet"], horizontal=True, key="dich_layout")
    full = cols[2].checkbox("Whole segment A → B", key="dich_full")
    fig = dichotomy_figure(result, origin=origin, layout=layout, full_segment=full)
    st.plotly_chart(fig, key="dich_fig")
    rows = []
    for n, run in result.simulated.items():
        for r in [run] + ([result.live[n]] if n in result.live else []):
            s = result.stats(r)
            rows.append({"n": n, "mode": s["mode"], "mean (from A)": f"{s['mean']:.4f}",
                         "std": f"{s['std']:.4f}", "bias vs ∂g_σ": f"{s['bias']:+.4f}",
                         "wrong side": f"{s['wrong_side']:.1%}",
                         "forward passes": f"{s['forward_passes']:,}"})
    st.table(rows)
    st.caption(f"∂f at {result.t_f * result.length:.4f}, ∂g_σ (where p̂_y stops being the "
               f"plurality) at {result.t_g * result.length:.4f} ± "
               f"{result.t_g_std * result.length:.4f} (sampling sd of p̂, grey band: every "
               f"simulated histogram shares this uncertainty); f's own dichotomy "
               f"returns {result.base.positions[0] * result.length:.4f}. Simulated trials "
               f"cost nothing beyond the segment pass of "
               f"{result.profile.forward_passes:,} forward passes. 'Wrong side': outputs "
               f"on the y side of ∂g_σ.")
    export_panel(fig, "dichotomy", histogram_data(result),
                 {**params, "caption": out["caption"]}, key="dich_export")
    with st.expander("p̂_y along the segment (input of the simulation)"):
        st.plotly_chart(segment_figure(result), key="dich_seg_fig")
