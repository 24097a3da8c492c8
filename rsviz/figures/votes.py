"""Figure builders of the "Image & model" view: f's top-5, votes of g_{σ,n}, p̂ and its interval.

Pure functions: data in, plotly figure out (no Streamlit). Class colours come from the theme,
so a class has the same colour in every figure.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import plotly.graph_objects as go

from rsviz.figures.theme import OTHER_COLOR, apply_theme, class_color, series_color


def top5_figure(rows: Sequence[tuple[int, str, float]], title: str | None = None) -> go.Figure:
    """Horizontal bars of the base classifier's softmax top-5: rows of (index, name, prob)."""
    rows = list(rows)[::-1]
    fig = go.Figure(go.Bar(
        x=[p for _, _, p in rows], y=[f"{name} ({c})" for c, name, _ in rows], orientation="h",
        marker_color=[class_color(c) for c, _, _ in rows],
        text=[f"{p:.1%}" for _, _, p in rows], textposition="auto",
        hovertemplate="%{y}<br>softmax %{x:.2%}<extra></extra>"))
    fig.update_xaxes(title="softmax probability of f (no noise)", range=[0, 1], tickformat=".0%")
    fig.update_layout(height=260)
    return apply_theme(fig, title)


def _shown_classes(counts: np.ndarray, top_k: int) -> list[int]:
    order = [int(c) for c in np.argsort(-counts, kind="stable") if counts[c] > 0]
    return order[:top_k]


def vote_histogram(counts: np.ndarray, class_name: Callable[[int], str], top_k: int = 10,
                   title: str | None = None) -> go.Figure:
    """Votes of the N noisy samples per class (top_k classes, the rest pooled as "other")."""
    counts = np.asarray(counts)
    total = int(counts.sum())
    shown = _shown_classes(counts, top_k)
    other = total - int(sum(counts[c] for c in shown))
    names = [f"{class_name(c)} ({c})" for c in shown] + (["other classes"] if other else [])
    values = [int(counts[c]) for c in shown] + ([other] if other else [])
    colors = [class_color(c) for c in shown] + ([OTHER_COLOR] if other else [])
    fig = go.Figure(go.Bar(
        x=names, y=values, marker_color=colors,
        customdata=np.array(values) / max(total, 1),
        hovertemplate="%{x}<br>%{y} of " + f"{total}" + " votes (p̂ = %{customdata:.4f})"
                      "<extra></extra>"))
    fig.update_yaxes(title=f"votes out of N = {total}")
    fig.update_xaxes(tickangle=-30)
    return apply_theme(fig, title)


def g_draws_figure(classes: np.ndarray, block_counts: np.ndarray, decisions: np.ndarray,
                   class_name: Callable[[int], str], n: int, max_draws: int = 5,
                   top_k: int = 8, title: str | None = None) -> go.Figure:
    """Vote histograms of the first `max_draws` draws of g_{σ,n} (blocks of n recorded votes).

    Args:
        classes: [K] class indices of the columns of `block_counts`.
        block_counts: [B, K] votes per class in each block of n votes.
        decisions: [B] the class each draw of g_{σ,n} output (random tie-break).
    """
    shown_draws = min(max_draws, len(block_counts))
    totals = block_counts[:shown_draws].sum(0)
    keep = [int(k) for k in np.argsort(-totals, kind="stable") if totals[k] > 0][:top_k]
    names = [f"{class_name(int(classes[k]))} ({int(classes[k])})" for k in keep]
    fig = go.Figure()
    for b in range(shown_draws):
        decided = int(decisions[b])
        fig.add_bar(x=names, y=[int(block_counts[b, k]) for k in keep],
                    name=f"draw {b + 1} → {class_name(decided)}", marker_color=series_color(b),
                    hovertemplate="%{x}<br>%{y} of " + f"{n} votes<br>draw {b + 1} decides "
                                  f"{class_name(decided)}<extra></extra>")
    fig.update_layout(barmode="group")
    fig.update_yaxes(title=f"votes out of n = {n}", rangemode="tozero")
    fig.update_xaxes(tickangle=-30)
    return apply_theme(fig, title)


def decisions_figure(decisions: np.ndarray, class_name: Callable[[int], str], n: int,
                     title: str | None = None) -> go.Figure:
    """How often each class wins over the N // n independent draws of g_{σ,n}."""
    classes, freq = np.unique(np.asarray(decisions), return_counts=True)
    order = np.argsort(-freq, kind="stable")
    fig = go.Figure(go.Bar(
        x=[f"{class_name(int(classes[i]))} ({int(classes[i])})" for i in order],
        y=freq[order] / max(len(decisions), 1),
        marker_color=[class_color(int(classes[i])) for i in order],
        customdata=freq[order],
        hovertemplate="%{x}<br>%{customdata} of " + f"{len(decisions)}" + " draws (%{y:.1%})"
                      "<extra></extra>"))
    fig.update_yaxes(title=f"fraction of {len(decisions)} draws of g_σ,{n}", tickformat=".0%",
                     range=[0, 1])
    return apply_theme(fig, title)


def p_hat_figure(p_hat: float, p_low: float, p_high: float, p_lower_one_sided: float | None,
                 alpha: float, label: str, n_samples: int, title: str | None = None) -> go.Figure:
    """p̂_A with its two-sided Clopper–Pearson interval, CERTIFY's one-sided bound and 1/2."""
    fig = go.Figure()
    fig.add_vrect(x0=0, x1=0.5, fillcolor="#eeeeee", line_width=0, layer="below",
                  annotation_text="p̲_A ≤ ½: abstain", annotation_position="top left")
    fig.add_scatter(x=[p_hat], y=[label], mode="markers", marker=dict(size=14, color="#0072B2"),
                    error_x=dict(type="data", symmetric=False, array=[p_high - p_hat],
                                 arrayminus=[p_hat - p_low], thickness=3, width=10),
                    name=f"p̂ and {1 - alpha:.4g} two-sided interval",
                    hovertemplate=f"p̂ = {p_hat:.4f}<br>interval [{p_low:.4f}, {p_high:.4f}]"
                                  f"<br>N = {n_samples}<extra></extra>")
    if p_lower_one_sided is not None:
        fig.add_scatter(x=[p_lower_one_sided], y=[label], mode="markers",
                        marker=dict(symbol="line-ns", size=26, line=dict(width=3, color="#D55E00")),
                        name=f"p̲_A, one-sided {1 - alpha:.4g} (CERTIFY)",
                        hovertemplate=f"p̲_A = {p_lower_one_sided:.4f}<extra></extra>")
    fig.update_xaxes(title="probability of the class under noise", range=[0, 1.02])
    fig.update_layout(height=230, legend=dict(orientation="h", y=-0.5))
    return apply_theme(fig, title)


def prob_wrong_figure(ns: Sequence[int], binomial: Sequence[float],
                      empirical: Sequence[float | None], draws: Sequence[int],
                      chosen_n: int | None = None, p_a: float | None = None,
                      title: str | None = None) -> go.Figure:
    """P[g_{σ,n}(x) ≠ ĉ] against n: exact binomial from p̂ (line) and empirical (markers)."""
    fig = go.Figure()
    fig.add_scatter(x=list(ns), y=list(binomial), mode="lines", name="binomial law from p̂ "
                    "(top vs rest)", line=dict(color=series_color(0)))
    emp = [(n, e, d) for n, e, d in zip(ns, empirical, draws) if e is not None]
    if emp:
        fig.add_scatter(x=[n for n, _, _ in emp], y=[e for _, e, _ in emp], mode="markers",
                        name="empirical, from disjoint blocks", customdata=[d for _, _, d in emp],
                        marker=dict(color=series_color(1), size=8),
                        hovertemplate="n = %{x}<br>%{y:.4f} over %{customdata} draws"
                                      "<extra></extra>")
    if chosen_n is not None:
        fig.add_vline(x=chosen_n, line_dash="dot", annotation_text=f"n = {chosen_n}")
    if p_a is not None:
        fig.add_hline(y=p_a, line_dash="dash", line_color="#D55E00",
                      annotation_text=f"P_a = {p_a}")
    fig.update_xaxes(title="n (votes per query)", type="log")
    fig.update_yaxes(title="P[g_σ,n(x) ≠ top class]", rangemode="tozero")
    return apply_theme(fig, title)
