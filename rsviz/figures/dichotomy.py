"""Histograms of dichotomy outputs per n, like the paper's Fig. 3, with ∂f and ∂g_σ marked."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rsviz.dichotomy import DichotomyResult, DichotomyRun
from rsviz.figures.theme import apply_theme, series_color

Origin = Literal["A", "boundary"]
Layout = Literal["overlay", "facet"]
BASE_COLOR = "#555555"


def bin_edges(result: DichotomyResult, bins: int = 60) -> np.ndarray:
    """Shared bin edges (L2 distance from A) over the range every run reached, aligned on the
    bisection's leaf width so discrete outputs never straddle two bins."""
    leaf = result.length / 2 ** result.steps
    runs = [*result.simulated.values(), *result.live.values()]
    lo = min(float(r.positions.min()) for r in runs) * result.length
    hi = max(float(r.positions.max()) for r in runs) * result.length
    lo, hi = min(lo, result.t_g * result.length), max(hi, result.t_g * result.length)
    width = leaf * max(1, math.ceil((hi - lo + leaf) / leaf / bins))
    start = (math.floor(lo / leaf) - 0.5) * leaf
    count = max(1, math.ceil((hi - start) / width) + 1)
    return start + width * np.arange(count + 1)


def histogram(run: DichotomyRun, length: float, edges: np.ndarray) -> np.ndarray:
    """Fraction of a run's outputs in each bin."""
    counts, _ = np.histogram(run.positions * length, bins=edges)
    return counts / max(1, len(run.positions))


def exact_histogram(run: DichotomyRun, length: float, edges: np.ndarray) -> np.ndarray | None:
    """Exact output probabilities (given p̂) gathered into the same bins."""
    if run.exact_t is None or run.exact_p is None:
        return None
    mass, _ = np.histogram(run.exact_t * length, bins=edges, weights=run.exact_p)
    return mass


def histogram_data(result: DichotomyResult, bins: int = 60) -> dict:
    """The numbers behind the figure (for the JSON export)."""
    edges = bin_edges(result, bins)
    data = {"bin_edges_l2_from_A": edges.tolist(), "summary": result.summary(), "simulated": {},
            "live": {}, "exact_given_p_hat": {}}
    for n, run in result.simulated.items():
        data["simulated"][str(n)] = histogram(run, result.length, edges).tolist()
        exact = exact_histogram(run, result.length, edges)
        if exact is not None:
            data["exact_given_p_hat"][str(n)] = exact.tolist()
    for n, run in result.live.items():
        data["live"][str(n)] = histogram(run, result.length, edges).tolist()
    data["segment_t"] = result.profile.t.tolist()
    data["segment_p_y"] = result.profile.freq[:, result.profile.iy].tolist()
    return data


def dichotomy_figure(result: DichotomyResult, origin: Origin = "A", layout: Layout = "overlay",
                     show_live: bool = True, show_exact: bool = True, bins: int = 60,
                     full_segment: bool = False, title: str | None = None) -> go.Figure:
    """Fig. 3: distribution of the output of a binary search against g_{σ,n}, one colour per n.

    Args:
        result: a `run_dichotomy` result.
        origin: x axis as L2 distance from A, or signed distance from ∂g_σ.
        layout: histograms overlaid (as in the paper) or one row per n.
        show_live: draw live-query histograms (outlines) when the result has them.
        show_exact: draw the exact output law given p̂ as a line.
        bins: about how many bins across the occupied range.
        full_segment: x range from A to B (as in the paper) instead of the occupied range.
    """
    edges = bin_edges(result, bins)
    shift = result.t_g * result.length if origin == "boundary" else 0.0
    centers = (edges[:-1] + edges[1:]) / 2 - shift
    width = float(edges[1] - edges[0])
    ns = list(result.simulated)
    rows = len(ns) if layout == "facet" else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03)
    for i, n in enumerate(ns):
        row, color = (i + 1 if rows > 1 else 1), series_color(i)
        run = result.simulated[n]
        fig.add_trace(go.Bar(x=centers, y=histogram(run, result.length, edges), width=width,
                             name=f"n = {n} (simulated, {len(run.positions):,} trials)",
                             marker=dict(color=color, line=dict(width=0)),
                             opacity=0.55 if rows == 1 else 0.8, legendgroup=str(n)),
                      row=row, col=1)
        exact = exact_histogram(run, result.length, edges) if show_exact else None
        if exact is not None:
            fig.add_trace(go.Scatter(x=centers, y=exact, mode="lines", line=dict(color=color,
                                     width=1.5, shape="hvh"), name=f"n = {n} exact given p̂",
                                     legendgroup=str(n), showlegend=i == 0 or rows == 1),
                          row=row, col=1)
        if show_live and n in result.live:
            live = result.live[n]
            fig.add_trace(go.Scatter(x=centers, y=histogram(live, result.length, edges),
                                     mode="lines", line=dict(color=color, width=2, dash="dot",
                                                             shape="hvh"),
                                     name=f"n = {n} (live, {live.forward_passes:,} passes)",
                                     legendgroup=str(n)), row=row, col=1)
    if result.t_g_std > 0:
        for row in range(1, rows + 1):
            fig.add_vrect(x0=(result.t_g - result.t_g_std) * result.length - shift,
                          x1=(result.t_g + result.t_g_std) * result.length - shift,
                          fillcolor=BASE_COLOR, opacity=0.12, line_width=0, row=row, col=1)
    marks = ((result.t_f, "∂f", "dash", "top left"), (result.t_g, "∂g_σ", "solid", "top right"))
    for where, label, dash, position in marks:
        for row in range(1, rows + 1):
            text = dict(annotation_text=label, annotation_position=position) if row == 1 else {}
            fig.add_vline(x=where * result.length - shift, row=row, col=1,
                          line=dict(color=BASE_COLOR, dash=dash, width=1.5), **text)
    barmode = "overlay"
    x_title = ("L2 distance from A (pixel space [0,1]^d)" if origin == "A"
               else "signed L2 distance from ∂g_σ (negative: y side)")
    fig.update_layout(barmode=barmode, bargap=0, uirevision="dichotomy",
                      height=(420 if rows == 1 else 170 * rows + 160))
    fig.update_xaxes(title_text=x_title, row=rows, col=1)
    if full_segment:
        fig.update_xaxes(range=[-shift, result.length - shift])
    fig.update_yaxes(rangemode="tozero")
    for i, n in enumerate(ns if rows > 1 else [None]):
        fig.update_yaxes(title_text="probability" if n is None else f"n = {n}", row=i + 1, col=1)
    fig = apply_theme(fig, title or f"Dichotomy outputs, σ = {result.config.sigma:g}, "
                                    f"k = {result.steps} steps, ‖B − A‖ = {result.length:.3g}")
    fig.update_layout(legend=dict(orientation="h", yanchor="top", y=-0.18 if rows == 1 else
                                  -0.6 / rows, x=0, font=dict(size=11)),
                      margin=dict(b=150 if rows == 1 else 170))
    return fig


def segment_figure(result: DichotomyResult) -> go.Figure:
    """p̂_y along the segment (the simulation's input), with ∂f and ∂g_σ."""
    profile = result.profile
    d = profile.t * result.length
    fig = go.Figure()
    if profile.raw_freq is not None:
        fig.add_trace(go.Scatter(x=d, y=profile.raw_freq[:, profile.iy], mode="markers",
                                 marker=dict(size=5, color=series_color(0)),
                                 name=f"p̂_y measured (N = {profile.n_samples})"))
    fitted = result.config.fit != "none"
    fig.add_trace(go.Scatter(x=d, y=profile.freq[:, profile.iy], mode="lines",
                             line=dict(color=series_color(1 if fitted else 0)),
                             name="probit fit (used by the simulation)" if fitted
                             else "p̂_y (used by the simulation)"))
    fig.add_hline(y=0.5, line=dict(color=BASE_COLOR, width=1, dash="dot"))
    for where, label, dash in ((result.t_f, "∂f", "dash"), (result.t_g, "∂g_σ", "solid")):
        fig.add_vline(x=where * result.length, line=dict(color=BASE_COLOR, dash=dash, width=1.5),
                      annotation_text=label, annotation_position="top")
    fig.update_layout(height=260, xaxis_title="L2 distance from A", yaxis_title="p̂_y",
                      yaxis_range=[0, 1.02])
    return apply_theme(fig)
