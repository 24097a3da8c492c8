"""Figure bundles, the saved-results format: a plotly figure, the data behind it and the
parameters that produced it, in one JSON object (format 'rsviz-figure-bundle')."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from rsviz import __version__
from rsviz.errors import RsvizError
from rsviz.storage import to_jsonable, write_text_atomic


BUNDLE_FORMAT = "rsviz-figure-bundle"
BUNDLE_VERSION = 1


class ExportError(RsvizError):
    """A figure could not be exported (no browser, render failure, unknown format)."""


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


def safe_name(name: str) -> str:
    """A file-name-safe slug ('Boundary slice σ=0.25' -> 'Boundary_slice_s_0.25')."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name.replace("σ", "s")).strip("._")
    return slug or "figure"
