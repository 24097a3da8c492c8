"""One figure to one file in any format, and a zip of many figures in every format."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from rsviz import __version__
from rsviz.figures.export.bundle import (ExportError, bundle_json, data_to_csv, safe_name,
                                         standard_params)
from rsviz.figures.export.metadata import (html_with_metadata, pdf_with_metadata,
                                           png_with_metadata, svg_with_metadata)
from rsviz.figures.export.render import STATIC_FORMATS, render_static, static_export_available
from rsviz.figures.theme import Background, Preset, apply_preset


FORMATS = STATIC_FORMATS + ("html", "json", "csv")
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf",
        "html": "text/html", "json": "application/json", "csv": "text/csv",
        "zip": "application/zip"}


def export_figure(fig: go.Figure, path_or_format: str | Path, preset: str | Preset | None =
                  "slide 16:9", background: str | Background = "light", scale: float | None =
                  None, dpi: int | None = None, metadata: Mapping[str, Any] | None = None,
                  data: Any = None, name: str | None = None) -> bytes:
    """Export `fig` as PNG, SVG, PDF, HTML, JSON (bundle) or CSV (data) and return the bytes.

    Args:
        path_or_format: a format name ('png', 'svg', ...) or a file path (written, format
            from its suffix).
        preset: size preset ('slide 16:9', 'paper column', 'square', or aliases); None keeps
            the figure's own size and look.
        background: 'light' or 'dark'.
        scale: PNG pixel multiplier (PNG size = width·scale × height·scale); default 1.
        dpi: PNG resolution instead of scale: scale = dpi / 96, stored in the pHYs chunk.
        metadata: the parameters that produced the figure (model, image_hash, sigma, n, seed,
            ...); rsviz version and export time are added.
        data: the data behind the figure, embedded next to the parameters.
    """
    fmt, path = _format_and_path(path_or_format)
    name = name or (path.stem if path else "figure")
    params = standard_params(metadata, name)
    styled = apply_preset(fig, preset, background) if preset is not None else go.Figure(fig)
    width = int(styled.layout.width or 900)
    height = int(styled.layout.height or 500)
    if fmt == "png":
        if dpi is not None and scale is not None:
            raise ExportError("Give either scale or dpi, not both.")
        scale = dpi / 96 if dpi is not None else (scale or 1.0)
        if not 0.1 <= scale <= 10:
            raise ExportError(f"PNG scale {scale:g} is out of range (0.1–10; dpi 10–960).")
        raw = render_static(styled, "png", width, height, scale)
        out = png_with_metadata(raw, name, params, data, dpi=round(96 * scale))
    elif fmt == "svg":
        out = svg_with_metadata(render_static(styled, "svg", width, height), name, params,
                                     data)
    elif fmt == "pdf":
        out = pdf_with_metadata(render_static(styled, "pdf", width, height), name, params,
                                     data)
    elif fmt == "html":
        out = html_with_metadata(styled, name, params, data)
    elif fmt == "json":
        out = bundle_json(fig, data, params, name).encode()
    else:  # csv
        csv_text = data_to_csv(data)
        if csv_text is None:
            raise ExportError(f"The data of {name!r} is not a table; use the JSON bundle.")
        out = csv_text.encode()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(out)
    return out


def _format_and_path(path_or_format: str | Path) -> tuple[str, Path | None]:
    text = str(path_or_format)
    if isinstance(path_or_format, str) and text.lower().lstrip(".") in FORMATS:
        return text.lower().lstrip("."), None
    path = Path(path_or_format)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ExportError(f"Cannot tell the format of {text!r}; use a suffix among "
                          + ", ".join(FORMATS) + ".")
    return fmt, path


def figure_pack(figures: Mapping[str, go.Figure], data: Mapping[str, Any] | None = None,
                params: Mapping[str, Mapping[str, Any]] | None = None, *,
                formats: tuple[str, ...] = ("png", "svg", "pdf", "html"),
                preset: str | Preset | None = "slide 16:9", background: str = "light",
                scale: float | None = None, dpi: int | None = None,
                title: str = "rsviz figures") -> bytes:
    """A zip of every figure in every format, plus its bundle (JSON) and data (CSV if tabular).

    `data` and `params` map a figure name to its data / parameters. When static export is
    unavailable the zip still holds HTML, bundles and data, and a note saying why.
    """
    data, params = data or {}, params or {}
    ok, reason = static_export_available()
    buf = io.BytesIO()
    manifest: dict[str, Any] = {"title": title, "rsviz_version": __version__, "figures": [],
                                "static_export": ok, "static_export_note": reason}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, fig in figures.items():
            stem = safe_name(name)
            fig_params = standard_params(params.get(name), name)
            files = []
            for fmt in formats:
                if fmt in STATIC_FORMATS and not ok:
                    continue
                blob = export_figure(fig, fmt, preset, background,
                                     scale=scale if fmt == "png" else None,
                                     dpi=dpi if fmt == "png" else None,
                                     metadata=fig_params, data=data.get(name), name=name)
                zf.writestr(f"{stem}.{fmt}", blob)
                files.append(f"{stem}.{fmt}")
            zf.writestr(f"{stem}.json", bundle_json(fig, data.get(name), fig_params, name))
            files.append(f"{stem}.json")
            if (csv_text := data_to_csv(data.get(name))) is not None:
                zf.writestr(f"{stem}.csv", csv_text)
                files.append(f"{stem}.csv")
            manifest["figures"].append({"name": name, "files": files, "params": fig_params})
        if not ok:
            zf.writestr("STATIC_EXPORT_UNAVAILABLE.txt", reason + "\n")
        zf.writestr("manifest.json", json.dumps(manifest, indent=1))
        zf.writestr("README.txt", _PACK_README.format(title=title, version=__version__))
    return buf.getvalue()


_PACK_README = """{title} — exported by rsviz {version}

Each figure comes as NAME.png / .svg / .pdf (static, with the parameters and data embedded
in the file metadata), NAME.html (interactive) and NAME.json, a figure bundle: the plotly
figure, the data behind it and the parameters that produced it. Rebuild any figure with

    python -m rsviz figure NAME.json --preset "paper column" --format pdf --out figs/

manifest.json lists the files and parameters of every figure.
"""
