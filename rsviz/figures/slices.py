"""Figures of a boundary slice (paper Fig. 2): label maps side by side, P[adversarial], effort.

Pure builders: a `SliceResult` in, a plotly figure out. Classes keep their colour from
`rsviz.figures.theme.class_color` in every panel and every figure; classes that cover too
little of the slice are grouped as "other" (grey).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rsviz.figures.theme import OTHER_COLOR, apply_theme, class_color
from rsviz.slices import SliceResult

Panel = str | int  # "f", "g" or an n of g_{σ,n}


def default_panels(result: SliceResult) -> list[Panel]:
    """f, then g_{σ,n} for each n (the paper's Fig. 2 layout)."""
    return ["f", *result.config.ns]


def panel_labels(result: SliceResult, panel: Panel) -> np.ndarray:
    """[G, G] labels shown in a panel."""
    if panel == "f":
        return result.f_labels
    if panel == "g":
        return result.g_labels
    return result.draws[int(panel)]


def panel_title(result: SliceResult, panel: Panel) -> str:
    sigma = result.config.sigma
    if panel == "f":
        return "f (no RS)"
    if panel == "g":
        return f"g_σ ideal, σ = {sigma:g}"
    return f"g_σ,n: n = {panel}, σ = {sigma:g}"


def shown_classes(result: SliceResult, panels: Sequence[Panel], max_classes: int = 8,
                  min_fraction: float = 0.002) -> list[int]:
    """Classes drawn in their own colour: the most frequent ones (y always), at most
    `max_classes`, each covering at least `min_fraction` of the panels; the rest is "other"."""
    labels = np.concatenate([panel_labels(result, p).ravel() for p in panels])
    classes, counts = np.unique(labels, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    keep = [int(result.y)]
    for i in order:
        c = int(classes[i])
        if c not in keep and counts[i] >= min_fraction * len(labels) and len(keep) < max_classes:
            keep.append(c)
    return sorted(keep)


def _categories(labels: np.ndarray, shown: list[int]) -> np.ndarray:
    """Index of each label in `shown`, len(shown) for "other"."""
    shown_arr = np.asarray(shown)
    pos = np.clip(np.searchsorted(shown_arr, labels), 0, len(shown_arr) - 1)
    return np.where(shown_arr[pos] == labels, pos, len(shown_arr))


def _colorscale(shown: list[int]) -> list[list]:
    colors = [class_color(c) for c in shown] + [OTHER_COLOR]
    K = len(colors)
    scale = []
    for i, color in enumerate(colors):
        scale += [[i / K, color], [(i + 1) / K, color]]
    return scale


def _names(result: SliceResult, labels: np.ndarray, shown: list[int]) -> np.ndarray:
    """[G, G] class name of each label ("(other)" appended when grouped)."""
    classes, inverse = np.unique(labels, return_inverse=True)
    names = np.array([result.class_names.get(int(c), f"class {c}")
                      + ("" if int(c) in shown else " (other)") for c in classes], dtype=object)
    return names[inverse.reshape(labels.shape)]


def _p_half_contour(result: SliceResult, show_legend: bool) -> go.Contour:
    return go.Contour(x=result.u, y=result.v, z=result.p_y, showscale=False,
                      colorscale=[[0, "black"], [1, "black"]],
                      contours=dict(start=0.5, end=0.5, size=1, coloring="lines"),
                      line=dict(color="black", width=2, dash="dot"), hoverinfo="skip",
                      name="p̂_y = 1/2 (RS boundary)", showlegend=show_legend,
                      legendgroup="contour")


def _landmarks(result: SliceResult, show_legend: bool) -> list[go.Scatter]:
    traces = []
    for i, (name, u, v) in enumerate(result.landmarks):
        traces.append(go.Scatter(
            x=[u], y=[v], mode="markers", name=name, legendgroup=f"lm{i}",
            showlegend=show_legend, hovertemplate=f"{name}<br>u=%{{x:.3g}}, v=%{{y:.3g}}<extra></extra>",
            marker=dict(symbol="star" if i == 0 else "x", size=13, color="white",
                        line=dict(color="black", width=1.5))))
    return traces


def _square_axes(fig: go.Figure, count: int, extent: float) -> None:
    for i in range(1, count + 1):
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].update(scaleanchor=f"x{suffix}", scaleratio=1,
                                            range=[-extent, extent], constrain="domain")
        fig.layout[f"xaxis{suffix}"].update(range=[-extent, extent], constrain="domain",
                                            title_text="u (L2)")
    fig.layout["yaxis"].update(title_text="v (L2)")


def label_maps_figure(result: SliceResult, panels: Sequence[Panel] | None = None,
                      max_classes: int = 8, min_fraction: float = 0.002,
                      contour: bool = True, title: str | None = None) -> go.Figure:
    """Label maps side by side (paper Fig. 2): f, then g_{σ,n} per n (or "g", ideal g_σ).

    Hover: (u, v), class name, p̂ of the top class and p̂_y, and for g_{σ,n} whether the
    realisation is an exact draw from real votes or inferred (fewer than n votes drawn, the
    rest simulated from p̂; filled cells: no votes). The
    contour p̂_y = 1/2 (the boundary of the ideal g_σ) is drawn over f's labels.
    """
    panels = list(panels or default_panels(result))
    shown = shown_classes(result, panels, max_classes, min_fraction)
    scale = _colorscale(shown)
    fig = make_subplots(rows=1, cols=len(panels), horizontal_spacing=0.03,
                        subplot_titles=[panel_title(result, p) for p in panels])
    for col, panel in enumerate(panels, start=1):
        labels = panel_labels(result, panel)
        text = _names(result, labels, shown)
        if panel not in ("f", "g"):
            how = np.where(result.draw_exact[int(panel)], "exact draw from real votes",
                           "inferred (fewer than n votes drawn)")
            text = text + "<br><i>" + how.astype(object) + "</i>"
        custom = np.dstack([result.p_top, result.p_y, result.samples]).astype(float)
        fig.add_trace(go.Heatmap(
            x=result.u, y=result.v, z=_categories(labels, shown), zmin=-0.5,
            zmax=len(shown) + 0.5, colorscale=scale, showscale=False, text=text,
            customdata=custom,
            hovertemplate=("u=%{x:.3g}, v=%{y:.3g}<br><b>%{text}</b><br>p̂ top=%{customdata[0]:.2f}, "
                           "p̂_y=%{customdata[1]:.2f}<br>votes drawn: %{customdata[2]:.0f}"
                           "<extra></extra>"),
        ), row=1, col=col)
        if contour and panel == "f":
            fig.add_trace(_p_half_contour(result, True), row=1, col=col)
        for trace in _landmarks(result, col == 1):
            fig.add_trace(trace, row=1, col=col)
    # legend of class colours (heatmaps have none)
    other = any(not set(np.unique(panel_labels(result, p))) <= set(shown) for p in panels)
    for c in shown:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=result.class_names.get(
            c, f"class {c}") + (" (y)" if c == result.y else ""),
            marker=dict(symbol="square", size=14, color=class_color(c))))
    if other:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="other",
                                 marker=dict(symbol="square", size=14, color=OTHER_COLOR)))
    _square_axes(fig, len(panels), result.extent)
    apply_theme(fig, title or _default_title(result))
    fig.update_layout(height=420, legend=dict(orientation="h", y=-0.22, x=0),
                      uirevision="slice")
    return fig


def _default_title(result: SliceResult) -> str:
    direction = {"random": "2 random directions", "image": "towards a second image",
                 "whitebox": "towards the white-box point x_a"}[result.config.direction]
    return (f"Boundary slice around x_o ({direction}), σ = {result.config.sigma:g}, "
            f"{result.grid}×{result.grid}, ±{result.extent:g} L2")


def adversarial_figure(result: SliceResult, ns: Sequence[int] | None = None) -> go.Figure:
    """P[g_{σ,n}(x) ≠ y] per n (two-class binomial law from p̂_y), with the p̂_y = 1/2
    contour."""
    ns = list(ns or result.config.ns)
    fig = make_subplots(rows=1, cols=len(ns), horizontal_spacing=0.03,
                        subplot_titles=[f"P[g_σ,n(x) ≠ y], n = {n}" for n in ns])
    for col, n in enumerate(ns, start=1):
        fig.add_trace(go.Heatmap(
            x=result.u, y=result.v, z=result.p_adversarial(n), zmin=0, zmax=1,
            colorscale="Magma_r", showscale=col == len(ns), colorbar=dict(title="P[adv]"),
            customdata=result.p_y,
            hovertemplate=("u=%{x:.3g}, v=%{y:.3g}<br>P[adv]=%{z:.3f}<br>p̂_y=%{customdata:.3f}"
                           "<extra></extra>")), row=1, col=col)
        fig.add_trace(_p_half_contour(result, col == 1), row=1, col=col)
        for trace in _landmarks(result, col == 1):
            fig.add_trace(trace, row=1, col=col)
    _square_axes(fig, len(ns), result.extent)
    apply_theme(fig, f"Probability of being adversarial (y = "
                     f"{result.class_names.get(result.y, result.y)}; exact binomial from p̂_y)")
    fig.update_layout(height=420, legend=dict(orientation="h", y=-0.22, x=0), uirevision="adv")
    return fig


def samples_figure(result: SliceResult) -> go.Figure:
    """Votes drawn at each point: where the adaptive sampler spent its forward passes."""
    fig = go.Figure(go.Heatmap(
        x=result.u, y=result.v, z=result.samples, colorscale="Blues",
        colorbar=dict(title="votes"),
        hovertemplate="u=%{x:.3g}, v=%{y:.3g}<br>votes drawn: %{z}<extra></extra>"))
    for trace in _landmarks(result, True):
        fig.add_trace(trace)
    _square_axes(fig, 1, result.extent)
    apply_theme(fig, f"Votes drawn per point ({result.config.mode}): "
                     f"{result.forward_passes:,} forward passes vs {result.dense_passes:,} dense")
    fig.update_layout(height=420, width=560)
    return fig


def slice_figures(result: SliceResult) -> dict[str, go.Figure]:
    """Every figure of a slice, by file stem."""
    return {"labels": label_maps_figure(result), "adversarial": adversarial_figure(result),
            "samples": samples_figure(result)}
