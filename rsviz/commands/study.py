"""`rsviz study PLAN --out DIR`: run (or resume) a study plan; the Fig. 5 table as JSON rows.

    python -m rsviz study examples/plan_small.yaml --out results/small --json

Every task's result is stored in DIR/tasks/ as it finishes: running the same command again
resumes where it stopped. The folder can be opened later in the app's Study page.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

NAME = "study"
HELP = "run or resume a study plan (YAML/JSON) into a results folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("plan", help="plan file (.yaml, .yml or .json)")
    parser.add_argument("--out", required=True, help="results folder (created; resumed if it exists)")
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda:0 ...")
    parser.add_argument("--runner", default="local", choices=("local", "ray"),
                        help="local: tasks one by one in this process; ray: one Ray task per "
                             "study task (a local Ray with one worker per core, or --address)")
    parser.add_argument("--address", default=None,
                        help="with --runner ray: auto or HOST:PORT of a running Ray cluster")
    from rsviz.commands._common import add_engine_argument

    add_engine_argument(parser)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rsviz.device import resolve_device
    from rsviz.progress import StderrProgress
    from rsviz.study import load_plan
    from rsviz.views.study import request_for

    before = os.environ.get("RSVIZ_ENGINE")
    if args.engine != "auto":  # every model of the plan, in this process and its workers
        os.environ["RSVIZ_ENGINE"] = args.engine
    try:
        plan = load_plan(args.plan)
        device = resolve_device(args.device)
        request = request_for(plan, args.out, base=str(Path(args.plan).resolve().parent),
                              device=device.type, runner=args.runner, address=args.address)
        study = request.run(None, None, StderrProgress(f"study {plan.name}"))
        return request.summary(study)
    finally:  # the caller's environment as it was (tests run commands in-process)
        if before is None:
            os.environ.pop("RSVIZ_ENGINE", None)
        else:
            os.environ["RSVIZ_ENGINE"] = before


def render(result: dict[str, Any]) -> str:
    def num(v: Any, fmt: str) -> str:
        width = int("".join(c for c in fmt.split(".")[0] if c.isdigit()) or 0)
        return "—".rjust(width) if v is None else format(v, fmt)

    lines = [f"study {result['plan']}: {result['images']} images, {result['tasks']} tasks "
             f"({result['executed']} run now, {result['reused']} reused) -> {result['out']}",
             f"  {'attack':<9}{'configuration':<34}{'acc':>6}{'mean L2':>10}{'median L2':>11}"
             f"{'success':>9}{'L2/R med':>10}"]
    for r in result["rows"]:
        config = "f (undefended)" if r["sigma"] is None else \
            f"σ={r['sigma']:g} n={r['n']} {r['criterion']}" + \
            (f" P_a={r['p_a']:g}" if r["p_a"] is not None else "")
        lines.append(f"  {r['attack']:<9}{config:<34}{num(r['accuracy'], '6.0%')}"
                     f"{num(r['mean_l2'], '10.3f')}{num(r['median_l2'], '11.3f')}"
                     f"{num(r['success_rate'], '9.0%')}{num(r['median_ratio'], '10.1f')}")
    for c in result["certification"]:
        lines.append(f"  certify σ={c['sigma']:g}: accuracy f {num(c['accuracy_f'], '.0%')}, "
                     f"g {num(c['accuracy_g'], '.0%')}, median radius "
                     f"{num(c['median_radius_correct'], '.3f')}")
    return "\n".join(lines)
