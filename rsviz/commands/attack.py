"""`rsviz attack IMAGE --attack hsja|surfree|rays`: a decision-based attack against f or g_{σ,n}."""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

from typing import Any

from rsviz.commands._common import (add_image_argument, add_model_arguments, context, inputs,
                                    run_view)
from rsviz.errors import ConfigError

NAME = "attack"
HELP = "run HSJA, SurFree or RayS against f (no --sigma) or g_{σ,n} and record its trace"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rsviz.attacks import CRITERIA, REGISTRY

    add_image_argument(parser)
    add_model_arguments(parser)
    parser.add_argument("--attack", choices=list(REGISTRY), default="hsja",
                        help="; ".join(f"{k}: {s.paper}" for k, s in REGISTRY.items()))
    parser.add_argument("--sigma", type=float,
                        help="attack g_{σ,n} with this σ (default: attack the base classifier f)")
    parser.add_argument("--n", type=int, default=10, help="votes per query of g_{σ,n} (10)")
    parser.add_argument("--criterion", choices=list(CRITERIA), default="single_draw",
                        help="; ".join(f"{k}: {v}" for k, v in CRITERIA.items()))
    parser.add_argument("--pa", type=float, default=0.5,
                        help="level P_a of the 'shortcut' and 'exact' criteria (0.5)")
    parser.add_argument("--target", type=int, help="target class (default: untargeted)")
    parser.add_argument("--budget", type=int, default=2000, help="queries (paper: 2000)")
    parser.add_argument("--variant", choices=["plain", "rs-aware"], default="plain",
                        help="plain: the published attack; rs-aware: knows it faces g_{σ,n} "
                             "(docs/rs_aware.md)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the attack and of the noise of g_{σ,n}")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="override a hyper-parameter of the attack (JSON value), repeatable")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                        help="forward precision of the oracle")
    parser.add_argument("--compare", action="store_true",
                        help="with --sigma: the same attack and seed against f too, both "
                             "summaries side by side (the app's default)")
    from rsviz.views.attack import COMPARE_F_BUDGET_CAP

    parser.add_argument("--f-budget", type=int, default=None,
                        help="with --compare: queries against f (default: as many forward passes "
                             f"as g's budget, n × --budget, at most {COMPARE_F_BUDGET_CAP:,})")
    parser.add_argument("--out", help="folder for trace.csv, trace.json, x_adv.png, "
                                      "perturbation.png")


def parse_params(items: list[str]) -> dict:
    """--param NAME=VALUE pairs (VALUE parsed as JSON, else kept as a string)."""
    params = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--param expects NAME=VALUE (got {item!r}).")
        name, value = item.split("=", 1)
        try:
            params[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[name.strip()] = value
    return params


def write_outputs(out: Path, trace: Any, x_o: Any, summary: dict) -> list[str]:
    """trace.csv (one row per state), trace.json (summary + rows), final images."""
    from PIL import Image

    from rsviz.figures.attacks import amplified_perturbation
    from rsviz.images import to_pil

    out.mkdir(parents=True, exist_ok=True)
    fields = ["queries", "forward_passes", "l2", "linf", "phase"]
    rows = [dict(zip(fields, p)) for p in trace.points]
    for row in rows:
        for k in ("l2", "linf"):
            row[k] = None if not math.isfinite(row[k]) else row[k]
    with open(out / "trace.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    files = [str(out / "trace.csv")]
    to_pil(x_o).save(out / "x_o.png")
    files.append(str(out / "x_o.png"))
    if trace.x_adv is not None:
        to_pil(trace.x_adv).save(out / "x_adv.png")
        image, gain = amplified_perturbation(trace.x_adv, x_o)
        Image.fromarray((image * 255).round().astype("uint8")).save(out / "perturbation.png")
        files += [str(out / "x_adv.png"), str(out / "perturbation.png")]
        summary["perturbation_gain"] = gain
    files.append(str(out / "trace.json"))
    (out / "trace.json").write_text(json.dumps({**summary, "files": files, "trace": rows},
                                               indent=1, default=str), encoding="utf-8")
    return files


def run(args: argparse.Namespace) -> dict:
    from rsviz.attacks import OracleConfig
    from rsviz.views.attack import AttackRequest
    from rsviz.views.base import inputs as view_inputs

    config = OracleConfig(sigma=args.sigma, n=args.n, criterion=args.criterion, p_a=args.pa,
                          target=args.target, budget=args.budget, seed=args.seed,
                          precision=args.precision)
    params = parse_params(args.param)
    if args.compare:
        if args.sigma is None:
            raise ConfigError("--compare needs --sigma (the g_{σ,n} to compare f with).")
        if args.out:
            raise ConfigError("--compare writes no --out folder: run each attack alone for it.")
    model, x, name = inputs(args)
    if args.compare:
        from rsviz.views.attack import CompareRequest

        request = CompareRequest(**view_inputs(model, x), attack=args.attack, config=config,
                                 params=tuple(params.items()), variant=args.variant,
                                 f_budget=args.f_budget)
        result = run_view(request, model, x, f"{NAME} {args.attack} (f and g)")
        return {**context(model, x, name, request),
                "compare": request.summary(result, model.info.class_name)}
    request = AttackRequest(**view_inputs(model, x), attack=args.attack, config=config,
                            params=tuple(params.items()), variant=args.variant)
    result = run_view(request, model, x, f"{NAME} {args.attack}")
    summary = {**context(model, x, name, request), **request.summary(result, model.info.class_name)}
    if args.out:
        summary["files"] = write_outputs(Path(args.out), result["trace"], x, summary)
    return summary


def render(result: dict) -> str:
    if "compare" in result:
        return "\n".join(render({**result, **run}) for run in result["compare"].values())
    head = (f"{result['image']} — {result['model']}: {result['attack']} against "
            f"{result['oracle']}, {result['queries']:,} queries "
            f"({result['forward_passes']:,} forward passes, {result['seconds']:.1f} s)")
    if not result["success"]:
        return head + "\n  no adversarial point accepted within the budget"
    lines = [head, f"  L2 {result['l2']:.4f}   L∞ {result['linf']:.5f}",
             f"  {result['label_name']} ({result['label']}) -> {result['adv_label_name']} "
             f"({result['adv_label']}); f at x_adv: {result['adv_label_f']}"]
    for path in result.get("files", []):
        lines.append(f"  wrote {path}")
    return "\n".join(lines)
