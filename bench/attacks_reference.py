"""Fidelity of our decision-based attacks on the undefended embedded model.

Runs our HSJA and a reference HopSkipJump (ART's `HopSkipJump`, adversarial-robustness-toolbox)
with the same budget on the same correctly classified images of the ImageNet sample, and prints
the median ℓ2 distortion at 250/500/1000/2000 queries; our SurFree and RayS are run on the same
images for the note (docs/attacks_fidelity.md), with the ℓ∞ table for RayS's own norm.

Every attack, the reference included, reaches the model through the same `Oracle` (one query
per point, strict budget): the reference sees a two-class black box ("original label" / "other")
built on that oracle. The distortion at q queries is the distance of the closest point the
oracle accepted among the first q queries (the same anytime measure for everyone, which is what
our attacks report as x_adv).

ART is a benchmark-only dependency, not in requirements.txt:

    .venv/bin/pip install adversarial-robustness-toolbox
    .venv/bin/python bench/attacks_reference.py                      # 5 images, budget 1000
    .venv/bin/python bench/attacks_reference.py --images 20 --budget 2000 --attacks hsja,art

Lite0 does ~100 forward passes/s on this CPU: the default (5 images × 4 attacks × 1000 queries)
takes ~5–15 minutes under load.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rsviz.attacks.base import run_steps  # noqa: E402
from rsviz.attacks.oracle import Oracle, OracleConfig  # noqa: E402
from rsviz.errors import BudgetExhausted, RsvizError  # noqa: E402
from rsviz.images import load_image_file, preprocess  # noqa: E402
from rsviz.models import load_model  # noqa: E402
from rsviz.smoothing import forward_labels, make_generator  # noqa: E402

CHECKPOINTS = (250, 500, 1000, 2000)
ATTACKS = ("hsja", "art", "surfree", "rays")
LABELS = {"hsja": "HSJA (ours)", "art": "HopSkipJump (ART)", "surfree": "SurFree (ours)",
          "rays": "RayS (ours)"}


class TraceOracle(Oracle):
    """The oracle, recording after every single query the closest accepted ℓ2 and ℓ∞ so far."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.trace_l2: list[float] = []
        self.trace_linf: list[float] = []

    def is_adversarial(self, xs: torch.Tensor) -> torch.Tensor:
        out = super().is_adversarial(xs)
        batch = (xs[None] if xs.dim() == 3 else xs).to(self.device, torch.float32)
        delta = (batch - self.x_o).flatten(1)
        l2, linf = delta.norm(dim=1).tolist(), delta.abs().amax(dim=1).tolist()
        best_l2 = self.trace_l2[-1] if self.trace_l2 else float("inf")
        best_linf = self.trace_linf[-1] if self.trace_linf else float("inf")
        for flag, d2, dinf in zip(out.reshape(-1).tolist(), l2, linf):
            if flag:
                best_l2, best_linf = min(best_l2, d2), min(best_linf, dinf)
            self.trace_l2.append(best_l2)
            self.trace_linf.append(best_linf)
        return out


def our_attack(name: str):
    """Our attack with its published defaults, from the registry (imported lazily)."""
    from rsviz.attacks import make_attack

    return make_attack(name)


def attack_distance(name: str) -> str:
    """The norm the attack minimises: the oracle's `best_x` (its reported x_adv) follows it."""
    from rsviz.attacks import REGISTRY

    return REGISTRY[name].distance if name in REGISTRY else "l2"


def run_ours(name: str, oracle: TraceOracle, x: torch.Tensor, seed: int) -> None:
    for _ in run_steps(our_attack(name), oracle, x, make_generator(seed, oracle.device)):
        pass


def run_art(oracle: TraceOracle, x: torch.Tensor, seed: int) -> None:
    """ART's HopSkipJump (ℓ2, untargeted, its defaults) on a two-class view of the oracle."""
    from art.attacks.evasion import HopSkipJump
    from art.estimators.classification import BlackBoxClassifier

    def predict(batch: np.ndarray) -> np.ndarray:
        adversarial = oracle.is_adversarial(torch.from_numpy(np.asarray(batch, np.float32)))
        flags = adversarial.reshape(-1).numpy().astype(np.int64)
        return np.eye(2, dtype=np.float32)[flags]       # class 1 = "not the original label"

    classifier = BlackBoxClassifier(predict, tuple(x.shape), 2, clip_values=(0.0, 1.0))
    attack = HopSkipJump(classifier, targeted=False, norm=2, max_iter=10_000, verbose=False)
    np.random.seed(seed)
    try:
        attack.generate(x[None].cpu().numpy(), y=np.array([[1.0, 0.0]], np.float32))
    except BudgetExhausted:
        pass


def at_checkpoints(trace: list[float], budget: int) -> list[float]:
    return [trace[min(q, len(trace)) - 1] if trace else float("inf")
            for q in CHECKPOINTS if q <= budget]


def table(title: str, results: dict[str, list[list[float]]], budget: int) -> str:
    cols = [q for q in CHECKPOINTS if q <= budget]
    lines = [title, f"{'attack':<20}" + "".join(f"{q:>10}" for q in cols)]
    for name, rows in results.items():
        medians = np.median(np.array(rows), axis=0) if rows else [float("nan")] * len(cols)
        lines.append(f"{LABELS[name]:<20}" + "".join(f"{m:>10.3f}" for m in medians))
    if results.get("hsja") and results.get("art"):
        ours, ref = np.array(results["hsja"]), np.array(results["art"])
        ratio = np.median(ours, 0) / np.median(ref, 0)
        lines.append(f"{'ours / ART':<20}" + "".join(f"{r:>10.2f}" for r in ratio))
        lines.extend(paired(ours, ref))
    return "\n".join(lines)


def paired(ours: np.ndarray, ref: np.ndarray) -> list[str]:
    """Per-image comparison on the same images ([images, checkpoints] distortions): the median
    of the per-image ratio, how often ours is smaller, and the two-sided Wilcoxon signed-rank
    p-value of log(ours/ref) (a small p says the two differ; it does not say which way)."""
    from scipy.stats import wilcoxon

    log_ratio = np.log(ours / ref)
    lines = [f"{'median per-image':<20}" + "".join(f"{r:>10.2f}"
                                                   for r in np.exp(np.median(log_ratio, 0))),
             f"{'ours smaller':<20}" + "".join(f"{int(w):>7d}/{len(ours):<2d}"
                                                for w in (log_ratio < 0).sum(0))]
    if len(ours) >= 6:
        p = [wilcoxon(col).pvalue if np.any(col != 0) else 1.0 for col in log_ratio.T]
        lines.append(f"{'Wilcoxon p':<20}" + "".join(f"{v:>10.2f}" for v in p))
        low, high = bootstrap_ratio_of_medians(ours, ref)
        lines.append(f"{'ours/ART 95% CI':<20}" + "".join(f"{f'{a:.2f}–{b:.2f}':>10}"
                                                          for a, b in zip(low, high)))
    return lines


def bootstrap_ratio_of_medians(ours: np.ndarray, ref: np.ndarray, rounds: int = 10_000,
                               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile 95 % interval of median(ours)/median(ref), resampling images (paired)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(ours), size=(rounds, len(ours)))
    ratios = np.median(ours[idx], axis=1) / np.median(ref[idx], axis=1)
    return np.percentile(ratios, 2.5, axis=0), np.percentile(ratios, 97.5, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parent.parent.parent / "shared" / "imagenet-sample"
    parser.add_argument("--folder", default=str(default), help="folder with labels.csv")
    parser.add_argument("--images", type=int, default=5, help="correctly classified images")
    parser.add_argument("--budget", type=int, default=1000, help="queries per attack (≤ 2000 "
                        "for the table; 2000 doubles the time)")
    parser.add_argument("--attacks", default=",".join(ATTACKS))
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", default=None, help="write the per-image results here")
    parser.add_argument("--tables-from", nargs="+", default=None, metavar="JSON",
                        help="only print the tables from earlier --json-out files (runs of "
                        "different attacks on the same images are merged)")
    args = parser.parse_args()
    if args.tables_from:
        print_merged(args.tables_from)
        return
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    unknown = set(attacks) - set(ATTACKS)
    if unknown:
        sys.exit(f"unknown attacks {sorted(unknown)}; choose among {', '.join(ATTACKS)}")
    if "art" in attacks:
        try:
            import art  # noqa: F401
        except ImportError:
            sys.exit("The reference needs ART, a benchmark-only dependency: "
                     ".venv/bin/pip install adversarial-robustness-toolbox "
                     "(or run with --attacks hsja,surfree,rays).")
    for name in attacks:
        if name != "art":
            try:
                our_attack(name)
            except (ImportError, RsvizError) as exc:
                sys.exit(f"{LABELS[name]} is not available yet ({exc}); drop it from --attacks.")
    folder = Path(args.folder)
    if not (folder / "labels.csv").exists():
        sys.exit(f"{folder / 'labels.csv'} not found: give --folder the ImageNet sample.")

    model = load_model(args.model, "cpu")
    info = model.info
    rows = list(csv.DictReader((folder / "labels.csv").open()))
    l2 = {name: [] for name in attacks}
    linf = {name: [] for name in attacks}
    seconds = {name: 0.0 for name in attacks}
    log = []
    used = 0
    for row in rows:
        if used >= args.images:
            break
        x = preprocess(load_image_file(str(folder / row["filename"])).original, info.input_size,
                       info.resize, info.interpolation)
        y = int(row["class_index"])
        if int(forward_labels(model, x[None])[0]) != y:
            print(f"skip {row['filename']}: misclassified", file=sys.stderr)
            continue
        used += 1
        entry = {"image": row["filename"], "label": y}
        for name in attacks:
            seed = args.seed + 1000 * used
            distance = "l2" if name == "art" else attack_distance(name)
            oracle = TraceOracle(model, x, y, OracleConfig(budget=args.budget, seed=seed),
                                 distance=distance)
            started = time.perf_counter()
            if name == "art":
                run_art(oracle, x, seed)
            else:
                run_ours(name, oracle, x, seed)
            seconds[name] += time.perf_counter() - started
            l2[name].append(at_checkpoints(oracle.trace_l2, args.budget))
            linf[name].append(at_checkpoints(oracle.trace_linf, args.budget))
            entry[name] = {"queries": oracle.queries, "l2": l2[name][-1], "linf": linf[name][-1]}
            print(f"[{used}/{args.images}] {row['filename']:<36} {LABELS[name]:<20} "
                  f"queries {oracle.queries:>5}  ℓ2 " + " ".join(f"{d:.3f}" for d in l2[name][-1])
                  + f"  ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        log.append(entry)

    cols = [q for q in CHECKPOINTS if q <= args.budget]
    print(f"\n{args.model}, {used} correctly classified images of {folder.name}, budget "
          f"{args.budget}, seed {args.seed}; distortion = closest accepted query so far, "
          f"[0,1] pixels, d = {x.numel()}")
    print(table("median ℓ2 at queries", l2, args.budget))
    print()
    print(table("median ℓ∞ at queries", linf, args.budget))
    print("\nwall time (s, parallel load: noisy): "
          + ", ".join(f"{LABELS[n]} {seconds[n]:.0f}" for n in attacks))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(
            {"model": args.model, "budget": args.budget, "seed": args.seed, "images": log},
            indent=1))


def print_merged(paths: list[str]) -> None:
    """Tables from several --json-out files; only images present in every file are kept."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    budget = min(run["budget"] for run in runs)
    common = set.intersection(*({e["image"] for e in run["images"]} for run in runs))
    l2: dict[str, list[list[float]]] = {}
    linf: dict[str, list[list[float]]] = {}
    for run in runs:
        for entry in run["images"]:
            if entry["image"] not in common:
                continue
            for name in ATTACKS:
                if name in entry:
                    n = len([q for q in CHECKPOINTS if q <= budget])
                    l2.setdefault(name, []).append(entry[name]["l2"][:n])
                    linf.setdefault(name, []).append(entry[name]["linf"][:n])
    l2 = {n: l2[n] for n in ATTACKS if n in l2}
    linf = {n: linf[n] for n in ATTACKS if n in linf}
    print(f"{runs[0]['model']}, {len(common)} images common to {len(paths)} runs, budget {budget}")
    print(table("median ℓ2 at queries", l2, budget))
    print()
    print(table("median ℓ∞ at queries", linf, budget))


if __name__ == "__main__":
    main()
