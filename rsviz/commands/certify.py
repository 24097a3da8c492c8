"""`rsviz certify`: Cohen et al.'s CERTIFY on one image, or over a folder of labelled images.

One image:  python -m rsviz certify IMAGE --sigma 0.25 --n0 100 --n 10000 --alpha 0.001 --json
A set:      python -m rsviz certify --images DIR [--labels CSV] [--subset K --seed S]
                --sigma 0.25 0.5 --n0 64 --n 512 --alpha 0.001 --out run.tsv --json
CIFAR-10:   --images cifar-10-batches-py (its test_batch) or --images .../data_batch_1
Beside published results: --compare sigma_0.25 [...] tables both at --radii (Cohen's TSV,
as `rsviz analyze`).

Defaults of n0 and n follow the device: CPU 64 / 512 (finishes), GPU 100 / 100 000 (Cohen's).
With several σ, one TSV per σ is written beside --out (`run_sigma0.25.tsv`, ...).
Both go through rsviz.certification.certify_one: an image's noise at σ is seeded from (--seed,
σ, the image's content), not its place in the set, so IMAGE alone and the same file in
--images give the same numbers (as the image page and a study do).
"""

from __future__ import annotations

import argparse
from typing import Any

from rsviz.commands._common import (add_model_arguments, context, field_defaults, load_cli_image,
                                    load_cli_model, model_sigma, run_view)
from rsviz.errors import ConfigError

NAME = "certify"
HELP = "Cohen et al.'s CERTIFY on one image, or over an image folder (Cohen's TSV)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.certification import CertificationConfig
    from rsviz.images import SAMPLES

    d = field_defaults(CertificationConfig)
    cpu, gpu = (CertificationConfig.defaults_for(device) for device in ("cpu", "cuda"))

    parser.add_argument("image", nargs="?",
                        help="one image file or sample:NAME (" + ", ".join(SAMPLES) + ")")
    parser.add_argument("--images", help="folder of labelled images, or a CIFAR-10 python batch "
                                         "file or cifar-10-batches-py folder (instead of IMAGE)")
    parser.add_argument("--labels", help="labels CSV (filename,class_index[,wnid,name]) or "
                                         "synset mapping file; default DIR/labels.csv")
    parser.add_argument("--subset", type=int, help="random subset of K images")
    parser.add_argument("--seed", type=int, default=d["seed"],
                        help="seed of the subset and the noise")
    parser.add_argument("--sigma", type=float, nargs="+",
                        help="σ, one or more (default: the model's, as in the app: the σ a "
                             "noise-trained model was trained with, else the paper's 0.05)")
    parser.add_argument("--n0", type=int,
                        help=f"votes to select the class (CPU {cpu.n0}, GPU {gpu.n0})")
    parser.add_argument("--n", type=int, help=f"votes for the bound (CPU {cpu.n}, GPU {gpu.n})")
    parser.add_argument("--alpha", type=float, default=d["alpha"],
                        help="failure probability α")
    parser.add_argument("--batch", type=int, help="forward batch size (default: from device)")
    parser.add_argument("--out", help="Cohen TSV to write (with --images)")
    parser.add_argument("--compare", nargs="+", metavar="TSV",
                        help="published certification results (Cohen et al.'s TSV) to table "
                             "beside this run's (with --images)")
    parser.add_argument("--radii", type=float, nargs="+", metavar="R",
                        help="radii of the --compare table (default 0 0.25 ... 1.5)")
    add_model_arguments(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rsviz.certification import curve, run_certification
    from rsviz.progress import StderrProgress

    if bool(args.image) == bool(args.images):
        raise ConfigError("Give either one IMAGE or --images DIR.")
    if args.compare and not args.images:
        raise ConfigError("--compare goes with --images (a run over a set).")
    model = load_cli_model(args)
    sigmas = tuple(args.sigma) if args.sigma else (model_sigma(args, model),)
    config = certification_config(args, model.device, sigmas)
    if args.image:
        return _one_image(args, model, config)
    images = _image_set(args.images, args.labels, model.info.class_names)
    images = images.subset(args.subset, args.seed)
    progress = StderrProgress(f"certify {len(images)} images × {len(config.sigmas)} σ")
    run_ = run_certification(model, images, config, args.out, progress)
    per_sigma = []
    for row in run_.table():
        sigma = float(row["sigma"])  # type: ignore[arg-type]
        radii, acc = curve(run_.runs[sigma], points=11)
        per_sigma.append({**row, "tsv": run_.paths.get(sigma),
                          "forward_passes": sum(r.forward_passes for r in run_.runs[sigma]),
                          "seconds": sum(r.time for r in run_.runs[sigma]),
                          "curve": {"radius": radii.tolist(), "certified_accuracy": acc.tolist()}})
    out = {"model": model.info.name, "images": len(images), "source": images.source,
           "n0": config.n0, "n": config.n, "alpha": config.alpha, "seed": config.seed,
           "skipped": list(images.notes), "sigmas": per_sigma}
    if args.compare:
        out["compare"] = _compare(args, model.info.name, run_.runs)
    return out


def certification_config(args: argparse.Namespace, device: Any,
                         sigmas: tuple[float, ...]) -> Any:
    """The CertificationConfig of the options: n0 and n the device's (`defaults_for`) unless
    given; α and the seed come in through argparse, whose defaults are the dataclass's."""
    from rsviz.certification import CertificationConfig

    return CertificationConfig.defaults_for(device, sigmas=sigmas, n0=args.n0, n=args.n,
                                            alpha=args.alpha, seed=args.seed,
                                            batch_size=args.batch)


def _image_set(path: str, labels: str | None, class_names: tuple[str, ...]) -> Any:
    """A folder of labelled images, or a CIFAR-10 python batch (a file, or a folder holding
    test_batch)."""
    from pathlib import Path

    from rsviz.imagesets import from_cifar10, from_folder

    root = Path(path).expanduser()
    if root.is_file() or (root / "test_batch").is_file():
        return from_cifar10(root, class_names)
    return from_folder(root, labels, class_names)


def _compare(args: argparse.Namespace, model: str, runs: dict) -> dict[str, Any]:
    """Published TSVs and this run's rows, analysed alike (certified accuracy at the radii as
    Cohen et al.'s analyze.py computes it, average certified radius)."""
    from rsviz.certification import DEFAULT_RADII, analyze_rows, analyze_tsv

    radii = tuple(args.radii or DEFAULT_RADII)
    analyses = [analyze_tsv(path, radii) for path in args.compare]
    analyses += [analyze_rows(rows, radii, label=f"{model}, σ = {sigma:g}", sigma=sigma)
                 for sigma, rows in sorted(runs.items()) if rows]
    return {"radii": list(radii), "files": [a.as_dict() for a in analyses]}


def _one_image(args: argparse.Namespace, model: Any, config: Any) -> dict[str, Any]:
    from rsviz.views.base import inputs as view_inputs
    from rsviz.views.certification import CertifyRequest

    x, name = load_cli_image(args.image, model)
    request = CertifyRequest(**view_inputs(model, x), config=config, name=name)
    rows = run_view(request, model, x, NAME)
    return {**context(model, x, name, request), **request.summary(rows, model.info.class_name)}


def render(result: dict[str, Any]) -> str:
    if "sigmas" not in result:
        lines = [f"{result['image']} — {result['model']} on {result['device']}, "
                 f"n0={result['n0']}, n={result['n']}, α={result['alpha']}"]
        for r in result["runs"]:
            verdict = ("abstain" if r["predict"] == -1 else
                       f"{r['predict_name']} ({r['predict']}), radius {r['radius']:.4f}")
            lines.append(f"  σ={r['sigma']:g}: {verdict}, p̲_A={r['p_lower']:.4f}, "
                         f"{r['forward_passes']:,} passes, {r['time']:.1f} s")
        return "\n".join(lines)
    lines = [f"{result['images']} images ({result['source']}), {result['model']}, "
             f"n0={result['n0']}, n={result['n']}, α={result['alpha']}",
             "  σ      acc f   acc g   drop    abstain  median radius  TSV"]
    for r in result["sigmas"]:
        fmt = lambda v: "  —   " if v is None else f"{v:6.1%}"  # noqa: E731
        med = r["median_radius_correct"]
        lines.append(f"  {r['sigma']:<6g} {fmt(r['accuracy_f'])}  {fmt(r['accuracy_g'])}  "
                     f"{fmt(r['drop'])}  {fmt(r['abstain_rate'])}   "
                     f"{'—' if med is None else f'{med:.3f}':>13}  {r['tsv'] or ''}")
    if result.get("compare"):
        from rsviz.commands.analyze import render as table

        lines += ["", table(result["compare"])]
    return "\n".join(lines)
