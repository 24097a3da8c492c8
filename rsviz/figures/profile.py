"""Figures of the adversarial-direction profile (paper Fig. 1) and the curvature spectrum."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rsviz.figures.theme import apply_theme, series_color
from rsviz.profile import ProfileResult

SORM_LABELS = {
    "eq3": "SORM eq. 3 (Breitung product)",
    "first_order": "SORM first order (mean curvature)",
    "quadratic": "SORM quadratic surface, Gaussian-averaged",
}
SORM_DASH = {"eq3": "dash", "first_order": "dot", "quadratic": "dashdot"}


def _in_range(values: np.ndarray) -> np.ndarray:
    """SORM values outside [0, 1] (the formula outside its validity) become gaps."""
    values = np.asarray(values, dtype=np.float64)
    return np.where((values >= 0) & (values <= 1), values, np.nan)


def _curves(result: ProfileResult, part: slice, legend: bool, show_sorm: bool,
            show_empirical: bool) -> list[go.Scatter]:
    """The profile's curves over the points `part` (legend entries only when `legend`)."""
    x = result.beyond[part]
    band_high, band_low = (1 - result.ci_high)[part], (1 - result.ci_low)[part]
    traces = [go.Scatter(x=np.r_[x, x[::-1]], y=np.r_[band_high, band_low[::-1]],
                         fill="toself", fillcolor="rgba(0,0,0,0.12)", line=dict(width=0),
                         name=f"{100 * (1 - result.config.alpha):g}% Clopper–Pearson band",
                         hoverinfo="skip", legendgroup="band"),
              go.Scatter(x=x, y=(1 - result.p_y)[part], mode="lines",
                         line=dict(color="black", width=3), legendgroup="ideal",
                         name=f"ideal g_σ: 1 − p̂_y (N = {result.config.n_samples})")]
    for i, n in enumerate(result.config.n_values):
        color = series_color(i)
        traces.append(go.Scatter(x=x, y=result.prob_binomial[n][part], mode="lines",
                                 line=dict(color=color, width=2), legendgroup=f"n{n}",
                                 name=f"P[g_σ,n adversarial], n = {n} (binomial from p̂)"))
        if show_empirical:
            blocks = result.config.n_samples // n
            traces.append(go.Scatter(x=x, y=result.prob_empirical[n][part], mode="markers",
                                     marker=dict(color=color, size=6, symbol="circle-open"),
                                     legendgroup=f"e{n}",
                                     name=f"n = {n}, empirical ({blocks} blocks of n votes)"))
    if show_sorm:
        for variant, values in result.sorm.items():
            traces.append(go.Scatter(x=x, y=_in_range(values[part]), mode="lines",
                                     line=dict(color="#555555",
                                               dash=SORM_DASH.get(variant, "dash")),
                                     legendgroup=variant,
                                     name=SORM_LABELS.get(variant, variant) + " (1 − π0)"))
    for trace in traces:
        trace.showlegend = legend
    return traces


def profile_figure(result: ProfileResult, title: str | None = None,
                   show_sorm: bool = True, show_empirical: bool = True) -> go.Figure:
    """Probability of being adversarial vs distance beyond x_a (0 = ∂f), like the paper's Fig. 1.

    Curves: 1 − p̂_y (ideal g_σ: the noisy base classifier is wrong) with its Clopper–Pearson
    band; P[g_{σ,n} ≠ y] per n (exact binomial law from p̂_y; block draws as markers);
    P_a levels as horizontal lines; ∂f and ∂g_σ as vertical lines; each (n, P_a) crossing as a
    marker; SORM predictions of 1 − π0 dashed, only where the formula is defined and in [0, 1].
    When the window's points are dense where p̂_y falls (`ProfileResult.zone`: that fall is a
    narrow part of the window), the x axis is broken in two panels: x_o … the zone at the left,
    the zone zoomed at the right.
    """
    zone = result.zone
    parts = [slice(None)] if zone is None else [slice(0, zone), slice(zone, None)]
    fig = make_subplots(rows=1, cols=len(parts), shared_yaxes=True, horizontal_spacing=0.04,
                        column_widths=None if zone is None else [0.4, 0.6])
    for col, part in enumerate(parts, start=1):
        for trace in _curves(result, part, col == 1, show_sorm, show_empirical):
            fig.add_trace(trace, row=1, col=col)
    ends = [(result.beyond[p][0], result.beyond[p][-1]) for p in parts]

    def panel(x: float) -> int:
        """The column whose points' range holds x (the last one past every range)."""
        return next((c for c, (_, hi) in enumerate(ends, start=1) if x <= hi), len(ends))

    for p_a in result.config.p_levels:
        fig.add_hline(y=p_a, line=dict(color="#999999", dash="dot", width=1), row=1, col="all",
                      annotation_text=f"P_a = {p_a:g}", annotation_position="top left")
    fig.add_vline(x=0.0, line=dict(color="#D55E00", width=2), row=1, col=panel(0.0),
                  annotation_text="∂f (x_a)", annotation_position="bottom right")
    crossings = result.crossings
    g = crossings[1]
    if g.beyond is not None:
        fig.add_vline(x=g.beyond, line=dict(color="black", dash="dash", width=1), row=1,
                      col=panel(g.beyond), annotation_text="∂g_σ",
                      annotation_position="top right")
    for i, n in enumerate(result.config.n_values):
        pts = [c for c in crossings[2:] if c.label.startswith(f"n = {n},") and c.beyond is not None]
        for c in pts:
            fig.add_trace(go.Scatter(
                x=[c.beyond], y=[c.level], mode="markers",
                marker=dict(color=series_color(i), size=11, symbol="x"),
                name=f"n = {n} reaches P_a", showlegend=False,
                text=[f"{c.label}: {c.beyond:+.3f} beyond x_a, {c.t:.3f} from x_o "
                      f"(eq. 6 bound {c.bound:.3f})"], hoverinfo="text"),
                row=1, col=panel(c.beyond))
    title_x = f"distance beyond x_a (L2; x_o at {-result.distance:.3f})"
    if zone is None:
        fig.update_xaxes(title_text=title_x)
    else:
        fig.update_xaxes(title_text=title_x + " — axis broken", row=1, col=1)
        fig.update_xaxes(title_text="zoomed where p̂_y falls (same units)", row=1, col=2)
    fig.update_yaxes(title_text="probability of being adversarial", range=[-0.02, 1.02],
                     row=1, col=1)
    fig.update_layout(legend=dict(orientation="v", x=1.01, y=1, xanchor="left"),
                      uirevision="profile")
    return apply_theme(fig, title)


def spectrum_figure(result: ProfileResult, title: str | None = None) -> go.Figure:
    """Top of the curvature spectrum (Ritz values of S with residual bounds), standardised
    κ̃ = σκ, with the mean curvature and eq. 3's breakdown levels."""
    curvature = result.curvature
    fig = go.Figure()
    if curvature is None:
        return apply_theme(fig, title or "curvature not measured")
    sigma = curvature.sigma
    ritz = curvature.ritz * sigma
    fig.add_trace(go.Scatter(x=np.arange(1, len(ritz) + 1), y=ritz, mode="markers",
                             error_y=dict(type="data", array=curvature.ritz_error * sigma),
                             marker=dict(size=9, color=series_color(0)),
                             name="Ritz values (Lanczos) ± residual bound"))
    mean = curvature.mean_curvature * sigma
    fig.add_hline(y=mean, line=dict(color="black", dash="dash"),
                  annotation_text=f"mean κ̃ = {mean:.3g} (SLQ over d − 1 = {curvature.dim - 1})")
    fig.add_hline(y=0.0, line=dict(color="#999999", width=1))
    fig.update_xaxes(title_text="Ritz index (descending curvature)")
    fig.update_yaxes(title_text="κ̃ = σκ (> 0: ∂f bulges away from x_o)")
    return apply_theme(fig, title)
