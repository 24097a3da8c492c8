"""`rsviz analyze FILE.tsv ...`: certified accuracy at chosen radii and the average certified
radius of certification results in Cohen et al.'s TSV format (their released files, rsviz's
own, or any tool's `idx label predict radius correct time`), computed as their analyze.py
does; `--figure` draws the curves of paper Fig. 4 side by side."""

from __future__ import annotations

import argparse

NAME = "analyze"
HELP = "certified accuracy at radii and average certified radius of Cohen-format TSV files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tsv", nargs="+", help="certification results (Cohen et al.'s TSV)")
    parser.add_argument("--radii", type=float, nargs="+", metavar="R",
                        help="radii of the table (default 0 0.25 ... 1.5)")
    parser.add_argument("--step", type=float,
                        help="instead of --radii: np.arange(--start, --stop + step, step), "
                             "as analyze.py builds its tables (e.g. --start 0.25 --stop 1.5 "
                             "--step 0.25 for their CIFAR-10 table)")
    parser.add_argument("--start", type=float, default=0.0)
    parser.add_argument("--stop", type=float, default=1.5)
    parser.add_argument("--figure", metavar="PATH",
                        help="also write the certified-accuracy curves (.html, .png, .svg, "
                             ".pdf, .json bundle)")


def run(args: argparse.Namespace) -> dict:
    from rsviz.certification import DEFAULT_RADII, analyze_tsv, radii_grid
    from rsviz.errors import ConfigError

    if args.radii and args.step:
        raise ConfigError("Give --radii or --step, not both.")
    radii = (radii_grid(args.start, args.stop, args.step) if args.step
             else tuple(args.radii or DEFAULT_RADII))
    analyses = [analyze_tsv(path, radii) for path in args.tsv]
    out: dict = {"radii": list(radii), "files": [a.as_dict() for a in analyses]}
    if args.figure:
        from rsviz.figures.export import export_figure
        from rsviz.figures.study import certification_figure

        runs = {a.label: {a.sigma if a.sigma is not None else 0.0: list(a.rows)}
                for a in analyses}
        fig = certification_figure(runs)
        export_figure(fig, args.figure, data=out, name="certified_accuracy")
        out["figure"] = args.figure
    return out


def render(result: dict) -> str:
    from rsviz.certification import TsvAnalysis, analysis_table

    analyses = [TsvAnalysis(f["path"], f["label"], f["sigma"], f["images"],
                            tuple(result["radii"]), tuple(f["certified_accuracy"].values()),
                            f["average_radius"], f["abstain_rate"]) for f in result["files"]]
    text = analysis_table(analyses)
    return text + (f"\nfigure: {result['figure']}" if result.get("figure") else "")
