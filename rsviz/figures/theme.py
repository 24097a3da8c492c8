"""One place for the look of every figure: fonts, sizes, colours, margins.

Class colours are stable across figures: a class index always maps to the same colour.
"""

from __future__ import annotations

import plotly.graph_objects as go

# Okabe–Ito colour-blind-safe palette, then Paul Tol's muted scheme for more classes.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
    "#AA4499",
)
OTHER_COLOR = "#BBBBBB"


def class_color(class_index: int) -> str:
    """Stable colour of a class (the same in every figure of a session)."""
    return PALETTE[(class_index * 7) % len(PALETTE)]


def series_color(i: int) -> str:
    """Colour of the i-th series of a line plot (n = 10, 50, ...)."""
    return PALETTE[i % len(PALETTE)]


def apply_theme(fig: go.Figure, title: str | None = None) -> go.Figure:
    """Screen theme used inside the app (export presets live in rsviz.figures.export)."""
    fig.update_layout(
        template="plotly_white", font=dict(family="Arial, Helvetica, sans-serif", size=14),
        margin=dict(l=60, r=20, t=50 if title else 20, b=50),
        legend=dict(bgcolor="rgba(255,255,255,0.7)"),
    )
    if title:
        fig.update_layout(title=dict(text=title, x=0.02))
    return fig
