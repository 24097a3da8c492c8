"""Figures of a study: certified accuracy vs radius (paper Fig. 4), distortion vs accuracy
(Fig. 5), and the distribution of distortion / certified radius (the "at least 30×" claim).

Pure functions of the tables of `rsviz.study` / `rsviz.certification`; they return plotly figures.
Several models are drawn side by side (the paper's comparison of model families): the model id
is in every legend entry and in the figure's `layout.meta["models"]`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rsviz.certification import CertRow, accuracy_drop_table, curve
from rsviz.figures.theme import apply_theme, series_color

METRICS = {"mean_l2": "Mean L2 distortion", "median_l2": "Median L2 distortion",
           "mean_linf": "Mean L∞ distortion"}
P_A_SYMBOLS = ("circle", "x", "diamond", "square", "triangle-up")  # highest P_a first, as the paper


DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def _by_model(runs: dict, model: str) -> dict[str, dict[float, Sequence[CertRow]]]:
    """{model: {σ: rows}} from either that or one model's {σ: rows}."""
    if runs and all(isinstance(v, dict) for v in runs.values()):
        return runs
    return {model: runs}


def certification_figure(runs: dict, model: str = "", points: int = 200) -> go.Figure:
    """Fig. 4: certified accuracy(r) for each model and σ, with the clean accuracy of each
    model's f as a dashed line.

    Args:
        runs: Cohen rows per σ of one model, or {model id: {σ: rows}} for several models
            (`f_predict` on the rows gives f's accuracy).
        model: model id for the legend (one model).
        points: grid points of each curve.
    """
    fig = go.Figure()
    by_model = _by_model(runs, model)
    several = len(by_model) > 1
    top = max([r.radius for m in by_model.values() for rows in m.values() for r in rows] + [0.0])
    color = 0
    for k, (name, model_runs) in enumerate(by_model.items()):
        for sigma, rows in sorted(model_runs.items()):
            color += 1
            radii, acc = curve(rows, points, max_radius=top)
            fig.add_trace(go.Scatter(
                x=radii, y=acc, mode="lines",
                line=dict(color=series_color(color), width=3, dash=DASHES[k % len(DASHES)]),
                name=f"{name + ', ' if name else ''}σ = {sigma:g} ({len(rows)} images)",
                hovertemplate="r = %{x:.3f}<br>certified accuracy %{y:.1%}<extra></extra>"))
        drops = accuracy_drop_table(dict(model_runs))
        f_acc = next((d["accuracy_f"] for d in drops if d["accuracy_f"] is not None), None)
        if f_acc is not None:
            label = f"{name}: f" if several else "f"
            fig.add_hline(y=f_acc, line=dict(color=series_color(0), dash="dash"),
                          annotation_text=f"{label} (no smoothing): {f_acc:.0%}",
                          annotation_position="top right" if k % 2 == 0 else "bottom right")
    fig.update_xaxes(title="Certified radius (L2, pixel space [0,1])", rangemode="tozero")
    fig.update_yaxes(title="Certified accuracy", range=[0, 1.02], tickformat=".0%")
    fig.update_layout(meta={"models": [m for m in by_model if m]})
    return apply_theme(fig, "Certified accuracy vs radius (Cohen's CERTIFY)")


def _group_of(row: dict[str, Any]) -> str:
    if row["sigma"] is None:
        return f"{row['model']}"
    return f"{row['model']} / RS, σ = {row['sigma']:g}"


def _panel_of(row: dict[str, Any]) -> str:
    """The attack, and its variant when not plain: plain and RS-aware never share a panel."""
    variant = row.get("variant") or "plain"
    return row["attack"] if variant == "plain" else f"{row['attack']} ({variant})"


def distortion_figure(summary: Sequence[dict[str, Any]], metric: str = "mean_l2") -> go.Figure:
    """Fig. 5: distortion vs accuracy, one panel per attack and one marker per configuration.

    Colour = model and σ (the undefended f in its own colour), marker size = n, symbol = P_a
    (or criterion "single_draw"); RS-aware attacks get their own panels. Rows without a
    successful attack are left out.
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}")
    attacks = list(dict.fromkeys(_panel_of(r) for r in summary)) or ["—"]
    cols = min(3, len(attacks))
    rows_n = (len(attacks) + cols - 1) // cols
    fig = make_subplots(rows=rows_n, cols=cols, subplot_titles=attacks,
                        horizontal_spacing=0.08, vertical_spacing=0.14)
    groups = list(dict.fromkeys(_group_of(r) for r in summary))
    ns = sorted({r["n"] for r in summary if r["n"] is not None})
    levels = sorted({r["p_a"] for r in summary if r["p_a"] is not None}, reverse=True)
    shown: set[str] = set()
    for row in summary:
        if row.get(metric) is None:
            continue
        k = attacks.index(_panel_of(row))
        group = _group_of(row)
        size = 11 + 6 * ns.index(row["n"]) if row["n"] in ns else 13
        symbol = (P_A_SYMBOLS[levels.index(row["p_a"]) % len(P_A_SYMBOLS)]
                  if row["p_a"] in levels else "circle" if row["sigma"] is None else "star")
        legend = f"{group}, n={row['n']}" if row["n"] else group
        legend += f", P_a={row['p_a']:g}" if row["p_a"] is not None else ""
        fig.add_trace(go.Scatter(
            x=[row["accuracy"]], y=[row[metric]], mode="markers", name=legend,
            legendgroup=legend, showlegend=legend not in shown,
            marker=dict(color=series_color(groups.index(group)), size=size, symbol=symbol,
                        line=dict(width=1, color="white")),
            customdata=[[row["configuration"], row["attacked"], row["images"],
                         row.get("success_rate") or 0, row.get("median_l2") or 0,
                         row.get("mean_queries") or 0]],
            hovertemplate=("%{customdata[0]}<br>accuracy %{x:.1%}<br>" + METRICS[metric] +
                           " %{y:.3f}<br>median L2 %{customdata[4]:.3f}<br>success "
                           "%{customdata[3]:.0%} of %{customdata[1]} attacked (of "
                           "%{customdata[2]})<br>mean queries %{customdata[5]:.0f}"
                           "<extra></extra>")),
            row=k // cols + 1, col=k % cols + 1)
        shown.add(legend)
    accuracies = [r["accuracy"] for r in summary if r.get(metric) is not None] or [0.0, 1.0]
    fig.update_xaxes(title="Accuracy", tickformat=".0%",
                     range=[max(0.0, min(accuracies) - 0.1), min(1.05, max(accuracies) + 0.05)])
    fig.update_yaxes(title=METRICS[metric])
    fig.update_layout(height=max(420, 380 * rows_n), legend=dict(font=dict(size=11)),
                      meta={"models": list(dict.fromkeys(r["model"] for r in summary))})
    return apply_theme(fig, f"{METRICS[metric]} vs accuracy (one marker per configuration)")


def ratio_figure(ratios: Sequence[dict[str, Any]], claim: float = 30.0) -> go.Figure:
    """Distribution of L2 distortion / certified radius per configuration and attack (log
    scale), with the paper's "at least 30×" and the ratio 1 (the certificate) as lines."""
    fig = go.Figure()
    attacks = list(dict.fromkeys(_panel_of(r) for r in ratios))
    models = list(dict.fromkeys(r.get("model", "") for r in ratios))
    where = (lambda r: f"{r['model']}: {r['configuration']}") if len(models) > 1 else \
        (lambda r: r["configuration"])
    for i, attack in enumerate(attacks):
        mine = [r for r in ratios if _panel_of(r) == attack]
        fig.add_trace(go.Box(
            x=[where(r) for r in mine], y=[r["ratio"] for r in mine], name=attack,
            boxpoints="all", jitter=0.4, pointpos=0, marker=dict(color=series_color(i + 1)),
            customdata=[[r["image"], r["l2"], r["radius"]] for r in mine],
            hovertemplate=("%{customdata[0]}<br>ratio %{y:.1f}×<br>L2 %{customdata[1]:.3f} / "
                           "radius %{customdata[2]:.3f}<extra>" + attack + "</extra>")))
    values = [r["ratio"] for r in ratios if r["ratio"] > 0] or [1.0]
    low, high = min(values + [1.0]) / 2, max(values + [claim]) * 2
    for y, text, color, dash in ((claim, f"paper: ≥ {claim:g}×", "#D55E00", "dash"),
                                 (1.0, "certified radius", "#999999", "dot")):
        fig.add_hline(y=y, line=dict(color=color, dash=dash))
        # annotations on a log axis take log10 coordinates (shapes take data values)
        fig.add_annotation(x=0, xref="paper", xanchor="left", y=math.log10(y), yref="y",
                           yanchor="bottom", text=text, showarrow=False,
                           font=dict(color=color, size=12))
    fig.update_yaxes(type="log", title="L2 distortion / certified radius",
                     range=[math.log10(low), math.log10(high)])
    fig.update_xaxes(title="Configuration")
    fig.update_layout(boxmode="group", meta={"models": [m for m in models if m]})
    return apply_theme(fig, "How far attacks go beyond the certificate")
