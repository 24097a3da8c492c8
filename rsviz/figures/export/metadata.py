"""The parameters and data of a figure inside its file: PNG tEXt/zTXt chunks, SVG <metadata>,
PDF Info dictionary, a <script type="application/json"> in HTML; and reading them back."""

from __future__ import annotations

import io
import json
import re
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import plotly.graph_objects as go

from rsviz import __version__
from rsviz.figures.export.bundle import ExportError, bundle_from_dict, safe_name
from rsviz.storage import to_jsonable


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
