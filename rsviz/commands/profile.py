"""`rsviz profile IMAGE`: adversarial-direction profile with P_a levels and SORM (paper Fig. 1)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rsviz.commands._common import (SIGMA_HELP, add_image_argument, add_model_arguments, context,
                                    field_defaults, inputs, model_sigma, run_view, spaced)
from rsviz.errors import RsvizError

NAME = "profile"
HELP = "probability of being adversarial along the direction of a white-box x_a, with SORM (Fig. 1)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.profile import WINDOWS, ProfileConfig

    d = field_defaults(ProfileConfig)
    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--sigma", type=float, help=SIGMA_HELP)
    parser.add_argument("--n", type=int, nargs="+", default=list(d["n_values"]),
                        help="votes of g_{σ,n}, several allowed "
                             f"(default {spaced(d['n_values'])})")
    parser.add_argument("--samples", type=int, default=d["n_samples"],
                        help="N noisy samples per point")
    parser.add_argument("--points", type=int, default=d["points"], help="profile points")
    parser.add_argument("--start", type=float, default=d["start"], help="range start, L2 from x_o")
    parser.add_argument("--stop", type=float, default=d["stop"],
                        help="range end, L2 from x_o (default: --window)")
    parser.add_argument("--window", choices=WINDOWS, default=d["window"],
                        help="default range: gsigma (past ∂g_σ, searched first, far enough for "
                             "every n to reach every P_a) or x_a (‖x_a − x_o‖ + beyond·σ)")
    parser.add_argument("--beyond", type=float, default=d["beyond"],
                        help="extent past x_a of --window x_a, in σ")
    parser.add_argument("--pa", type=float, nargs="+", default=list(d["p_levels"]),
                        help="P_a levels")
    parser.add_argument("--alpha", type=float, default=d["alpha"], help="Clopper–Pearson level")
    parser.add_argument("--no-curvature", action="store_false", dest="curvature",
                        default=d["curvature"], help="skip curvature and SORM")
    parser.add_argument("--lanczos-steps", type=int, default=d["lanczos_steps"])
    parser.add_argument("--probes", type=int, default=d["probes"], help="log-det probes")
    parser.add_argument("--slq-steps", type=int, default=d["slq_steps"],
                        help="Lanczos steps per probe")
    parser.add_argument("--attack-iters", type=int, default=d["attack_iters"],
                        help=f"margin gradients of the white-box attack (default "
                             f"{d['attack_iters']})")
    parser.add_argument("--seed", type=int, default=d["seed"])
    parser.add_argument("--out", help="folder for profile.csv, profile.json, profile.html "
                                      "(and PNGs when static export works)")


def run(args: argparse.Namespace) -> dict:
    from rsviz.views.base import inputs as view_inputs
    from rsviz.views.profile import ProfileRequest

    model, x, name = inputs(args)
    config = profile_config(args, model_sigma(args, model))
    request = ProfileRequest(**view_inputs(model, x), config=config)
    result = run_view(request, model, x, NAME)
    out = {**context(model, x, name, request), **request.summary(result)}
    if args.out:
        out["files"] = write_outputs(result["profile"], out, Path(args.out))
    return out


def profile_config(args: argparse.Namespace, sigma: float) -> Any:
    """The ProfileConfig of the command line at noise level `sigma`."""
    from rsviz.profile import ProfileConfig

    return ProfileConfig(sigma=sigma, n_values=tuple(sorted(set(args.n))),
                         n_samples=args.samples, points=args.points, start=args.start,
                         stop=args.stop, window=args.window, beyond=args.beyond,
                         p_levels=tuple(args.pa), alpha=args.alpha, seed=args.seed,
                         attack_iters=args.attack_iters, curvature=args.curvature,
                         lanczos_steps=args.lanczos_steps, probes=args.probes,
                         slq_steps=args.slq_steps)


def write_outputs(result, summary_dict: dict, folder: Path) -> list[str]:
    """profile.csv (curves), profile.json (summary + curves), profile.html / spectrum.html,
    and PNGs when kaleido can render."""
    from rsviz.figures.export import data_to_csv, export_figure
    from rsviz.storage import to_jsonable
    from rsviz.figures.profile import profile_figure, spectrum_figure

    folder.mkdir(parents=True, exist_ok=True)
    table = {k: v.tolist() for k, v in result.table().items()}
    files = []
    (folder / "profile.csv").write_text(data_to_csv(table) or "")
    (folder / "profile.json").write_text(json.dumps(to_jsonable({**summary_dict, "curves": table}),
                                                    indent=1))
    files += [str(folder / "profile.csv"), str(folder / "profile.json")]
    figures = {"profile": profile_figure(result, "Probability of being adversarial along x_a − x_o")}
    if result.curvature is not None:
        figures["spectrum"] = spectrum_figure(result, "Curvature spectrum of ∂f at x_a")
    params = {k: v for k, v in summary_dict.items() if k in ("model", "model_id", "image",
                                                               "image_hash", "config")}
    for stem, fig in figures.items():
        export_figure(fig, folder / f"{stem}.html", preset=None, metadata=params, data=table)
        files.append(str(folder / f"{stem}.html"))
        try:
            export_figure(fig, folder / f"{stem}.png", metadata=params, data=None)
            files.append(str(folder / f"{stem}.png"))
        except (RsvizError, Exception):  # noqa: BLE001 - PNG is optional (needs Chromium)
            pass
    return files


def render(result: dict) -> str:
    lines = [f"{result['image']} — {result['model']}: x_a at {result['distance_xa']:.4f} from x_o "
             f"(class {result['y']} -> {result['label_adv']}), R(x_o, σ) = {result['radius_xo']:.4f}"]
    if "gsigma_search" in result:
        lines.append(f"  {result['gsigma_search']['text']}")
    for c in result["crossings"]:
        where = "not reached" if c["from_xo"] is None else \
            f"{c['from_xo']:.4f} from x_o, {c['beyond_xa']:+.4f} beyond x_a"
        bound = "" if c["eq6_bound_from_xo"] is None else f" (eq. 6 bound {c['eq6_bound_from_xo']:.4f})"
        lines.append(f"  {c['label']:<22} {where}{bound}")
    if "curvature" in result:
        cv = result["curvature"]
        lines.append(f"  curvature: Σκ = {cv['sum_kappa']:.4g} ± {cv['sum_kappa_se']:.2g}, "
                     f"top κ = {cv['top_ritz'][0]:.4g}, bottom κ = {cv['bottom_ritz'][-1]:.4g}")
    for f in result.get("files", []):
        lines.append(f"  wrote {f}")
    return "\n".join(lines)
