"""One place for the look of every figure: fonts, sizes, colours, margins.

Two layers:

- `apply_theme(fig, title)`: the screen theme every figure builder applies inside the app.
- `apply_preset(fig, preset, background)`: the export look — a size preset ("slide 16:9",
  "paper column", "square") and a background ("light" or "dark") — applied to a *copy* of the
  figure just before a static export (rsviz.figures.export).

Colours are colour-blind safe (Okabe–Ito, then Paul Tol's muted scheme) and stable: a class
index always maps to the same colour, in every figure and every export.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go

from rsviz.errors import ConfigError

# Okabe–Ito colour-blind-safe palette, then Paul Tol's muted scheme for more classes.
PALETTE = (
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
    "#AA4499",
)
OTHER_COLOR = "#BBBBBB"
FONT_FAMILY = "Arial, Liberation Sans, Helvetica, DejaVu Sans, sans-serif"
SCREEN_FONT_SIZE = 14  # the size apply_theme uses; presets scale explicit font sizes from it
CSS_PX_PER_INCH = 96  # plotly layout pixels are CSS pixels: PDF pages come out at 0.75 pt/px


def class_color(class_index: int) -> str:
    """Stable colour of a class (the same in every figure of a session)."""
    return PALETTE[(class_index * 7) % len(PALETTE)]


def series_color(i: int) -> str:
    """Colour of the i-th series of a line plot (n = 10, 50, ...)."""
    return PALETTE[i % len(PALETTE)]


def apply_theme(fig: go.Figure, title: str | None = None) -> go.Figure:
    """Screen theme used inside the app (export presets: `apply_preset`)."""
    fig.update_layout(
        template="plotly_white", colorway=list(PALETTE),
        font=dict(family=FONT_FAMILY, size=SCREEN_FONT_SIZE),
        margin=dict(l=60, r=20, t=50 if title else 20, b=50),
        legend=dict(bgcolor="rgba(255,255,255,0.7)"),
    )
    if title:
        fig.update_layout(title=dict(text=title, x=0.02))
    return fig


@dataclass(frozen=True)
class Preset:
    """Size and typography of an exported figure (sizes in CSS pixels, 96 per inch)."""

    name: str
    width: int
    height: int
    font_size: int
    title_size: int
    margin: tuple[int, int, int, int]  # left, right, top, bottom
    line_width: float
    marker_size: float
    default_dpi: int

    @property
    def inches(self) -> tuple[float, float]:
        """Physical size (width, height) in inches at 96 CSS px per inch."""
        return self.width / CSS_PX_PER_INCH, self.height / CSS_PX_PER_INCH


@dataclass(frozen=True)
class Background:
    """Colours of one background variant."""

    name: str
    paper: str
    plot: str
    font: str
    grid: str
    axis_line: str
    legend_bg: str
    # Palette colours that vanish on this background, and their replacement.
    swaps: tuple[tuple[str, str], ...] = ()


PRESETS: dict[str, Preset] = {
    # 13.33 × 7.5 in at 96 px/in: the size of a 16:9 PowerPoint/Keynote/Beamer slide.
    "slide 16:9": Preset("slide 16:9", 1280, 720, 22, 30, (90, 40, 80, 80), 3.0, 9, 150),
    # A one-column figure of a two-column paper: 3.5 in wide (252 pt), 4:3, 8-pt text.
    "paper column": Preset("paper column", 336, 252, 11, 12, (44, 8, 26, 38), 1.5, 5, 300),
    "square": Preset("square", 800, 800, 18, 24, (80, 30, 80, 70), 2.5, 8, 150),
}
PRESET_ALIASES = {"slide": "slide 16:9", "16:9": "slide 16:9", "paper": "paper column",
                  "column": "paper column"}

BACKGROUNDS: dict[str, Background] = {
    "light": Background("light", paper="#FFFFFF", plot="#FFFFFF", font="#222222",
                        grid="#E5E5E5", axis_line="#444444",
                        legend_bg="rgba(255,255,255,0.8)"),
    "dark": Background("dark", paper="#1E1E1E", plot="#1E1E1E", font="#EEEEEE",
                       grid="#3C3C3C", axis_line="#AAAAAA", legend_bg="rgba(30,30,30,0.8)",
                       swaps=(("#000000", "#FFFFFF"), ("black", "#FFFFFF"),
                              ("#332288", "#8877DD"), ("#882255", "#DD6699"))),
}


def resolve_preset(name: str | Preset) -> Preset:
    """A preset by name ('slide 16:9', 'paper column', 'square') or alias ('slide', 'paper')."""
    if isinstance(name, Preset):
        return name
    key = PRESET_ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in PRESETS:
        raise ConfigError(f"Unknown figure preset {name!r}; choose one of "
                          + ", ".join(repr(p) for p in PRESETS) + ".")
    return PRESETS[key]


def resolve_background(name: str | Background) -> Background:
    """A background by name ('light' or 'dark')."""
    if isinstance(name, Background):
        return name
    key = name.strip().lower()
    if key not in BACKGROUNDS:
        raise ConfigError(f"Unknown background {name!r}; choose 'light' or 'dark'.")
    return BACKGROUNDS[key]


def apply_preset(fig: go.Figure, preset: str | Preset = "slide 16:9",
                 background: str | Background = "light") -> go.Figure:
    """A copy of `fig` sized and styled for export; the original is left untouched.

    Explicit font sizes set by figure builders (annotations, subplot titles) are scaled by
    preset.font_size / 14, line widths of lines and markers without an explicit width follow
    the preset, and palette colours that vanish on the background are swapped.
    """
    p, bg = resolve_preset(preset), resolve_background(background)
    out = go.Figure(fig)
    ratio = p.font_size / SCREEN_FONT_SIZE
    left, right, top, bottom = p.margin
    has_title = bool(out.layout.title.text)
    out.update_layout(
        template="plotly_dark" if bg.name == "dark" else "plotly_white",
        width=p.width, height=p.height, autosize=False, colorway=list(PALETTE),
        paper_bgcolor=bg.paper, plot_bgcolor=bg.plot,
        font=dict(family=FONT_FAMILY, size=p.font_size, color=bg.font),
        margin=dict(l=left, r=right, t=top if has_title else max(10, top // 3), b=bottom,
                    autoexpand=True),
        legend=dict(bgcolor=bg.legend_bg, font=dict(size=p.font_size, color=bg.font)),
    )
    if has_title:
        out.update_layout(title=dict(font=dict(size=p.title_size, color=bg.font)))
    axis_style = dict(gridcolor=bg.grid, linecolor=bg.axis_line, zerolinecolor=bg.grid,
                      tickfont=dict(color=bg.font), title_font=dict(color=bg.font))
    out.update_xaxes(**axis_style)
    out.update_yaxes(**axis_style)
    for ann in out.layout.annotations or ():
        size = ann.font.size if ann.font and ann.font.size else SCREEN_FONT_SIZE
        ann.font.size = round(size * ratio)
        ann.font.color = _swap(ann.font.color, bg) or bg.font
    for shape in out.layout.shapes or ():  # add_hline/add_vline markers, boxes
        shape.line.color = _swap(shape.line.color, bg)
    for trace in out.data:
        _style_trace(trace, p, bg)
    return out


def _swap(color: object, bg: Background) -> object:
    if isinstance(color, str):
        for old, new in bg.swaps:
            if color.strip().lower() == old.lower():
                return new
    return color


def _style_trace(trace: object, p: Preset, bg: Background) -> None:
    """Line width, marker size and background swaps of one trace (scatter-like traces)."""
    if getattr(trace, "type", "") == "bar" and trace.textangle is None:
        trace.textangle = 0  # no rotated labels in short bars: plotly shrinks them instead
    line = getattr(trace, "line", None)
    if line is not None and "color" in line:
        line.color = _swap(line.color, bg)
        if "width" in line and line.width is None and getattr(trace, "type", "") == "scatter":
            line.width = p.line_width
    marker = getattr(trace, "marker", None)
    if marker is not None and "color" in marker:
        if isinstance(marker.color, str):
            marker.color = _swap(marker.color, bg)
        elif isinstance(marker.color, tuple) and all(isinstance(c, str) for c in marker.color):
            marker.color = [_swap(c, bg) for c in marker.color]
        if "size" in marker and marker.size is None and getattr(trace, "type", "") == "scatter":
            marker.size = p.marker_size
