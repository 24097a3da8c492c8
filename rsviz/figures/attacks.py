"""Figure builders of the "Live attack" view: distortion vs queries, the perturbation.

Pure functions (no Streamlit): traces in, plotly figures or arrays out. The distortion curve
is the best accepted point's distortion after each outer iteration of the attack, drawn as a
step function of the queries (or of the base-model forward passes).
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from rsviz.attacks import AttackTrace
from rsviz.figures.theme import apply_theme, series_color

Metric = Literal["l2", "linf"]
XAxis = Literal["queries", "forward_passes"]
METRIC_LABEL = {"l2": "L2 distortion ‖x_adv − x_o‖₂", "linf": "L∞ distortion ‖x_adv − x_o‖∞"}
X_LABEL = {"queries": "queries to the attacked classifier",
           "forward_passes": "forward passes of the base model f"}


def curve(trace: AttackTrace, metric: Metric = "l2",
          x_axis: XAxis = "queries") -> tuple[list[int], list[float]]:
    """(x, distortion) of the states where an accepted point exists."""
    col = 2 if metric == "l2" else 3
    xcol = 0 if x_axis == "queries" else 1
    pts = [(p[xcol], p[col]) for p in trace.points if math.isfinite(p[col])]
    return [int(a) for a, _ in pts], [float(b) for _, b in pts]


def distortion_figure(traces: Sequence[AttackTrace], metric: Metric = "l2",
                      x_axis: XAxis = "queries", log_x: bool = False, log_y: bool = False,
                      live: AttackTrace | None = None, title: str | None = None) -> go.Figure:
    """Best distortion vs queries, one step line per trace (several runs overlaid).

    Args:
        traces: finished (or stopped) runs to overlay.
        metric: "l2" (the paper's measure) or "linf" (RayS's own).
        x_axis: "queries" or "forward_passes" (a query of g_{σ,n} costs up to n passes).
        log_x, log_y: logarithmic axes.
        live: the run in progress, drawn thick and dashed on top.
        title: optional figure title.
    """
    fig = go.Figure()
    runs = [(t, False) for t in traces] + ([(live, True)] if live is not None else [])
    every: list[float] = []
    for i, (trace, is_live) in enumerate(runs):
        xs, ys = curve(trace, metric, x_axis)
        every += ys
        name = ("▶ " if is_live else "") + trace.describe()
        fig.add_trace(go.Scatter(
            x=xs, y=ys, mode="lines+markers" if len(xs) < 40 else "lines", name=name,
            line=dict(color=series_color(i), shape="hv", width=3 if is_live else 2,
                      dash="dash" if is_live else "solid"),
            hovertemplate="%{x} " + x_axis.replace("_", " ") + "<br>"
                          + metric.upper() + " %{y:.4g}<extra>" + name + "</extra>"))
    fig.update_xaxes(title=X_LABEL[x_axis], type="log" if log_x else "linear",
                     rangemode="tozero" if not log_x else "normal")
    fig.update_yaxes(title=METRIC_LABEL[metric], type="log" if log_y else "linear",
                     range=y_range(every, log_y))
    fig.update_layout(height=420, uirevision="attack-distortion",
                      legend=dict(orientation="h", yanchor="top", y=-0.2, x=0))
    return apply_theme(fig, title)


def y_range(values: Sequence[float], log: bool) -> list[float] | None:
    """A y range that never zooms into noise: linear from 0 to above the largest value; log
    over at least a full decade below the largest positive value (a curve that stalls at one
    distortion is drawn flat, not as a cliff across 62.4381–62.4388). None: no values."""
    if log:
        positive = [v for v in values if v > 0]
        if not positive:
            return None
        top, low = max(positive), min(positive)
        return [math.log10(min(low, top / 10)) - 0.05, math.log10(top) + 0.05]
    if not values:
        return None
    top = max(max(values), 0.0)
    return [0.0, top * 1.05 if top > 0 else 1.0]


def trace_rows(traces: Sequence[AttackTrace]) -> list[dict]:
    """One row per state of every trace (the data behind the figure; CSV-friendly)."""
    rows = []
    for run, trace in enumerate(traces):
        for queries, passes, l2, linf, phase in trace.points:
            rows.append({"run": run, "label": trace.describe(), "attack": trace.attack,
                         "queries": queries, "forward_passes": passes,
                         "l2": l2 if math.isfinite(l2) else None,
                         "linf": linf if math.isfinite(linf) else None, "phase": phase})
    return rows


def amplified_perturbation(x_adv: torch.Tensor, x_o: torch.Tensor) -> tuple[np.ndarray, float]:
    """The perturbation x_adv − x_o mapped to an image: 0.5 + gain·δ, with gain chosen so the
    largest |δ| reaches 0 or 1 (mid-grey = no change).

    Returns:
        (H×W×3 array in [0,1], gain).
    """
    delta = (x_adv.detach().float().cpu() - x_o.detach().float().cpu())
    peak = float(delta.abs().max())
    gain = 0.5 / peak if peak > 0 else 1.0
    image = (0.5 + gain * delta).clamp(0, 1).permute(1, 2, 0).numpy()
    return image, gain


def to_image(x: torch.Tensor) -> np.ndarray:
    """[3,H,W] tensor in [0,1] -> H×W×3 array for display."""
    return x.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy()
