"""Benchmark: does every page's default show its phenomenon, in the time it promises?

Runs each page's default request (the "quick" preset sized to this machine, σ from the
sidebar's default for the model, n = 10, seed 0 — `bench/defaults.py`'s `request_for`) on a
seeded subset of the labelled sample images that f classifies correctly, headless, and prints
per view on how many images the phenomenon is in the figure, and the estimate shown before
Start (`rsviz.views.base.estimate`, learned factors included, as the page shows it) ÷ the
actual time:

- slice: the ideal g_σ map shows ∂g_σ (both y and another class on the grid);
- profile: the ideal g_σ curve (p̂_y) crosses ½ inside the window;
- dichotomy: the simulated outputs of every n lie on both sides of ∂g_σ;
- attack: against f, HSJA improves its first-success L2 by ≥ 2×, and the curve against
  g_{σ,n} is drawn (at least one accepted point).

Each run is timed through `rsviz.views.base.timed_run`, so later images use the factors the
first ones taught (as the app does). A JSON with the machine's fingerprint is written with
--json.

    .venv/bin/python bench/showcase.py [--images 20] [--seed 0] [--pages ...] [--json out.json]
"""

from __future__ import annotations

import json
import math
import random
import tempfile
import time
from pathlib import Path

import numpy as np

import harness
from defaults import N, request_for  # bench/defaults.py: the pages' requests
from rsviz import engines
from rsviz.defaults import PAGES, page_defaults
from rsviz.models import default_sigma
from rsviz.smoothing import forward_labels
from rsviz.views.base import estimate, measured_rate, timed_run
from rsviz.views.inputs import load_image

ROOT = Path(__file__).resolve().parent.parent


def shown(page: str, result) -> bool:
    """Whether the page's figure shows its phenomenon (module docstring)."""
    if page == "slice":
        r = result if hasattr(result, "g_labels") else result["result"]
        return bool((r.g_labels == r.y).any() and (r.g_labels != r.y).any())
    if page == "profile":
        p = result["profile"]
        return any(c.label.startswith("∂g_σ (p̂_y") and c.t is not None for c in p.crossings)
    if page == "dichotomy":
        r = result["result"]
        return all(0 < float((run.positions < r.t_g).mean()) < 1 for run in r.simulated.values())
    if page == "attack":
        on_f, on_g = result["f"]["trace"], result["g"]["trace"]
        first = next((p[2] for p in on_f.points if math.isfinite(p[2])), None)
        drawn = any(math.isfinite(p[2]) for p in on_g.points)
        return bool(first and on_f.success and first / max(on_f.l2, 1e-12) >= 2 and drawn)
    return True  # image: votes and the radius are always drawn


def table(records: list[dict], pages: list[str]) -> str:
    """The markdown table of the results (docs/architecture.md "Results" is this output)."""
    lines = ["| view | phenomenon shown | estimate ÷ actual (median, range) | actual s (median, max) |",
             "|---|---|---|---|"]
    for page in pages:
        done = [r[page] for r in records if page in r]
        if not done:
            continue
        ratio = [d["estimate_s"] / d["actual_s"] for d in done]
        actual = [d["actual_s"] for d in done]
        lines.append(f"| {page} | {sum(d['shown'] for d in done)}/{len(done)} | "
                     f"{np.median(ratio):.2f} ({min(ratio):.2f}–{max(ratio):.2f}) | "
                     f"{np.median(actual):.1f} ({max(actual):.1f}) |")
    return "\n".join(lines)


def main() -> None:
    parser = harness.parser(__doc__)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--folder", default=str(harness.sample_folder()))
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pages", default=",".join(p for p in PAGES if p != "image"))
    parser.add_argument("--table", nargs="+", metavar="JSON",
                        help="print the table of saved --json results (runs nothing)")
    args = parser.parse_args()
    if args.table:
        runs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.table]
        records = [r for run in runs for r in run["results"]["records"]]
        for run in runs:
            m = run["machine"]
            print(f"{m['date']}: {m['cpu']}, avx2 {m['avx2']}, avx512_bf16 {m['avx512_bf16']}, "
                  f"amx {m['amx']}, {m['threads']} threads, {m['forward']}, torch {m['torch']}, "
                  f"rsviz {m['rsviz']}; {run['settings']}")
        print(table(records, args.pages.split(",")))
        return
    harness.start(args)
    import os
    os.environ.setdefault("RSVIZ_CACHE_DIR", tempfile.mkdtemp(prefix="rsviz-showcase-"))
    model = harness.load(args.model, engine=True)
    sigma = default_sigma(model.info)[0]
    rate = measured_rate(model)
    folder = Path(args.folder)
    rows = harness.labelled(folder)
    random.Random(args.seed).shuffle(rows)
    print(f"{args.model}, σ {sigma:g}, n {N}, {engines.describe_forward(model)}, "
          f"sampler {rate:.1f} passes/s; images drawn with seed {args.seed}", flush=True)
    pages = args.pages.split(",")
    records = []
    for row in rows:
        if len(records) >= args.images:
            break
        x, _ = load_image(str(folder / row["filename"]), model)
        if int(forward_labels(model, x[None])[0]) != int(row["class_index"]):
            continue  # the phenomena are about correctly classified images
        record = {"image": row["filename"]}
        for page in pages:
            # the attack page's compare: f gets as many forward passes as g (2n per query)
            d = page_defaults(page, rate, "quick", n=2 * N if page == "attack" else N)
            request = request_for(page, d, model, x, sigma)
            guess = estimate(request, model).seconds
            started = time.perf_counter()
            try:
                result = timed_run(request, model, x)
                ok = shown(page, result)
            except Exception as exc:  # noqa: BLE001 - a page that refuses counts as not shown
                result, ok = None, False
                record[f"{page}_error"] = f"{type(exc).__name__}: {exc}"
            actual = time.perf_counter() - started
            record[page] = {"shown": ok, "estimate_s": guess, "actual_s": actual}
        records.append(record)
        print(json.dumps(record), flush=True)
    print("\n" + table(records, pages))
    harness.save(args.json, "showcase", {"sigma": sigma, "records": records}, model, None,
                 images=args.images, seed=args.seed, pages=pages, rate=rate)

if __name__ == "__main__":
    main()
