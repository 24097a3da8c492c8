"""Benchmark: study throughput, LocalRunner (1 process × T threads) against a local Ray (W
one-thread workers), on attack tasks, and the projected time of the paper's grid.

The same plan (attack tasks only: f and g_{σ,n} for each n, each attack, B queries) runs twice
from scratch — each runner with its own results folder and disk cache — and must give the same
numbers. Tasks per hour are measured from submission to the last stored result; the local
Ray's start and its workers' first imports are timed apart (a warm-up plan of other tasks).
Between the two, the same plan runs in one process with one thread: W such processes without
contention would finish in 1/W of its time, so 2-thread time × W / 1-thread time is the ceiling
of the Ray / LocalRunner ratio on this machine. Each run prints the whole machine's busy cores
(/proc/stat), and each runner the sum of its task times and the busy share of its slots.
The projection scales the measured forward passes per query (by attack, and per vote for
g_{σ,n}: the lazy criterion spends fewer than n) to the paper's grid (examples/
plan_paper_gpu.json: 200 images, 13 configurations, 3 attacks, 2000 queries) and divides by the
measured passes per second of each runner, for this model on this machine.

    flock /tmp/rsviz-heavy.lock .venv/bin/python bench/study.py [--images 2] [--budget 100]
        [--ns 1,10] [--attacks hsja,surfree,rays] [--workers 2] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import harness
import torch

from rsviz.engines import detach
from rsviz.imagesets import ImageSetSpec
from rsviz.study import LocalRunner, StudyPlan, run_study
from rsviz.study.ray_runner import RayRunner, start_ray

ROOT = Path(__file__).resolve().parent.parent
ENGINES = (Path(os.environ["RSVIZ_CACHE_DIR"]) if os.environ.get("RSVIZ_CACHE_DIR")
           else ROOT / "cache") / "engines"
SAMPLE = Path(os.environ.get("RSVIZ_SAMPLE_DIR", harness.sample_folder()))


def plan_for(args: argparse.Namespace, seed: int, images: int) -> StudyPlan:
    spec = (ImageSetSpec("folder", str(SAMPLE), subset=images, seed=args.image_seed)
            if SAMPLE.is_dir() else ImageSetSpec("samples", subset=images, seed=args.image_seed))
    return StudyPlan(name="bench", models=(args.model,), images=spec, sigmas=(args.sigma,),
                     ns=tuple(args.ns), criteria=("shortcut",), p_as=(0.5,),
                     attacks=tuple(args.attacks), budget=args.budget, seed=seed,
                     include_undefended=True, certify=None)


def timed_run(plan: StudyPlan, model, runner, folder: Path) -> tuple[float, list[dict]]:
    """Run `plan` from scratch: a fresh disk cache (nothing reused between runners) except the
    engines' measured choices (cache/engines), which every run shares: choosing an engine is
    a one-time cost per model and machine, paid in the warm-up runs, not timed here."""
    cache = folder / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    ENGINES.mkdir(parents=True, exist_ok=True)
    (cache / "engines").symlink_to(ENGINES, target_is_directory=True)
    os.environ["RSVIZ_CACHE_DIR"] = str(cache)
    started, jiffies = time.perf_counter(), cpu_jiffies()
    study = run_study(plan, folder / "out", model=model, runner=runner)
    seconds = time.perf_counter() - started
    print(f"  {folder.name}: {cores_busy(jiffies, cpu_jiffies())} of {os.cpu_count()} cores "
          "busy on average (whole machine)", flush=True)
    if study.failed:
        raise SystemExit(f"failed tasks: {study.failed}")
    return seconds, study.results


def cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) clock ticks of the whole machine since boot, from /proc/stat (Linux)."""
    try:
        # user nice system idle iowait irq softirq steal; guest time is already in user/nice
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def cores_busy(before: tuple[int, int] | None, after: tuple[int, int] | None) -> str:
    """Average number of busy cores between two `cpu_jiffies` readings."""
    if before is None or after is None or after[1] == before[1]:
        return "n/a"
    return f"{(after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1):.2f}"


def strip(results: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"}
            for r in sorted(results, key=lambda r: r["task_id"])]


def projection(results: list[dict], passes_per_second: float) -> dict:
    """The paper's grid from passes per query measured here (per vote for g_{σ,n})."""
    grid = json.loads((ROOT / "examples" / "plan_paper_gpu.json").read_text())
    per_query: dict[tuple[str, bool], list[float]] = {}
    for r in results:
        if r["queries"]:
            votes = r["n"] or 1
            per_query.setdefault((r["attack"], r["sigma"] is not None), []).append(
                r["forward_passes"] / r["queries"] / votes)
    mean = {k: sum(v) / len(v) for k, v in per_query.items()}
    images, budget = grid["images"]["subset"], grid["budget"]
    configs = [(None, 1)] + [(s, n) for s in grid["sigmas"] for n in grid["ns"]
                             for _ in grid["p_as"]]
    passes = 0.0
    for attack in grid["attacks"]:
        for sigma, n in configs:
            key = (attack, sigma is not None)
            factor = mean.get(key, 1.0)
            passes += images * budget * n * factor
    return {"tasks": images * len(configs) * len(grid["attacks"]), "forward_passes": passes,
            "hours": passes / passes_per_second / 3600,
            "passes_per_query_per_vote": {f"{a}/{'g' if d else 'f'}": round(v, 3)
                                          for (a, d), v in sorted(mean.items())}}


def main() -> None:
    parser = harness.parser(__doc__, threads=2)  # --threads: the LocalRunner's
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--image-seed", type=int, default=0)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--sigma", type=float, default=0.05)
    parser.add_argument("--ns", type=lambda s: [int(v) for v in s.split(",")], default=[1, 10])
    parser.add_argument("--attacks", type=lambda s: s.split(","),
                        default=["hsja", "surfree", "rays"])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    model = harness.load(args.model)
    plan = plan_for(args, seed=0, images=args.images)
    tasks = plan.tasks_per_image() * args.images
    print(f"{tasks} attack tasks: {args.model}, {args.images} images, f + σ={args.sigma} "
          f"n∈{args.ns}, {', '.join(args.attacks)}, {args.budget} queries; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    warm = replace(plan_for(args, seed=1, images=1), ns=(1,), attacks=("hsja",), budget=20)
    with tempfile.TemporaryDirectory() as tmp:
        torch.set_num_threads(args.threads)
        timed_run(warm, model, LocalRunner(), Path(tmp) / "warm-local")  # first imports
        local_s, local = timed_run(plan, model, LocalRunner(), Path(tmp) / "local")
        passes = sum(r["forward_passes"] for r in local)
        rows.append((f"LocalRunner, 1 process × {args.threads} threads", local_s, passes))
        print(f"{rows[-1][0]}: {local_s:.1f} s, {passes} forward passes; load average "
              f"{os.getloadavg()[0]:.1f}", flush=True)

        torch.set_num_threads(1)  # the ceiling of W one-thread workers: one of them alone
        detach(model)  # the engine chosen for 2 threads: choose again for 1
        timed_run(warm, model, LocalRunner(), Path(tmp) / "warm-local-1")  # engine choice
        single_s, single = timed_run(plan, model, LocalRunner(), Path(tmp) / "local-1")
        print(f"LocalRunner, 1 process × 1 thread: {single_s:.1f} s (task seconds sum "
              f"{sum(r['seconds'] for r in single):.1f}); {args.workers} such "
              f"processes without contention would take {single_s / args.workers:.1f} s, "
              f"{local_s / single_s * args.workers:.2f}× the {args.threads}-thread LocalRunner "
              "(the Ray ratio's ceiling)", flush=True)

        started = time.perf_counter()
        start_ray(None, workers=args.workers, threads=1)
        init_s = time.perf_counter() - started
        print(f"local Ray started in {init_s:.1f} s", flush=True)
        warm_s, _ = timed_run(warm, model, RayRunner(), Path(tmp) / "warm")  # worker imports
        ray_s, remote = timed_run(plan, model, RayRunner(), Path(tmp) / "ray")
        rows.append((f"local Ray, {args.workers} workers × 1 thread", ray_s,
                     sum(r["forward_passes"] for r in remote)))
        print(f"{rows[-1][0]}: {ray_s:.1f} s (after {warm_s:.1f} s of worker warm-up); load "
              f"average {os.getloadavg()[0]:.1f}", flush=True)
        import ray

        ray.shutdown()
    same = strip(local) == strip(remote)
    print(f"same results from both runners: {same}")
    print(f"local Ray start {init_s:.1f} s, first tasks (worker imports) {warm_s:.1f} s; "
          "not counted below")
    print(f"{'runner':<40}{'seconds':>9}{'tasks/hour':>12}{'passes/s':>10}")
    for name, seconds, passes in rows:
        print(f"{name:<40}{seconds:>9.1f}{tasks / seconds * 3600:>12.0f}{passes / seconds:>10.1f}")
    print(f"ratio Ray / LocalRunner (tasks per hour): {local_s / ray_s:.2f}")
    for (name, seconds, _), results, slots in zip(rows, (local, remote), (1, args.workers)):
        spent = sorted((r["seconds"] for r in results), reverse=True)
        longest = " / ".join(f"{t:.1f}" for t in spent[:3]) or "n/a"
        print(f"{name}: task seconds sum {sum(spent):.1f}, longest {longest}; "
              f"busy share of {slots} slot(s) "
              f"{sum(spent) / (seconds * slots):.2f}")
    for r_local, r_ray in zip(strip(local), strip(remote)):
        if r_local != r_ray:
            diff = sorted(k for k in r_local if r_local[k] != r_ray.get(k))
            print(f"differs: {r_local['task_id']} ({r_local['attack']}, n={r_local['n']}): "
                  f"{', '.join(diff)}")
    for name, seconds, passes in rows:
        proj = projection(local, passes / seconds)
        print(f"paper grid ({proj['tasks']} tasks, {proj['forward_passes']:.3g} forward passes "
              f"of {args.model}) with {name}: {proj['hours']:.0f} h")
    print(f"passes per query per vote measured: {proj['passes_per_query_per_vote']}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    harness.save(args.json, "study", {
        "runners": [{"runner": name, "seconds": seconds, "passes": passes,
                     "tasks_per_hour": tasks / seconds * 3600,
                     "paper_grid_hours": projection(local, passes / seconds)["hours"]}
                    for name, seconds, passes in rows],
        "ratio_ray_local": local_s / ray_s, "same_results": same, "ray_start_s": init_s,
        "ray_warmup_s": warm_s, "single_thread_s": single_s}, model, tasks=tasks,
        images=args.images, budget=args.budget, sigma=args.sigma, ns=args.ns,
        attacks=args.attacks, workers=args.workers, threads=args.threads)


if __name__ == "__main__":
    main()
