"""Accuracy under Gaussian noise of every offline model: clean top-1 of the base classifier f and
top-1 of the smoothed classifier g_σ on a labelled folder (default: the shared ImageNet sample).

g_σ is estimated as rsviz does everywhere: N noisy votes per image drawn by
`rsviz.smoothing.sample_votes` (pixel-space noise, no clipping) with a fixed seed, then
- "plurality": the class with most votes (ties: lowest class index; never abstains);
- "PREDICT": Cohen et al.'s PREDICT at level α on the same votes: abstains unless a two-sided
  binomial test of the top two counts rejects equality; an abstention counts as wrong.
At σ = 0 there is no noise and g = f, so that column repeats f's clean top-1.

    flock /tmp/rsviz-heavy.lock .venv/bin/python bench/noise_accuracy.py [--n 32] [--models a,b]
        [--threads 2] [--save rows.json] [--load rows.json] [--json out.json]
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import harness
import numpy as np
import torch
from scipy import stats

from rsviz.errors import RsvizError
from rsviz.imagesets import from_folder
from rsviz.models import REGISTRY
from rsviz.smoothing import make_generator, sample_votes


def offline_models() -> list[str]:
    """Registry models that need no download and are not test-only."""
    return [name for name, spec in REGISTRY.items() if not spec.needs_download and not spec.test_only]


def predict_labels(counts: np.ndarray, alpha: float) -> np.ndarray:
    """Cohen et al.'s PREDICT on vote counts [m, C]: top class, or −1 (abstain)."""
    order = np.argsort(-counts, axis=1, kind="stable")
    out = np.empty(len(counts), dtype=np.int64)
    for i, row in enumerate(counts):
        n_a, n_b = int(row[order[i, 0]]), int(row[order[i, 1]])
        out[i] = order[i, 0] if stats.binomtest(n_a, n_a + n_b, 0.5).pvalue <= alpha else -1
    return out


def evaluate(name: str, images, sigmas: list[float], n: int, seed: int, alpha: float,
             precision: str) -> dict:
    """One table row: clean top-1 of f, plurality and PREDICT top-1 of g_σ, abstention rates."""
    started = time.perf_counter()
    model = harness.load(name)
    info = model.info
    points = torch.stack(images.tensors(info.input_size, info.resize, info.interpolation))
    labels = np.array([e.label for e in images.entries])
    with torch.inference_mode():
        clean = torch.cat([model(points[s:s + 32]).argmax(1) for s in range(0, len(points), 32)])
    f_top1 = float((clean.numpy() == labels).mean())
    row = {"model": name, "model_id": info.model_id, "images": len(labels), "n": n, "seed": seed,
           "alpha": alpha, "f_clean": f_top1, "plurality": {}, "predict": {}, "abstain": {}}
    for sigma in sigmas:
        if sigma == 0:
            row["plurality"][str(sigma)] = row["predict"][str(sigma)] = f_top1
            row["abstain"][str(sigma)] = 0.0
            continue
        votes = sample_votes(model, points, sigma, n, make_generator(seed), precision=precision)
        decided = predict_labels(votes.counts, alpha)
        row["plurality"][str(sigma)] = float((votes.top_class() == labels).mean())
        row["predict"][str(sigma)] = float((decided == labels).mean())
        row["abstain"][str(sigma)] = float((decided == -1).mean())
        row["precision"] = votes.precision
        print(f"  {name} σ={sigma}: plurality {row['plurality'][str(sigma)]:.3f}, PREDICT "
              f"{row['predict'][str(sigma)]:.3f} ({votes.forward_passes} passes, "
              f"{votes.seconds:.0f} s)", flush=True)
    row["seconds"] = time.perf_counter() - started
    return row


def table(rows: list[dict], sigmas: list[float], key: str) -> str:
    head = "| model | f clean | " + " | ".join(f"σ = {s:g}" for s in sigmas) + " |"
    lines = [head, "|" + "---|" * (2 + len(sigmas))]
    for row in rows:
        cells = [f"{row[key][str(s)]:.2f}" for s in sigmas]
        if key == "predict":
            cells = [f"{c} ({row['abstain'][str(s)]:.0%} abst.)" if s else c for c, s in zip(cells, sigmas)]
        lines.append(f"| {row['model']} | {row['f_clean']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = harness.parser(__doc__, threads=2)
    parser.add_argument("--images", default=str(harness.sample_folder()),
                        help="folder with labels.csv")
    parser.add_argument("--models", default=",".join(offline_models()))
    parser.add_argument("--sigmas", default="0,0.05,0.12,0.25,0.5")
    parser.add_argument("--n", type=int, default=32, help="votes per image (N ≥ 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--alpha", type=float, default=0.001, help="PREDICT's test level")
    parser.add_argument("--limit", type=int, default=0, help="seeded subset of this many images")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--save", help="write the rows as JSON here")
    parser.add_argument("--load", help="add the rows of an earlier --save (same settings)")
    args = parser.parse_args()
    harness.start(args)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    try:
        images = from_folder(args.images)
    except RsvizError as exc:
        sys.exit(str(exc))
    if args.limit:
        images = images.subset(args.limit, seed=args.seed)
    print(f"{len(images)} images of {args.images}, N = {args.n}, seed {args.seed}, "
          f"{args.threads} thread(s), {platform.processor() or platform.machine()}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    if args.load:
        for row in json.loads(Path(args.load).read_text()):
            same = (row["images"], row["n"], row["seed"]) == (len(images), args.n, args.seed)
            if same and row["model"] not in args.models.split(","):
                rows.append(row)
    for name in args.models.split(","):
        rows.append(evaluate(name, images, sigmas, args.n, args.seed, args.alpha, args.precision))
    if args.save:
        Path(args.save).write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\ng_σ top-1 by plurality of N = {args.n} votes (σ = 0: g = f):")
    print(table(rows, sigmas, "plurality"))
    print(f"\ng_σ top-1 by PREDICT (α = {args.alpha}, abstain counts as wrong):")
    print(table(rows, sigmas, "predict"))
    harness.save(args.json, "noise_accuracy", rows, images=args.images, n=args.n,
                 seed=args.seed, alpha=args.alpha, sigmas=sigmas, precision=args.precision)


if __name__ == "__main__":
    main()
