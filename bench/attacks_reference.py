"""Fidelity of our decision-based attacks against reference implementations, image by image.

Pairs compared on the same correctly classified images of the ImageNet sample, through the same
oracle (undefended embedded model, fp32, one query per point, strict budget):

- HSJA (ours)     vs ART's `HopSkipJump` (adversarial-robustness-toolbox);
- SurFree (ours)  vs the authors' code (github.com/t-maho/SurFree, `config_example.json`);
- RayS (ours)     vs the authors' code (github.com/uclaml/RayS, `RayS_Single.py`).

A second run of each reference with another seed ("art2", "surfree_ref2", "rays_ref2") gives
the noise floor of the comparison: how far the reference is from itself.

Every attack reaches the model only through a `TraceOracle`, which counts every query (the
official SurFree's own counter skips its initial noise search; here it is counted, as for ours)
and records after each one the closest accepted point so far in ℓ2 and ℓ∞. The distortion at
q queries is that record at q: one run to the budget gives every checkpoint.

The references are never part of rsviz: ART is pip-installed, the two official repositories are
cloned into a folder given with --ref-dir (or RSVIZ_REF_DIR) and imported from there at run
time, unmodified (RayS's hard-coded `.cuda()` is made a no-op while it runs):

    .venv/bin/pip install adversarial-robustness-toolbox        # only for "art"
    git clone https://github.com/t-maho/SurFree REF/SurFree
    git clone https://github.com/uclaml/RayS REF/RayS
    .venv/bin/python bench/attacks_reference.py --ref-dir REF --images 20 --budget 2000 \\
        --attacks surfree,surfree_ref,rays,rays_ref --json-out results/fidelity.json
    .venv/bin/python bench/attacks_reference.py --tables-from results/fidelity.json

Per-image results are written to --json-out after every run; rerunning with the same file skips
what is there (use --max-minutes to work in chunks).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import json
import os
import sys
import time
from pathlib import Path

import harness
import numpy as np
import torch

from rsviz.attacks.base import run_steps
from rsviz.attacks.oracle import Oracle, OracleConfig
from rsviz.errors import BudgetExhausted, RsvizError
from rsviz.smoothing import forward_labels, make_generator

CHECKPOINTS = (250, 500, 1000, 2000)
LABELS = {"hsja": "HSJA (ours)", "art": "HopSkipJump (ART)", "art2": "ART, 2nd seed",
          "surfree": "SurFree (ours)", "surfree_ref": "SurFree (official)",
          "surfree_ref2": "SurFree off., 2nd seed", "rays": "RayS (ours)",
          "rays_ref": "RayS (official)", "rays_ref2": "RayS off., 2nd run"}
ATTACKS = tuple(LABELS)
PAIRS = (("hsja", "art"), ("surfree", "surfree_ref"), ("rays", "rays_ref"),
         ("art2", "art"), ("surfree_ref2", "surfree_ref"), ("rays_ref2", "rays_ref"))
SECOND_SEED = 7919   # added to the seed of the second run of a reference


class BatchOneOpenVINO:
    """f's fp32 labels through OpenVINO, one image per inference, one thread (--forward openvino).

    Each image is its own inference on a static [1,3,H,W] graph, so its label never depends on
    the batch it was sent in, and the same image always gets the same bits: a deterministic f,
    like eager fp32 at batch 1, about 4× faster on one AVX2 core. Checked against eager fp32 at
    start (labels and logits) before any attack runs.
    """

    def __init__(self, model) -> None:
        import openvino as ov

        shape = (1, *model.info.input_shape)
        with contextlib.redirect_stderr(io.StringIO()):    # torch.jit.trace notices
            graph = ov.convert_model(model, example_input=torch.rand(shape), input=[shape])
        compiled = ov.Core().compile_model(graph, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_NUM_THREADS": 1,
                                                          "INFERENCE_PRECISION_HINT": "f32",
                                                          # one process per core: no pinning to core 0
                                                          "ENABLE_CPU_PINNING": False})
        self.request = compiled.create_infer_request()

    def logits(self, xs: torch.Tensor) -> np.ndarray:
        batch = np.ascontiguousarray(xs.detach().to("cpu", torch.float32).numpy())
        return np.stack([self.request.infer({0: x[None]})[0][0].copy() for x in batch])

    def labels(self, xs: torch.Tensor) -> np.ndarray:
        return self.logits(xs).argmax(1)

    def check(self, model, x: torch.Tensor, count: int = 32) -> str:
        """Labels and logits of eager fp32 on x and `count` noisy copies (σ = 0.25, seeded);
        exits when a label differs or the same input gives different bits."""
        noise = torch.randn((count, *x.shape), generator=torch.Generator().manual_seed(0))
        points = torch.cat([x[None], (x + 0.25 * noise).clamp(0, 1)])
        with torch.no_grad():
            eager = model(points).numpy()
        ours = self.logits(points)
        if not (eager.argmax(1) == ours.argmax(1)).all():
            sys.exit("OpenVINO and eager fp32 disagree on a label: use --forward eager.")
        if not np.array_equal(ours[:1], self.logits(points[:1])):
            sys.exit("OpenVINO is not deterministic here: use --forward eager.")
        return (f"OpenVINO fp32 batch-1 forward: labels = eager fp32 on {len(points)} inputs, "
                f"max |Δ logit| {np.abs(eager - ours).max():.1e}, deterministic")


class TraceOracle(Oracle):
    """The oracle, recording after every single query the closest accepted ℓ2 and ℓ∞ so far.
    With `fast` (a `BatchOneOpenVINO`) f's labels come from it instead of eager torch."""

    def __init__(self, *args, fast: BatchOneOpenVINO | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fast = fast
        self.trace_l2: list[float] = []
        self.trace_linf: list[float] = []

    def _decide(self, xs: torch.Tensor) -> np.ndarray:
        if self.fast is None or self.config.sigma is not None:
            return super()._decide(xs)
        self.forward_passes += len(xs)
        return self._wrong(self.fast.labels(xs))

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


# --------------------------------------------------------------------------- runners


def run_ours(name: str, oracle: TraceOracle, x: torch.Tensor, seed: int) -> None:
    from rsviz.attacks import make_attack

    for _ in run_steps(make_attack(name), oracle, x, make_generator(seed, oracle.device)):
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
    with contextlib.suppress(BudgetExhausted):
        attack.generate(x[None].cpu().numpy(), y=np.array([[1.0, 0.0]], np.float32))


class TwoClassModel(torch.nn.Module):
    """The oracle as a torch model with two logits (class 1 = adversarial), for the official
    SurFree, which calls `model(batch).argmax(1) != labels`. The all-zero images it sends for
    finished examples and x_o itself (known to be correctly classified) are answered without a
    query; every other image is one query."""

    def __init__(self, oracle: TraceOracle) -> None:
        super().__init__()
        self.oracle = oracle

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        logits = torch.tensor([[1.0, 0.0]]).repeat(len(xs), 1)
        for i, x in enumerate(xs.detach().float()):
            if bool((x == 0).all()) or torch.equal(x, self.oracle.x_o):
                continue
            if bool(self.oracle.is_adversarial(x)):
                logits[i] = torch.tensor([0.0, 1.0])
        return logits


@contextlib.contextmanager
def imported_from(folder: Path):
    """sys.path[0] = folder while importing and running a reference (its modules are named
    `surfree`, `utils`, `RayS_Single`)."""
    if not folder.is_dir():
        sys.exit(f"{folder} not found: clone the reference there (see --help).")
    sys.path.insert(0, str(folder))
    try:
        with contextlib.redirect_stdout(io.StringIO()):   # both print every iteration
            yield
    finally:
        sys.path.remove(str(folder))


def run_surfree_ref(oracle: TraceOracle, x: torch.Tensor, seed: int, ref: Path) -> None:
    """The authors' SurFree with their `config_example.json`, steps and max_queries lifted so
    that the oracle's budget stops it."""
    with imported_from(ref / "SurFree"):
        surfree = importlib.import_module("surfree")
        config = json.loads((ref / "SurFree" / "config_example.json").read_text())
        init = dict(config["init"], steps=10**6, max_queries=10**6)
        torch.manual_seed(seed)
        attack = surfree.SurFree(**init)
        with contextlib.suppress(BudgetExhausted):
            attack(TwoClassModel(oracle), x[None].clone(), torch.tensor([0]), **config["run"])


class LabelModel:
    """The oracle as the `predict_label` model the official RayS expects (1 = adversarial)."""

    def __init__(self, oracle: TraceOracle) -> None:
        self.oracle = oracle

    def predict_label(self, xs: torch.Tensor) -> torch.Tensor:
        return self.oracle.is_adversarial(xs.reshape(self.oracle.x_o.shape)).reshape(1).long()


def run_rays_ref(oracle: TraceOracle, x: torch.Tensor, seed: int, ref: Path) -> None:
    """The authors' RayS (`RayS_Single.RayS`, ℓ∞, early stopping off), on the CPU."""
    cuda = torch.Tensor.cuda
    with imported_from(ref / "RayS"):
        rays = importlib.import_module("RayS_Single")
        attack = rays.RayS(LabelModel(oracle), order=np.inf, epsilon=0.0, early_stopping=False)
        torch.Tensor.cuda = lambda self, *args, **kwargs: self   # its one hard-coded .cuda()
        try:
            with contextlib.suppress(BudgetExhausted):
                attack(x[None].clone(), torch.tensor([0]), seed=seed,
                       query_limit=oracle.budget + 1)
        finally:
            torch.Tensor.cuda = cuda


def run(name: str, oracle: TraceOracle, x: torch.Tensor, seed: int, ref: Path | None) -> None:
    base = name.rstrip("2")
    if name.endswith("2"):
        seed += SECOND_SEED
    if base == "art":
        run_art(oracle, x, seed)
    elif base == "surfree_ref":
        run_surfree_ref(oracle, x, seed, ref)
    elif base == "rays_ref":
        run_rays_ref(oracle, x, seed, ref)
    else:
        run_ours(base, oracle, x, seed)


def distance_of(name: str) -> str:
    """The norm the attack minimises (the oracle's `best_x` follows it)."""
    return "linf" if name.startswith("rays") else "l2"


# --------------------------------------------------------------------------- statistics


def at_checkpoints(trace: list[float], budget: int) -> list[float]:
    return [trace[min(q, len(trace)) - 1] if trace else float("inf")
            for q in CHECKPOINTS if q <= budget]


def compare(ours: np.ndarray, ref: np.ndarray, rounds: int = 10_000) -> dict[str, np.ndarray]:
    """Paired comparison of [images, checkpoints] distortions: ratio of the medians, median
    per-image ratio with its 95 % bootstrap interval (resampling images), how often ours is
    smaller, and Wilcoxon signed-rank p-values of log(ours/ref): one-sided against "ours is
    larger" (a small p says ours is worse) and two-sided."""
    from scipy.stats import wilcoxon

    log_ratio = np.log(ours / ref)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(ours), size=(rounds, len(ours)))
    boot = np.exp(np.median(log_ratio[idx], axis=1))

    def p_value(col: np.ndarray, alternative: str) -> float:
        return float(wilcoxon(col, alternative=alternative).pvalue) if np.any(col != 0) else 1.0

    return {"ratio_of_medians": np.median(ours, 0) / np.median(ref, 0),
            "median_ratio": np.exp(np.median(log_ratio, 0)),
            "ci_low": np.percentile(boot, 2.5, axis=0),
            "ci_high": np.percentile(boot, 97.5, axis=0),
            "ours_smaller": (log_ratio < 0).sum(0),
            "p_worse": np.array([p_value(c, "greater") for c in log_ratio.T]),
            "p_two_sided": np.array([p_value(c, "two-sided") for c in log_ratio.T])}


def tables(results: dict, norm: str) -> str:
    budget = results["budget"]
    cols = [q for q in CHECKPOINTS if q <= budget]
    images = results["images"]
    lines = [f"median {norm} at queries",
             f"{'attack':<24}{'images':>7}" + "".join(f"{q:>11}" for q in cols)]
    for name in ATTACKS:
        rows = [entry[name][norm] for entry in images.values() if name in entry]
        if rows:
            lines.append(f"{LABELS[name]:<24}{len(rows):>7}"
                         + "".join(f"{m:>11.4g}" for m in np.median(np.array(rows), 0)))
    for ours_name, ref_name in PAIRS:
        both = [e for e in images.values() if ours_name in e and ref_name in e]
        if len(both) < 2:
            continue
        ours = np.array([e[ours_name][norm] for e in both])
        ref = np.array([e[ref_name][norm] for e in both])
        stats = compare(ours, ref)
        lines.append(f"\n{LABELS[ours_name]} / {LABELS[ref_name]}, {norm}, {len(both)} images")
        rows = [("ratio of medians", stats["ratio_of_medians"], "{:.3f}"),
                ("median per-image ratio", stats["median_ratio"], "{:.3f}"),
                ("  95% bootstrap CI", None, None),
                ("ours smaller", stats["ours_smaller"], "{:.0f}/" + str(len(both))),
                ("Wilcoxon p (ours worse)", stats["p_worse"], "{:.3f}"),
                ("Wilcoxon p (two-sided)", stats["p_two_sided"], "{:.3f}")]
        for label, values, fmt in rows:
            if values is None:
                cells = [f"{a:.2f}–{b:.2f}" for a, b in zip(stats["ci_low"], stats["ci_high"])]
            else:
                cells = [fmt.format(v) for v in values]
            lines.append(f"{label:<31}" + "".join(f"{c:>11}" for c in cells))
    return "\n".join(lines)


# --------------------------------------------------------------------------- driver


def correctly_classified(model, folder: Path, count: int):
    """(filename, x, label) of the first `count` correctly classified images, in file order."""
    for row in harness.labelled(folder):
        if count <= 0:
            return
        x = harness.image(model, str(folder / row["filename"]))
        y = int(row["class_index"])
        if int(forward_labels(model, x[None], precision="fp32")[0]) != y:
            print(f"skip {row['filename']}: misclassified", file=sys.stderr)
            continue
        count -= 1
        yield row["filename"], x, y


def check_available(attacks: list[str], ref: Path | None) -> None:
    unknown = set(attacks) - set(ATTACKS)
    if unknown:
        sys.exit(f"unknown attacks {sorted(unknown)}; choose among {', '.join(ATTACKS)}")
    if any(a.startswith("art") for a in attacks) and importlib.util.find_spec("art") is None:
        sys.exit("The HSJA reference needs ART, a benchmark-only dependency: "
                 ".venv/bin/pip install adversarial-robustness-toolbox (or drop art).")
    needs = {a.rstrip("2").replace("_ref", "") for a in attacks if "_ref" in a}
    for name, folder in (("surfree", "SurFree"), ("rays", "RayS")):
        if name in needs and (ref is None or not (ref / folder).is_dir()):
            sys.exit(f"{name}_ref needs the authors' code: git clone the official {folder} "
                     f"repository into REF/{folder} and pass --ref-dir REF (or RSVIZ_REF_DIR).")
    for name in attacks:
        if "_ref" not in name and not name.startswith("art"):
            try:
                from rsviz.attacks import make_attack
                make_attack(name.rstrip("2"))
            except (ImportError, RsvizError) as exc:
                sys.exit(f"{LABELS[name]} is not available ({exc}).")


def main() -> None:
    # --json-out (below) is this bench's results file: it carries the machines' fingerprints
    parser = harness.parser(__doc__, threads=1, raw=True, json_option=False)
    parser.add_argument("--folder", default=str(harness.sample_folder()),
                        help="folder with labels.csv")
    parser.add_argument("--images", type=int, default=5, help="correctly classified images")
    parser.add_argument("--first-image", type=int, default=1,
                        help="skip the correctly classified images before this one (1-based; "
                             "to split a run over processes, merged by --tables-from)")
    parser.add_argument("--budget", type=int, default=1000, help="queries per attack")
    parser.add_argument("--attacks", default="surfree,surfree_ref,rays,rays_ref",
                        help=f"comma-separated, among {', '.join(ATTACKS)}")
    parser.add_argument("--ref-dir", default=os.environ.get("RSVIZ_REF_DIR"),
                        help="folder holding the SurFree/ and RayS/ clones")
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--forward", choices=("eager", "openvino"), default="eager",
                        help="f's fp32 forward: eager torch, or OpenVINO at batch 1 (faster, "
                             "checked against eager at start)")
    parser.add_argument("--json-out", default=None, help="per-image results (resumed if present)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new run after this long (resume later)")
    parser.add_argument("--tables-from", nargs="+", default=None, metavar="JSON",
                        help="only print the tables of earlier --json-out files (merged)")
    parser.add_argument("--markdown", default=None, metavar="OURS,REF,NORM",
                        help="with --tables-from: the docs' table of one pair, e.g. "
                             "surfree,surfree_ref,l2")
    args = parser.parse_args()
    if args.tables_from:
        merged = merge([json.loads(Path(p).read_text()) for p in args.tables_from])
        if args.markdown:
            print(markdown(merged, *args.markdown.split(",")))
        else:
            print_tables(merged)
        return
    attacks = [a.strip() for a in args.attacks.split(",") if a.strip()]
    ref = Path(args.ref_dir) if args.ref_dir else None
    check_available(attacks, ref)
    folder = Path(args.folder)
    if not (folder / "labels.csv").exists():
        sys.exit(f"{folder / 'labels.csv'} not found: give --folder the ImageNet sample.")
    out = Path(args.json_out) if args.json_out else None
    results = {"model": args.model, "budget": args.budget, "seed": args.seed, "images": {}}
    if out is not None and out.exists():
        results = json.loads(out.read_text())
        if (results["model"], results["budget"], results["seed"]) != (args.model, args.budget,
                                                                        args.seed):
            sys.exit(f"{out} holds another model/budget/seed; choose another --json-out.")

    harness.start(args)
    model = harness.load(args.model)
    fast = BatchOneOpenVINO(model) if args.forward == "openvino" else None
    results.setdefault("machines", []).append(harness.fingerprint(model))  # one per chunk
    results.setdefault("forward", args.forward)
    if results["forward"] != args.forward:
        sys.exit(f"{out} was measured with --forward {results['forward']}; choose another file.")
    started = time.perf_counter()
    for i, (filename, x, y) in enumerate(correctly_classified(model, folder, args.images), 1):
        if i < args.first_image:
            continue
        if fast is not None and i == args.first_image:
            print(fast.check(model, x), file=sys.stderr)
        entry = results["images"].get(filename, {"label": y, "index": i})
        for name in attacks:
            if name in entry:
                continue
            if args.max_minutes and time.perf_counter() - started > 60 * args.max_minutes:
                print("time is up: rerun with the same --json-out to resume", file=sys.stderr)
                print_tables(results)
                return
            seed = args.seed + 1000 * i
            oracle = TraceOracle(model, x, y, OracleConfig(budget=args.budget, seed=seed,
                                                           precision="fp32"),
                                 distance=distance_of(name), fast=fast)
            t0 = time.perf_counter()
            run(name, oracle, x, seed, ref)
            entry[name] = {"queries": oracle.queries,
                           "l2": at_checkpoints(oracle.trace_l2, args.budget),
                           "linf": at_checkpoints(oracle.trace_linf, args.budget),
                           "seconds": round(time.perf_counter() - t0, 1)}
            if name.startswith("rays"):   # deterministic: whole traces, to compare query by query
                entry[name]["trace_linf"] = oracle.trace_linf
            results["images"][filename] = entry
            print(f"[{i}/{args.images}] {filename:<34} {LABELS[name]:<24} q {oracle.queries:>5}"
                  f"  ℓ2 " + " ".join(f"{d:.2f}" for d in entry[name]["l2"])
                  + f"  ({entry[name]['seconds']:.0f} s)", file=sys.stderr, flush=True)
            if out is not None:
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_text(json.dumps(results, indent=1))
    print_tables(results)


def merge(runs: list[dict]) -> dict:
    """One result set from several files of the same model, seed and budget."""
    merged = {"model": runs[0]["model"], "budget": min(r["budget"] for r in runs),
              "seed": runs[0]["seed"], "images": {}}
    for run_ in runs:
        for filename, entry in run_["images"].items():
            merged["images"].setdefault(filename, {}).update(entry)
    return merged


def print_tables(results: dict) -> None:
    print(f"\n{results['model']}, {len(results['images'])} images, budget {results['budget']}, "
          f"seed {results['seed']}; distortion = closest accepted query so far, [0,1] pixels")
    for norm in ("l2", "linf"):
        print()
        print(tables(results, norm))
    print()
    print(per_image(results))
    print(trace_agreement(results))


def markdown(results: dict, ours: str, ref: str, norm: str) -> str:
    """The docs' table of one pair: per image ours / reference and the paired statistics."""
    cols = [q for q in CHECKPOINTS if q <= results["budget"]]
    both = sorted((e for e in results["images"].values() if ours in e and ref in e),
                  key=lambda e: e["index"])
    names = {id(e): f for f, e in results["images"].items()}
    lines = [f"| image | " + " | ".join(map(str, cols)) + " |",
             "|---|" + "---:|" * len(cols)]
    for e in both:
        cells = [f"{a:.4g} / {b:.4g} ({a / b:.2f})" for a, b in zip(e[ours][norm], e[ref][norm])]
        lines.append(f"| {names[id(e)].split('_', 1)[1].rsplit('.', 1)[0]} | "
                     + " | ".join(cells) + " |")
    if len(both) >= 2:
        stats = compare(np.array([e[ours][norm] for e in both]),
                        np.array([e[ref][norm] for e in both]))
        rows = (("median of the per-image ratios", [f"**{v:.3f}**" for v in stats["median_ratio"]]),
                ("95 % bootstrap interval", [f"{a:.2f}–{b:.2f}" for a, b in
                                             zip(stats["ci_low"], stats["ci_high"])]),
                ("ratio of the medians", [f"{v:.3f}" for v in stats["ratio_of_medians"]]),
                ("images where ours is closer", [f"{v}/{len(both)}" for v in
                                                 stats["ours_smaller"]]),
                ("Wilcoxon p, against \"ours worse\"", [f"{v:.3f}" for v in stats["p_worse"]]),
                ("Wilcoxon p, two-sided", [f"{v:.3f}" for v in stats["p_two_sided"]]))
        lines += [f"| {label} | " + " | ".join(cells) + " |" for label, cells in rows]
    return "\n".join(lines)


def per_image(results: dict) -> str:
    """Per-image ratios ours / official at every checkpoint (SurFree in ℓ2, RayS in ℓ∞), and the
    official SurFree's second seed over its first (the noise floor)."""
    cols = [q for q in CHECKPOINTS if q <= results["budget"]]
    pairs = (("surfree", "surfree_ref", "l2"), ("surfree_ref2", "surfree_ref", "l2"),
             ("rays", "rays_ref", "linf"))
    lines = ["per-image ratio at " + "/".join(map(str, cols)),
             f"{'image':<34}" + "".join(f"{a + '/' + b + ' ' + n:>38}" for a, b, n in pairs)]
    for filename, entry in sorted(results["images"].items(), key=lambda e: e[1]["index"]):
        cells = []
        for a, b, norm in pairs:
            if a in entry and b in entry:
                cells.append(" ".join(f"{x / y:.2f}" for x, y in zip(entry[a][norm],
                                                                     entry[b][norm])))
            else:
                cells.append("")
        lines.append(f"{filename[:33]:<34}" + "".join(f"{c:>38}" for c in cells))
    return "\n".join(lines)


def trace_agreement(results: dict) -> str:
    """RayS draws no random numbers: the largest relative difference of the closest accepted ℓ∞,
    query by query, between ours and the official code (and between two official runs)."""
    lines = []
    for a, b in (("rays", "rays_ref"), ("rays_ref2", "rays_ref")):
        worst, count = 0.0, 0
        for entry in results["images"].values():
            if "trace_linf" in entry.get(a, {}) and "trace_linf" in entry.get(b, {}):
                x, y = np.array(entry[a]["trace_linf"]), np.array(entry[b]["trace_linf"])
                n = min(len(x), len(y))
                both = np.isfinite(x[:n]) & np.isfinite(y[:n])
                if np.any(np.isfinite(x[:n]) != np.isfinite(y[:n])):
                    worst = np.inf
                elif both.any():
                    worst = max(worst, float(np.max(np.abs(x[:n][both] / y[:n][both] - 1))))
                count += 1
        if count:
            lines.append(f"{LABELS[a]} vs {LABELS[b]}: traces on {count} images, largest "
                         f"relative ℓ∞ difference at any query {worst:.1e}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
