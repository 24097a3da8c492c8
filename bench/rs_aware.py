"""Plain vs RS-aware attacks against g_{σ,n} on the embedded model, same images, same budget.

For each σ and each of the first `--images` images of the ImageNet sample that both f and g_σ
classify correctly (g_σ: plurality of 32 seeded votes; an image g_σ already misclassifies has
nothing to attack), runs the plain and the RS-aware variant of `--attack` (HSJA by
default) once with budget 2 000 queries of g_{σ,n}, reads the reported point's L2 at the
checkpoints 250/500/1 000/2 000 (the last state at or below each), and measures the final
point's empirical P_a on 100 fresh queries (outside the budget). Then, for the figure, per
image and σ: the certified radius R(x_o) (CERTIFY with `--cert-n` votes) and the distance to
∂g_σ along the RS-aware point's direction (bisection on p̂_y = ½ with `--boundary-votes` votes).

Results are written per run as JSON under `--out` as soon as a run ends: a rerun skips what is
done, so the bench runs in chunks (`--max-minutes`), e.g.

    flock /tmp/rsviz-heavy.lock .venv/bin/python bench/rs_aware.py --sigmas 0.05 --max-minutes 14
    .venv/bin/python bench/rs_aware.py --threads 1 --shard 0/2 &   # one process per core
    .venv/bin/python bench/rs_aware.py --threads 1 --shard 1/2
    .venv/bin/python bench/rs_aware.py --report [--json t.json]  # tables + figure from what is saved

A query of g_{σ,10} costs up to 10 forward passes of Lite0 (the lazy vote stops early).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import harness
import numpy as np
import torch
from scipy import stats

from rsviz.attacks import OracleConfig, run_attack
from rsviz.attacks.rs_aware.geometry import geometry
from rsviz.smoothing import forward_labels, make_generator, sample_votes

CHECKPOINTS = (250, 500, 1000, 2000)
VARIANTS = ("plain", "rs-aware")
GATE_VOTES = 32  # noisy votes deciding whether g_σ classifies an image correctly


def images(folder: Path, count: int, model, sigma: float, votes: int = GATE_VOTES,
           seed: int = 0) -> list[tuple[str, torch.Tensor, int]]:
    """The first `count` images of labels.csv that both f and g_σ classify correctly.

    g_σ's label is the plurality of `votes` seeded noisy votes, as in bench/noise_accuracy.py:
    an image g_σ already misclassifies has nothing to attack (at σ = 0.25 Lite0's g_σ top-1 on
    the sample is 0.43, README, so many of f's correct images are skipped there)."""
    out = []
    for row in harness.labelled(folder):
        if len(out) >= count:
            break
        x = harness.image(model, str(folder / row["filename"]))
        y = int(row["class_index"])
        if int(forward_labels(model, x[None])[0]) != y:
            continue
        record = sample_votes(model, x[None], sigma, votes, make_generator(seed))
        if int(record.top_class()[0]) == y:
            out.append((row["filename"], x, y))
    return out


def at_checkpoints(points: list, checkpoints=CHECKPOINTS) -> dict[str, dict]:
    """L2 and forward passes of the reported point at the last state with ≤ q queries."""
    out = {}
    for q in checkpoints:
        before = [p for p in points if p[0] <= q]
        last = before[-1] if before else (0, 0, float("inf"), float("inf"), "")
        out[str(q)] = {"l2": float(last[2]), "forward_passes": int(last[1]),
                       "queries": int(last[0])}
    return out


class OneThreadOpenVINO:
    """The vote sampler's forward through OpenVINO fp32 on `threads` threads (--engine
    openvino): a background bench keeps to `threads` cores and never pins them, whatever the
    machine's core count (`rsviz.engines.openvino_config` pins when it owns every physical core).
    Checked against eager fp32 before use; attached with `rsviz.engines.attach`."""

    name = "openvino"
    rate = None

    def __init__(self, model, threads: int, batch_size: int = 16) -> None:
        import contextlib
        import io

        import openvino as ov

        shape = tuple(model.info.input_shape)
        with contextlib.redirect_stderr(io.StringIO()):    # torch.jit.trace notices
            graph = ov.convert_model(model, example_input=torch.rand((1, *shape)),
                                     input=[(-1, *shape)])
        compiled = ov.Core().compile_model(graph, "CPU", {"PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_NUM_THREADS": threads,
                                                          "INFERENCE_PRECISION_HINT": "f32",
                                                          # one process per core: no pinning to core 0
                                                          "ENABLE_CPU_PINNING": False})
        self.request = compiled.create_infer_request()
        self.batch_size = batch_size

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.request.infer({0: array})[0].copy())

    def check(self, model, x: torch.Tensor, count: int = 32) -> str:
        noise = torch.randn((count, *x.shape), generator=torch.Generator().manual_seed(0))
        points = torch.cat([x[None], (x + 0.25 * noise).clamp(0, 1)])
        with torch.no_grad():
            eager = model(points)
        ours = self.logits(points)
        if not torch.equal(eager.argmax(1), ours.argmax(1)):
            sys.exit("OpenVINO and eager fp32 disagree on a label: use --engine eager.")
        return (f"OpenVINO fp32 votes: labels = eager fp32 on {len(points)} inputs, "
                f"max |Δ logit| {float((eager - ours).abs().max()):.1e}")


def run_one(model, x, y, attack, variant, sigma, n, budget, seed) -> dict:
    config = OracleConfig(sigma=sigma, n=n, budget=budget, seed=seed)
    started = time.perf_counter()
    trace = run_attack(model, x, y, attack, config, seed, variant=variant)
    return {"attack": attack, "variant": variant, "sigma": sigma, "n": n, "budget": budget,
            "seed": seed, "checkpoints": at_checkpoints(trace.points),
            "l2": trace.l2, "queries": trace.queries, "forward_passes": trace.forward_passes,
            "p_a_empirical": trace.p_a_empirical, "p_a_queries": trace.p_a_queries,
            "p_a_forward_passes": trace.p_a_forward_passes, "success": trace.success,
            "seconds": time.perf_counter() - started, "phase": trace.points[-1][4],
            "x_adv": None if trace.x_adv is None else trace.x_adv.flatten().tolist()}


def load_results(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))
            if not p.name.startswith(("geometry", "figure"))]  # runs only


def report(out: Path, attack: str) -> list[dict]:
    """The tables of the saved runs (medians at each checkpoint, P_a) and the figure bundle;
    returns the table rows."""
    from rsviz.figures.export import save_bundle
    from rsviz.figures.rs_aware import distances_figure, distances_rows

    runs = [r for r in load_results(out) if r["attack"] == attack]
    rows = []
    for sigma in sorted({r["sigma"] for r in runs}):
        by = {(r["image"], r["variant"]): r for r in runs if r["sigma"] == sigma}
        names = sorted({i for i, v in by if (i, "plain") in by and (i, "rs-aware") in by})
        print(f"\n{attack} vs g(σ={sigma:g}, n={runs[0]['n']}) — {len(names)} images with both")
        if not names:
            continue
        print("| queries | median L2 plain | median L2 RS-aware | ratio of medians | "
              "RS-aware closer | Wilcoxon p |")
        print("|---:|---:|---:|---:|---:|---:|")
        for q in map(str, CHECKPOINTS):
            a = np.array([by[(i, "plain")]["checkpoints"][q]["l2"] for i in names])
            b = np.array([by[(i, "rs-aware")]["checkpoints"][q]["l2"] for i in names])
            finite = np.isfinite(a) & np.isfinite(b)
            p = (stats.wilcoxon(a[finite], b[finite]).pvalue
                 if finite.sum() >= 2 and np.any(a[finite] != b[finite]) else float("nan"))
            print(f"| {q} | {np.median(a):.3g} | {np.median(b):.3g} | "
                  f"{np.median(b) / np.median(a):.2f} | {int(np.sum(b < a))}/{len(names)} | "
                  f"{p:.3g} |")
            rows.append({"sigma": sigma, "queries": int(q), "images": len(names),
                         "median_l2_plain": float(np.median(a)),
                         "median_l2_rs_aware": float(np.median(b)),
                         "ratio": float(np.median(b) / np.median(a)),
                         "rs_aware_closer": int(np.sum(b < a)), "wilcoxon_p": float(p)})
        for v in VARIANTS:
            pa = np.array([by[(i, v)]["p_a_empirical"] or 0.0 for i in names])
            fp = np.array([by[(i, v)]["forward_passes"] for i in names])
            secs = np.array([by[(i, v)]["seconds"] for i in names])
            print(f"{v}: final empirical P_a (100 fresh queries) median {np.median(pa):.2f}, "
                  f"≥ 0.5 on {int(np.sum(pa >= 0.5))}/{len(names)}; per-image "
                  f"{' '.join(f'{p:.2f}' for p in pa)}; forward passes median {np.median(fp):.0f}"
                  f", {np.median(secs):.0f} s per run")
        geo_path = out / f"geometry_{attack}_{sigma:g}.json"
        if geo_path.exists():
            geo = json.loads(geo_path.read_text())
            rows = distances_rows(names, geo, by)
            fig = distances_figure(rows, title=f"{attack}: g(σ={sigma:g}, n=10), 2 000 queries")
            path = save_bundle(fig, rows, {"attack": attack, "sigma": sigma},
                               out / f"figure_{attack}_{sigma:g}.fig.json")
            print(f"figure bundle: {path}")
    return rows


def main() -> None:
    parser = harness.parser(__doc__, threads=2)
    parser.add_argument("--folder", default=str(harness.sample_folder()))
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--sigmas", default="0.05,0.25")
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--attack", default="hsja")
    parser.add_argument("--budget", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--out", default="bench/results/rs_aware")
    parser.add_argument("--max-minutes", type=float, default=14.0,
                        help="start no run after this (runs in progress finish)")
    parser.add_argument("--run-minutes", type=float, default=6.0,
                        help="expected minutes of one run (no run starts unless it fits)")
    parser.add_argument("--geometry", action="store_true",
                        help="compute R(x_o) and the ∂g_σ distance for finished images")
    parser.add_argument("--cert-n", type=int, default=1000)
    parser.add_argument("--boundary-votes", type=int, default=200)
    parser.add_argument("--report", action="store_true", help="only print the tables")
    parser.add_argument("--shard", default="0/1", metavar="K/M",
                        help="run only the images whose rank mod M is K (M processes in "
                             "parallel, one per core; they share --out)")
    parser.add_argument("--engine", choices=("auto", "openvino"), default="auto",
                        help="vote forward: the app's measured choice, or OpenVINO fp32 "
                             "on --threads threads")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        harness.save(args.json, "rs_aware", report(out, args.attack), attack=args.attack,
                     out=str(out))
        return
    harness.start(args)
    started = time.perf_counter()
    model = harness.load(args.model)
    sigmas = [float(s) for s in args.sigmas.split(",")]
    shard, shards = (int(v) for v in args.shard.split("/"))
    if not 0 <= shard < shards:
        sys.exit(f"--shard K/M needs 0 ≤ K < M (got {args.shard}).")
    if args.engine == "openvino":
        from rsviz.engines import attach

        engine = OneThreadOpenVINO(model, args.threads)
        check_input = torch.rand(tuple(model.info.input_shape),
                                 generator=torch.Generator().manual_seed(0))
        print(engine.check(model, check_input), file=sys.stderr)
        attach(model, engine)

    def time_left() -> bool:
        return (time.perf_counter() - started) / 60 + args.run_minutes <= args.max_minutes

    for sigma in sigmas:
        chosen = images(Path(args.folder), args.images, model, sigma, seed=args.seed)
        print(f"σ={sigma:g}: {len(chosen)} images correctly classified by f and g_σ: "
              f"{' '.join(Path(name).stem for name, _, _ in chosen)}", file=sys.stderr)
        chosen = chosen[shard::shards]
        if not chosen:
            print(f"shard {args.shard} has no image at σ={sigma:g}", file=sys.stderr)
            continue
        geo_path = out / f"geometry_{args.attack}_{sigma:g}.json"
        geo = json.loads(geo_path.read_text()) if geo_path.exists() else {}
        for name, x, y in chosen:    # image by image: both variants, then its geometry
            runs = {}
            for variant in VARIANTS:
                path = out / f"{args.attack}_{sigma:g}_{variant}_{Path(name).stem}.json"
                if path.exists():
                    runs[variant] = json.loads(path.read_text())
                    continue
                if not time_left():
                    print("time is up for this chunk", file=sys.stderr)
                    return
                result = run_one(model, x, y, args.attack, variant, sigma, args.n, args.budget,
                                 args.seed)
                result.update(image=name, label=y, machine=harness.fingerprint(model))
                path.write_text(json.dumps(result))
                runs[variant] = result
                print(f"σ={sigma:g} {variant:8s} {name}: L2 {result['l2']:.3g}, "
                      f"P_a {result['p_a_empirical']}, {result['forward_passes']} passes, "
                      f"{result['seconds']:.0f} s", file=sys.stderr, flush=True)
            if not args.geometry or name in geo:
                continue
            x_adv = runs["rs-aware"]["x_adv"] or runs["plain"]["x_adv"]
            geo[name] = geometry(model, x, y, sigma,
                                 None if x_adv is None else torch.tensor(x_adv),
                                 args.cert_n, args.boundary_votes, args.seed)
            if geo_path.exists():  # other shards' images, written meanwhile
                geo = {**json.loads(geo_path.read_text()), **geo}
            partial = geo_path.with_suffix(f".{shard}.tmp")
            partial.write_text(json.dumps(geo))
            partial.replace(geo_path)  # atomic: a reader never sees half a file
            print(f"geometry σ={sigma:g} {name}: {geo[name]}", file=sys.stderr, flush=True)

if __name__ == "__main__":
    main()
