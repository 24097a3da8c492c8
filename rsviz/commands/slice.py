"""`rsviz slice IMAGE`: a 2D boundary slice with and without smoothing (paper Fig. 2)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from rsviz.commands._common import (add_image_argument, add_model_arguments, context,
                                    field_defaults, inputs, load_cli_image, run_view, spaced)
from rsviz.errors import RsvizError

NAME = "slice"
HELP = "2D slice of image space around an image: f and g_σ,n labels, P[adversarial] (Fig. 2)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.slices import DIRECTIONS, SliceConfig

    d = field_defaults(SliceConfig)
    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--sigma", type=float, default=d["sigma"],
                        help=f"noise σ (default {d['sigma']:g}, Fig. 2)")
    parser.add_argument("--n", type=int, nargs="+", default=list(d["ns"]),
                        help=f"n of the g_σ,n panels (default {spaced(d['ns'])})")
    parser.add_argument("--grid", type=int, default=d["grid"],
                        help=f"G, points per side (odd; default {d['grid']})")
    parser.add_argument("--extent", type=float, default=d["extent"],
                        help="half-width E in L2 units (default: automatic)")
    parser.add_argument("--samples", type=int, default=None,
                        help="N votes per point (default max(n))")
    parser.add_argument("--direction", choices=list(DIRECTIONS), default=d["direction"],
                        help="random: 2 random directions; image: towards --target + random; "
                             "whitebox: towards a white-box boundary point + random")
    parser.add_argument("--target", help="second image for --direction image "
                                         "(file or sample:NAME)")
    parser.add_argument("--mode", choices=["adaptive", "dense"], default=d["mode"])
    parser.add_argument("--n0", type=int, default=d["n0"], help="adaptive: first-pass votes")
    parser.add_argument("--alpha", type=float, default=d["alpha"],
                        help="adaptive: level of the sign test that stops a point's votes")
    parser.add_argument("--exact-realisations", action="store_true",
                        help="adaptive: draw exact lazy votes where a realisation is inferred")
    parser.add_argument("--clip", action="store_true",
                        help="clip the slice to [0,1]^d (off by default, as in the paper)")
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument("--out", default="results/slice", help="output folder")
    parser.add_argument("--no-png", action="store_true",
                        help="skip the PNG figures (kaleido + Chromium, ~2 s each)")


def run(args: argparse.Namespace) -> dict:
    from rsviz.images import tensor_hash
    from rsviz.views.base import inputs as view_inputs
    from rsviz.views.slice import SliceRequest

    model, x, name = inputs(args)
    target, target_name = None, ""
    if args.direction == "image":
        if not args.target:
            raise RsvizError("--direction image needs --target (a file or sample:NAME).")
        target, target_name = load_cli_image(args.target, model)
        target_name = f"{target_name} ({tensor_hash(target)[:8]})"
    config = slice_config(args, target_name)
    request = SliceRequest(**view_inputs(model, x), config=config, target=target)
    result = run_view(request, model, x, "slice")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result.save_npz(str(out / "slice.npz"))
    files = [str(out / "slice.npz")]
    notes = []
    from rsviz.figures.slices import slice_figures

    for stem, fig in slice_figures(result).items():
        path = out / f"{stem}.html"
        fig.write_html(str(path), include_plotlyjs="cdn")
        files.append(str(path))
        if args.no_png:
            continue
        try:
            fig.write_image(str(out / f"{stem}.png"), width=1500 if stem != "samples" else 600,
                            height=480, scale=2)
            files.append(str(out / f"{stem}.png"))
        except Exception as exc:  # noqa: BLE001 - kaleido/Chromium missing: HTML is enough
            notes.append(f"PNG skipped for {stem} ({type(exc).__name__}: {str(exc)[:80]})")
    return {**context(model, x, name, request), **request.summary(result), "files": files,
            "notes": notes, "out": os.fspath(out)}


def slice_config(args: argparse.Namespace, target_name: str = "") -> Any:
    """The SliceConfig of the command line (`target_name`: the second image's, if any)."""
    from rsviz.slices import SliceConfig

    return SliceConfig(sigma=args.sigma, ns=tuple(args.n), grid=args.grid, extent=args.extent,
                       n_samples=args.samples or max(args.n), direction=args.direction,
                       target=target_name, clip=args.clip, mode=args.mode, n0=args.n0,
                       alpha=args.alpha, exact_realisations=args.exact_realisations,
                       seed=args.seed)


def render(result: dict) -> str:
    from rsviz.views.slice import passes_note

    note = passes_note(result["forward_passes"], result["dense_passes"], result["mode"])
    lines = [f"{result['image']} — {result['model']} on {result['device']}: "
             f"{result['grid']}×{result['grid']} slice, ±{result['extent']:g} L2, "
             f"y = {result['y_name']}",
             f"forward passes: {result['forward_passes']:,} ({note}) in "
             f"{result['seconds']:.1f} s"]
    for n, frac in result["exact_fraction"].items():
        lines.append(f"  g_σ,{n}: exact realisations at {frac:.1%} of the points")
    lines += [f"  wrote {f}" for f in result["files"]] + [f"  note: {n}" for n in result["notes"]]
    return "\n".join(lines)
