"""The RS-aware figure: theory vs practice per image, on one log axis.

Per image, four distances from x_o (L2 in [0,1]^d), left to right when RS works as the paper
says: the certified radius R(x_o) (what RS guarantees), the distance to ∂g_σ along the attack's
direction (where g_σ actually changes its answer), the plain attack's distortion and the
RS-aware attack's distortion (what an attacker who knows about the noise reaches).
Pure functions: rows in, a plotly figure out (export: `rsviz.figures.export`).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import plotly.graph_objects as go

from rsviz.figures.theme import apply_theme, series_color

SERIES = (
    ("radius", "certified radius R(x_o)", "diamond"),
    ("boundary", "∂g_σ along the attack direction", "line-ns-open"),
    ("plain", "plain attack", "circle-open"),
    ("rs_aware", "RS-aware attack", "circle"),
)


def distances_rows(names: Sequence[str], geometry: Mapping[str, Mapping[str, Any]],
                   runs: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per image: image, radius, boundary, plain, rs_aware (None where unknown) and the
    two runs' empirical P_a (from the bench's saved results)."""
    rows = []
    for name in names:
        geo = geometry.get(name, {})
        plain, aware = runs.get((name, "plain"), {}), runs.get((name, "rs-aware"), {})
        rows.append({"image": name, "radius": geo.get("radius"), "boundary": geo.get("boundary"),
                     "plain": plain.get("l2"), "rs_aware": aware.get("l2"),
                     "p_a_plain": plain.get("p_a_empirical"),
                     "p_a_rs_aware": aware.get("p_a_empirical")})
    return rows


def _shown(value: Any) -> float | None:
    """A positive finite distance, else None (a log axis cannot show 0 or inf)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def distances_figure(rows: Sequence[Mapping[str, Any]], title: str | None = None) -> go.Figure:
    """One horizontal line per image with its four distances on a log x axis.

    Args:
        rows: dicts with "image" and any of "radius", "boundary", "plain", "rs_aware" (L2;
            None, 0 or inf are left out: a radius of 0 means CERTIFY abstained), plus optional
            "p_a_plain" / "p_a_rs_aware" shown on hover.
        title: figure title.
    """
    fig = go.Figure()
    labels = [str(r["image"]).rsplit(".", 1)[0] for r in rows]
    for i, row in enumerate(rows):  # the span of each image, light grey
        values = [v for v in (_shown(row.get(k)) for k, _, _ in SERIES) if v is not None]
        if len(values) >= 2:
            fig.add_trace(go.Scatter(x=[min(values), max(values)], y=[labels[i]] * 2,
                                     mode="lines", line=dict(color="#CCCCCC", width=2),
                                     showlegend=False, hoverinfo="skip"))
    for j, (key, name, symbol) in enumerate(SERIES):
        xs, ys, text = [], [], []
        for label, row in zip(labels, rows):
            value = _shown(row.get(key))
            if value is None:
                continue
            xs.append(value)
            ys.append(label)
            p_a = row.get(f"p_a_{key}")
            text.append(f"{name}: {value:.3g}" + ("" if p_a is None else f", P_a {p_a:.2f}"))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, text=text,
                                 hoverinfo="text",
                                 marker=dict(symbol=symbol, size=11, color=series_color(j),
                                             line=dict(width=2, color=series_color(j)))))
    fig.update_xaxes(type="log", title="L2 distance from x_o")
    fig.update_yaxes(title="image", autorange="reversed", type="category")
    fig.update_layout(height=max(300, 60 + 32 * len(rows)),
                      legend=dict(orientation="h", y=-0.2))
    return apply_theme(fig, title)
