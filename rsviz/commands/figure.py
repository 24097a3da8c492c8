"""`rsviz figure RESULTS`: rebuild figures from saved figure bundles, without the app.

RESULTS is a figure bundle (JSON written by the app's "Bundle" download, by
`rsviz.figures.export.save_bundle` or by any CLI `--out`) or a folder searched recursively
for bundles. Each figure is written as OUT/NAME.FORMAT for every requested format, with the
parameters and data embedded in the file metadata; `--pack` also writes one zip.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rsviz.errors import ConfigError

NAME = "figure"
HELP = "rebuild figures (PNG/SVG/PDF/HTML/CSV) from saved figure bundles"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.figures.export import FORMATS
    from rsviz.figures.theme import BACKGROUNDS, PRESET_ALIASES, PRESETS

    parser.add_argument("results", help="a figure bundle (.json) or a folder of bundles")
    parser.add_argument("--preset", default="slide 16:9",
                        help="size preset: " + ", ".join(repr(p) for p in PRESETS)
                        + " (aliases: " + ", ".join(PRESET_ALIASES) + "), or 'none' to keep "
                        "the saved size; default 'slide 16:9'")
    parser.add_argument("--background", default="light", choices=sorted(BACKGROUNDS))
    parser.add_argument("--format", default="png",
                        help="comma-separated formats among " + ", ".join(FORMATS)
                        + "; default png")
    scale = parser.add_mutually_exclusive_group()
    scale.add_argument("--scale", type=float, help="PNG pixel multiplier (default: preset DPI)")
    scale.add_argument("--dpi", type=int, help="PNG resolution (scale = dpi / 96)")
    parser.add_argument("--out", default="figures", help="output folder (default ./figures)")
    parser.add_argument("--pack", action="store_true",
                        help="also write OUT/figures.zip with every figure in every format")


def _formats(text: str) -> list[str]:
    from rsviz.figures.export import FORMATS

    formats = [f.strip().lower().lstrip(".") for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(f"Unknown format {', '.join(unknown) or text!r}; choose among "
                          + ", ".join(FORMATS) + ".")
    return formats


def run(args: argparse.Namespace) -> dict:
    from rsviz.figures.export import (export_figure, figure_pack, find_bundles, load_bundle,
                                      safe_name, static_export_available)
    from rsviz.figures.theme import resolve_preset

    formats = _formats(args.format)
    preset = None if args.preset.lower() == "none" else resolve_preset(args.preset)
    dpi = args.dpi
    if dpi is None and args.scale is None and preset is not None:
        dpi = preset.default_dpi
    paths = find_bundles(args.results)
    if not paths:
        raise ConfigError(f"{args.results}: no rsviz figure bundle found.")
    ok, reason = static_export_available()
    if not ok and any(f in ("png", "svg", "pdf") for f in formats):
        raise ConfigError(f"{reason} (HTML, JSON and CSV still work: --format html,csv)")
    out_dir = Path(args.out)
    written, skipped, bundles = [], [], []
    used: set[str] = set()
    for path in paths:
        bundle = load_bundle(path)
        bundles.append(bundle)
        stem = safe_name(bundle.name)
        while stem in used:  # two bundles with one name: keep both
            stem += "_"
        used.add(stem)
        for fmt in formats:
            if fmt == "csv" and not _is_table(bundle.data):
                skipped.append({"figure": bundle.name, "format": fmt, "why": "data not tabular"})
                continue
            target = out_dir / f"{stem}.{fmt}"
            export_figure(bundle.figure, target, preset, args.background,
                          scale=args.scale if fmt == "png" else None,
                          dpi=dpi if fmt == "png" else None, metadata=bundle.params,
                          data=bundle.data, name=bundle.name)
            written.append(str(target))
    if args.pack:
        pack = out_dir / "figures.zip"
        pack.write_bytes(figure_pack(
            {b.name: b.figure for b in bundles}, {b.name: b.data for b in bundles},
            {b.name: b.params for b in bundles}, preset=preset, background=args.background,
            scale=args.scale, dpi=dpi, title=f"rsviz figures from {args.results}"))
        written.append(str(pack))
    return {"results": str(args.results), "bundles": [str(p) for p in paths],
            "preset": preset.name if preset else None, "background": args.background,
            "formats": formats, "dpi": dpi, "scale": args.scale, "written": written,
            "skipped": skipped}


def _is_table(data: object) -> bool:
    from rsviz.figures.export import data_to_csv

    return data_to_csv(data) is not None


def render(result: dict) -> str:
    lines = [f"{len(result['bundles'])} bundle(s) -> {len(result['written'])} file(s) "
             f"(preset {result['preset']}, {result['background']} background)"]
    lines += [f"  {p}" for p in result["written"]]
    lines += [f"  skipped {s['figure']}.{s['format']}: {s['why']}" for s in result["skipped"]]
    return "\n".join(lines)
