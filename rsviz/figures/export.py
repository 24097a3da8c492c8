"""Figures out of the app: PNG/SVG/PDF via plotly's static export, HTML, data, figure bundles.

Static export goes through kaleido 1.x with the system Chromium. One browser is kept alive per
process (`_Renderer`): the first export pays the start (~2 s), later ones ~0.2 s. Every file
carries the data behind the figure and the parameters that produced it (model, image hash,
σ, n, seed, rsviz version): PNG tEXt/zTXt chunks, SVG <metadata>, PDF Info dictionary, a
<script type="application/json"> in HTML. A *figure bundle* (JSON: plotly figure + data +
params) is the saved-results format: the app's "Bundle" download, every CLI `--out`, and
`python -m rsviz figure` rebuilds any figure from it.
"""

from __future__ import annotations

import asyncio
import atexit
import io
import json
import os
import re
import shutil
import struct
import threading
import time
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import plotly.graph_objects as go

from rsviz import __version__
from rsviz.errors import RsvizError
from rsviz.storage import to_jsonable, write_text_atomic
from rsviz.figures.theme import Background, Preset, apply_preset, resolve_background, resolve_preset

STATIC_FORMATS = ("png", "svg", "pdf")
FORMATS = STATIC_FORMATS + ("html", "json", "csv")
BUNDLE_FORMAT = "rsviz-figure-bundle"
BUNDLE_VERSION = 1
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf",
        "html": "text/html", "json": "application/json", "csv": "text/csv",
        "zip": "application/zip"}
RENDER_TIMEOUT_S = 60.0
FAILURE_MEMORY_S = 120.0  # a failed render disables static export this long, then retries
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


class ExportError(RsvizError):
    """A figure could not be exported (no browser, render failure, unknown format)."""


# --- JSON helpers (`to_jsonable` lives in rsviz.storage) -----------------------------------

def standard_params(params: Mapping[str, Any] | None = None, name: str | None = None) -> dict:
    """`params` plus the rsviz version, the export time and the figure name (never overwritten)."""
    out = dict(to_jsonable(dict(params or {})))
    out.setdefault("rsviz_version", __version__)
    out.setdefault("exported_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if name:
        out.setdefault("figure", name)
    return out


def data_to_csv(data: Any) -> str | None:
    """CSV of tabular data (a list of row dicts, or a dict of equal-length columns), else None."""
    import csv

    data = to_jsonable(data)
    rows: list[dict] | None = None
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        rows = data
    elif isinstance(data, dict) and data:
        lengths = {len(v) if isinstance(v, list) else -1 for v in data.values()}
        if len(lengths) == 1 and (n := lengths.pop()) > 0 and all(
                not isinstance(x, (list, dict)) for v in data.values() for x in v):
            rows = [{k: v[i] for k, v in data.items()} for i in range(n)]
    if rows is None:
        return None
    columns = list(dict.fromkeys(k for r in rows for k in r))
    if any(isinstance(v, (list, dict)) for r in rows for v in r.values()):
        return None
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


# --- Figure bundles: the saved-results format ------------------------------------------------

@dataclass(frozen=True)
class FigureBundle:
    """A figure with the data behind it and the parameters that produced it."""

    name: str
    figure: go.Figure
    data: Any
    params: dict[str, Any]


def bundle_dict(fig: go.Figure, data: Any = None, params: Mapping[str, Any] | None = None,
                name: str = "figure") -> dict:
    """The JSON object of a figure bundle (format 'rsviz-figure-bundle', version 1)."""
    return {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "name": name,
            "params": standard_params(params, name), "data": to_jsonable(data),
            "figure": json.loads(fig.to_json())}


def bundle_json(fig: go.Figure, data: Any = None, params: Mapping[str, Any] | None = None,
                name: str = "figure") -> str:
    return json.dumps(bundle_dict(fig, data, params, name), separators=(",", ":"))


def save_bundle(fig: go.Figure, data: Any, params: Mapping[str, Any] | None,
                path: str | Path, name: str | None = None) -> Path:
    """Write a figure bundle (JSON) that `rsviz figure` and `load_bundle` read back."""
    path = Path(path)
    if path.suffix != ".json":
        path = path.with_suffix(".json")
    return write_text_atomic(path, bundle_json(fig, data, params,
                                               name or path.stem.removesuffix(".fig")))


def load_bundle(path: str | Path) -> FigureBundle:
    """Read a figure bundle written by `save_bundle` (or the app's bundle download)."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ExportError(f"{path}: not a readable JSON file ({exc}).") from exc
    return bundle_from_dict(obj, str(path))


def bundle_from_dict(obj: Any, source: str = "bundle") -> FigureBundle:
    if not is_bundle(obj):
        raise ExportError(f"{source}: not an rsviz figure bundle (no \"format\": "
                          f"\"{BUNDLE_FORMAT}\" with a \"figure\").")
    if int(obj.get("version", 1)) > BUNDLE_VERSION:
        raise ExportError(f"{source}: bundle version {obj['version']} is newer than this rsviz "
                          f"({__version__}) reads; update rsviz.")
    figure = go.Figure(obj["figure"], skip_invalid=True)
    return FigureBundle(str(obj.get("name") or "figure"), figure, obj.get("data"),
                        dict(obj.get("params") or {}))


def is_bundle(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == BUNDLE_FORMAT and "figure" in obj


def find_bundles(path: str | Path) -> list[Path]:
    """Bundle files at `path`: the file itself, or every *.json bundle below a folder."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ExportError(f"{path}: no such file or folder.")
    found = []
    for candidate in sorted(path.rglob("*.json")):
        try:
            with candidate.open("rb") as fh:
                head = fh.read(256)
        except OSError:
            continue
        if BUNDLE_FORMAT.encode() in head:
            found.append(candidate)
    return found


# --- Static export through kaleido + Chromium ----------------------------------------------

def chromium_path() -> str | None:
    """The browser kaleido drives: $RSVIZ_CHROMIUM, $BROWSER_PATH, else chromium on PATH."""
    for var in ("RSVIZ_CHROMIUM", "BROWSER_PATH"):
        if os.environ.get(var):
            path = os.environ[var]
            return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    for name in _BROWSER_NAMES:
        if found := shutil.which(name):
            return found
    return next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser")
                 if os.access(p, os.X_OK)), None)


def static_export_available() -> tuple[bool, str]:
    """Whether PNG/SVG/PDF export can work here, and why not (a sentence for the user)."""
    if os.environ.get("RSVIZ_STATIC_EXPORT", "1") == "0":
        return False, "Static export is switched off (RSVIZ_STATIC_EXPORT=0)."
    try:
        import kaleido  # noqa: F401
    except ImportError:
        return False, "The kaleido package is not installed (pip install kaleido)."
    path = chromium_path()
    if path is None:
        where = os.environ.get("RSVIZ_CHROMIUM") or os.environ.get("BROWSER_PATH")
        detail = f"no browser at {where}" if where else "Chromium is not installed"
        return False, (f"PNG/SVG/PDF export needs a Chromium browser ({detail}). Install the "
                       "Debian package 'chromium' or set RSVIZ_CHROMIUM=/path/to/chromium.")
    if (_RENDERER.failure and _RENDERER.failure_path == path
            and time.monotonic() - _RENDERER.failure_at < FAILURE_MEMORY_S):
        return False, f"Chromium failed to render: {_RENDERER.failure}"
    return True, f"Chromium at {path}"


class _Renderer:
    """One headless Chromium (kaleido) on its own event-loop thread, shared by all callers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._kaleido: Any = None
        self._path: str | None = None
        self.failure: str | None = None
        self.failure_path: str | None = None
        self.failure_at = 0.0
        self.starts = 0

    def _start(self, path: str) -> None:
        import kaleido

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True, name="rsviz-kaleido").start()

        async def open_browser() -> Any:
            k = kaleido.Kaleido(n=1, timeout=RENDER_TIMEOUT_S, mathjax=False, path=path)
            await k.open()
            return k

        try:
            self._kaleido = asyncio.run_coroutine_threadsafe(open_browser(), loop).result(60)
        except BaseException:
            loop.call_soon_threadsafe(loop.stop)
            raise
        self._loop, self._path = loop, path
        self.starts += 1

    def close(self) -> None:
        with self._lock:
            loop, k, self._loop, self._kaleido = self._loop, self._kaleido, None, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(k.close(), loop).result(10)
        except Exception:  # noqa: BLE001 - closing a browser that already died
            pass
        loop.call_soon_threadsafe(loop.stop)

    def render(self, fig_dict: dict, opts: dict, path: str) -> bytes:
        for attempt in range(2):  # a crashed browser is restarted once
            with self._lock:
                if self._loop is None or self._path != path:
                    if self._loop is not None:
                        self._lock.release()
                        try:
                            self.close()
                        finally:
                            self._lock.acquire()
                    self._start(path)
                loop, k = self._loop, self._kaleido
            try:
                future = asyncio.run_coroutine_threadsafe(k.calc_fig(fig_dict, opts=opts), loop)
                return future.result(RENDER_TIMEOUT_S + 10)
            except Exception:
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


_RENDERER = _Renderer()
atexit.register(_RENDERER.close)


def render_static(fig: go.Figure, fmt: str, width: int, height: int, scale: float = 1.0) -> bytes:
    """Raw PNG/SVG/PDF bytes of `fig` from Chromium (no metadata); ExportError if impossible.

    With RSVIZ_KALEIDO_SERVER=0 every call starts its own browser (kaleido's one-shot path).
    """
    if fmt not in STATIC_FORMATS:
        raise ExportError(f"Unknown static format {fmt!r}; choose png, svg or pdf.")
    ok, reason = static_export_available()
    if not ok:
        raise ExportError(reason)
    path = chromium_path()
    opts = dict(format=fmt, width=int(width), height=int(height), scale=float(scale))
    fig_dict = json.loads(fig.to_json())
    try:
        if os.environ.get("RSVIZ_KALEIDO_SERVER", "1") == "0":
            import kaleido

            out = kaleido.calc_fig_sync(fig_dict, opts=opts,
                                        kopts=dict(mathjax=False, path=path))
        else:
            out = _RENDERER.render(fig_dict, opts, path)
    except Exception as exc:  # noqa: BLE001 - any browser failure becomes one clear message
        text = str(exc.args[0]) if exc.args else str(exc)
        first = (text.splitlines() or [""])[0][:200]
        _RENDERER.failure, _RENDERER.failure_path = f"{type(exc).__name__}: {first}", path
        _RENDERER.failure_at = time.monotonic()
        raise ExportError(f"Static export failed in Chromium ({type(exc).__name__}: {first}).") \
            from exc
    _RENDERER.failure = None
    return out if isinstance(out, bytes) else bytes(out)


# --- Metadata inside PNG, SVG, PDF and HTML files --------------------------------------------

META_NS = "urn:rsviz:figure-metadata:1"


def _meta_json(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), ensure_ascii=True, separators=(",", ":"))


def _png_chunk(tag: bytes, payload: bytes) -> bytes:
    return (struct.pack(">I", len(payload)) + tag + payload
            + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF))


def png_with_metadata(png: bytes, name: str, params: Mapping[str, Any], data: Any,
                      dpi: int | None = None) -> bytes:
    """PNG with tEXt chunks (Title, Software, rsviz:params), a zTXt chunk (rsviz:data) and
    the resolution (pHYs) set to `dpi`. Pillow reads them back in `Image.open(f).text`."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        raise ExportError("Chromium did not return a PNG image.")
    chunks, pos = [], 8
    while pos < len(png):
        length = struct.unpack(">I", png[pos:pos + 4])[0]
        chunks.append((png[pos + 4:pos + 8], png[pos:pos + 12 + length]))
        pos += 12 + length
    extra = [_png_chunk(b"tEXt", b"Title\0" + name.encode("latin-1", "replace")),
             _png_chunk(b"tEXt", f"Software\0rsviz {__version__}".encode()),
             _png_chunk(b"tEXt", b"rsviz:params\0" + _meta_json(params).encode()),
             _png_chunk(b"zTXt", b"rsviz:data\0\0" + zlib.compress(_meta_json(data).encode()))]
    if dpi:
        ppm = round(dpi / 0.0254)
        extra.append(_png_chunk(b"pHYs", struct.pack(">IIB", ppm, ppm, 1)))
    body = [raw for tag, raw in chunks if tag != b"pHYs"]
    return png[:8] + body[0] + b"".join(extra) + b"".join(body[1:])


def svg_with_metadata(svg: bytes, name: str, params: Mapping[str, Any], data: Any) -> bytes:
    """SVG with <title> and <metadata><rsviz:figure> holding {params, data} as JSON."""
    text = svg.decode("utf-8")
    end = text.find(">", text.find("<svg")) + 1
    if end <= 0:
        raise ExportError("Chromium did not return an SVG image.")
    payload = xml_escape(_meta_json({"params": params, "data": data}))
    block = (f"<title>{xml_escape(name)}</title><metadata id=\"rsviz-metadata\">"
             f"<rsviz:figure xmlns:rsviz=\"{META_NS}\">{payload}</rsviz:figure></metadata>")
    return (text[:end] + block + text[end:]).encode("utf-8")


def _pdf_text(value: str) -> bytes:
    """A PDF text string: UTF-16BE with byte-order mark, hex-encoded."""
    return b"<FEFF" + value.encode("utf-16-be").hex().upper().encode() + b">"


def pdf_with_metadata(pdf: bytes, name: str, params: Mapping[str, Any], data: Any) -> bytes:
    """PDF with a new Info dictionary appended as an incremental update (the original bytes
    are kept): Title, Subject, Keywords, Creator, and RsvizParams / RsvizData as JSON."""
    trailer_at = pdf.rfind(b"trailer")
    starts = re.findall(rb"startxref\s+(\d+)", pdf)
    size = re.search(rb"/Size\s+(\d+)", pdf[trailer_at:]) if trailer_at >= 0 else None
    root = re.search(rb"/Root\s+(\d+\s+\d+\s+R)", pdf[trailer_at:]) if size else None
    if not (starts and size and root):
        raise ExportError("Unexpected PDF layout from Chromium (no classic trailer).")
    n = int(size.group(1))
    subject = ", ".join(f"{k}={params[k]}" for k in ("model", "sigma", "n", "seed", "image_hash")
                        if k in params)
    entries = {"Title": name, "Subject": f"rsviz figure ({subject})" if subject else name,
               "Keywords": "rsviz, randomized smoothing", "Creator": f"rsviz {__version__}",
               "Producer": "rsviz via kaleido + Chromium (Skia/PDF)",
               "RsvizParams": _meta_json(params), "RsvizData": _meta_json(data)}
    body = pdf if pdf.endswith(b"\n") else pdf + b"\n"
    info = (f"{n} 0 obj\n<<".encode()
            + b"".join(b"/" + k.encode() + b" " + _pdf_text(v) + b"\n" for k, v in entries.items())
            + b">>\nendobj\n")
    xref_at = len(body) + len(info)
    tail = (f"xref\n0 1\n0000000000 65535 f \n{n} 1\n{len(body):010d} 00000 n \n"
            f"trailer\n<</Size {n + 1} /Root "
            f"{root.group(1).decode()} /Info {n} 0 R /Prev {int(starts[-1])}>>\n"
            f"startxref\n{xref_at}\n%%EOF\n").encode()
    return body + info + tail


def html_with_metadata(fig: go.Figure, name: str, params: Mapping[str, Any], data: Any,
                       plotlyjs: bool | str = True) -> bytes:
    """Interactive HTML (plotly.js embedded: works offline) with the metadata as JSON."""
    html = fig.to_html(include_plotlyjs=plotlyjs, full_html=True,
                       config={"toImageButtonOptions": {"filename": safe_name(name)}})
    payload = _meta_json({"params": params, "data": data}).replace("</", "<\\/")
    script = f'<script type="application/json" id="rsviz-metadata">{payload}</script>'
    html = html.replace("<head>", f"<head><title>{xml_escape(name)}</title>{script}", 1)
    return html.encode("utf-8")


def read_metadata(blob: bytes | str | Path, fmt: str | None = None) -> dict[str, Any]:
    """The {params, data} embedded by `export_figure` in a PNG, SVG, PDF, HTML or bundle."""
    if isinstance(blob, (str, Path)):
        fmt = fmt or Path(blob).suffix.lower().lstrip(".")
        blob = Path(blob).read_bytes()
    fmt = fmt or ("png" if blob[:4] == b"\x89PNG" else "pdf" if blob[:5] == b"%PDF-"
                  else "svg" if b"<svg" in blob[:200] else "json")
    if fmt == "png":
        from PIL import Image

        text = Image.open(io.BytesIO(blob)).text
        return {"params": json.loads(text["rsviz:params"]), "data": json.loads(text["rsviz:data"])}
    if fmt == "svg":
        import xml.etree.ElementTree as ET

        node = ET.fromstring(blob).find(f".//{{{META_NS}}}figure")
        if node is None:
            raise ExportError("No rsviz metadata in this SVG.")
        return json.loads(node.text or "{}")
    if fmt == "pdf":
        return _read_pdf_info(blob)
    if fmt == "html":
        found = re.search(rb'id="rsviz-metadata">(.*?)</script>', blob, re.S)
        if not found:
            raise ExportError("No rsviz metadata in this HTML file.")
        return json.loads(found.group(1))
    bundle = bundle_from_dict(json.loads(blob))
    return {"params": bundle.params, "data": bundle.data}


def _read_pdf_info(pdf: bytes) -> dict[str, Any]:
    info_ref = re.findall(rb"/Info\s+(\d+)\s+0\s+R", pdf[pdf.rfind(b"trailer"):])
    if not info_ref:
        raise ExportError("No Info dictionary in this PDF.")
    obj_at = pdf.rfind(b"\n" + info_ref[0] + b" 0 obj")
    obj = pdf[obj_at:pdf.find(b"endobj", obj_at)]
    values = {k.decode(): bytes.fromhex(v.decode()).decode("utf-16-be")
              for k, v in re.findall(rb"/(\w+)\s*<FEFF([0-9A-Fa-f]*)>", obj)}
    if "RsvizParams" not in values:
        raise ExportError("No rsviz metadata in this PDF.")
    return {"params": json.loads(values["RsvizParams"]),
            "data": json.loads(values.get("RsvizData", "null")), "info": values}


# --- One figure, one file -------------------------------------------------------------------

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


def safe_name(name: str) -> str:
    """A file-name-safe slug ('Boundary slice σ=0.25' -> 'Boundary_slice_s_0.25')."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("σ", "s")).strip("._")
    return slug or "figure"


# --- Figure packs ---------------------------------------------------------------------------

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
