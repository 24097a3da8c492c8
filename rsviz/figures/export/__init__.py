"""Figures out of the app: PNG/SVG/PDF via plotly's static export, HTML, data, figure bundles.

Static export goes through kaleido 1.x with the system Chromium. One browser is kept alive per
process (`render._Renderer`): the first export pays the start (~2 s), later ones ~0.2 s. Every file
carries the data behind the figure and the parameters that produced it (model, image hash,
σ, n, seed, rsviz version): PNG tEXt/zTXt chunks, SVG <metadata>, PDF Info dictionary, a
<script type="application/json"> in HTML. A *figure bundle* (JSON: plotly figure + data +
params) is the saved-results format: the app's "Bundle" download, every CLI `--out`, and
`python -m rsviz figure` rebuilds any figure from it.

Modules: `bundle` (the JSON bundle format, CSV of tabular data, file names), `render`
(Chromium through kaleido), `metadata` (embedding and reading back the parameters and data),
`files` (`export_figure`, `figure_pack`). Every public name is importable from
`rsviz.figures.export` directly.
"""

from rsviz.figures.export.bundle import (BUNDLE_FORMAT, BUNDLE_VERSION, ExportError,
                                         FigureBundle, bundle_dict, bundle_from_dict,
                                         bundle_json, data_to_csv, find_bundles, is_bundle,
                                         load_bundle, safe_name, save_bundle, standard_params)
from rsviz.figures.export.files import FORMATS, MIME, export_figure, figure_pack
from rsviz.figures.export.metadata import (META_NS, html_with_metadata, pdf_with_metadata,
                                           png_with_metadata, read_metadata, svg_with_metadata)
from rsviz.figures.export.render import (FAILURE_MEMORY_S, RENDER_TIMEOUT_S, STATIC_FORMATS,
                                         chromium_path, render_static, static_export_available)
from rsviz.storage import to_jsonable

__all__ = ["BUNDLE_FORMAT", "BUNDLE_VERSION", "ExportError", "FAILURE_MEMORY_S", "FORMATS",
           "FigureBundle", "META_NS", "MIME", "RENDER_TIMEOUT_S", "STATIC_FORMATS",
           "bundle_dict", "bundle_from_dict", "bundle_json", "chromium_path", "data_to_csv",
           "export_figure", "figure_pack", "find_bundles", "html_with_metadata", "is_bundle",
           "load_bundle", "pdf_with_metadata", "png_with_metadata", "read_metadata",
           "render_static", "safe_name", "save_bundle", "standard_params",
           "static_export_available", "svg_with_metadata", "to_jsonable"]
