"""Running and opening studies: load the plan's models, expand it into tasks per model, hand
them to a runner, write the tables; open one or several results folders together.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Sequence

import torch

from rsviz.certification import write_tsv
from rsviz.errors import ConfigError, RsvizError
from rsviz.images import model_input
from rsviz.imagesets import ImageSet
from rsviz.progress import Progress
from rsviz.models import Classifier, load_model_ref
from rsviz.study.aggregate import StudyResults
from rsviz.study.plan import StudyPlan, check_plan
from rsviz.study.runners import LocalRunner
from rsviz.study.runstate import TaskRunner
from rsviz.study.store import ResultStore, write_csv, write_json_atomic
from rsviz.study.tasks import AttackFn, ImageRef, Task, build_tasks, image_refs


def default_results_dir() -> Path:
    """Where the app keeps studies: $RSVIZ_RESULTS_DIR, else results/ beside the package."""
    env = os.environ.get("RSVIZ_RESULTS_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "results"


def load_models(plan: StudyPlan, given: Classifier | Sequence[Classifier] | None = None,
                device: torch.device | str = "cpu") -> dict[str, Classifier]:
    """The plan's models by reference: the given ones where their name or id matches (a single
    given model stands for a plan of one model of that name), the others loaded."""
    given = [given] if isinstance(given, Classifier) else list(given or [])
    for model in given:
        if model.info.name not in plan.models and model.info.model_id not in plan.models:
            raise ConfigError(f"The plan names model(s) {', '.join(plan.models)} but "
                              f"{model.info.name!r} is loaded.")
    out: dict[str, Classifier] = {}
    for ref in plan.models:
        match = [m for m in given if ref in (m.info.name, m.info.model_id)]
        out[ref] = match[0] if match else load_model_ref(ref, device)
    ids = [m.info.model_id for m in out.values()]
    if len(set(ids)) < len(ids):
        raise ConfigError("The plan names the same model twice.")
    return out


def prepare(plan: StudyPlan, model: Classifier, images: ImageSet | None = None,
            base: str | Path | None = None
            ) -> tuple[list[Task], list[ImageRef], dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Resolve the image set, preprocess it for the model, and expand the plan into its tasks
    for that model (identified by its model id and the forward identity it runs here). An
    image that cannot be read gets no task: it is among the failures returned last (image,
    model, reason), and the other images go on."""
    from rsviz.engines import forward_of

    info = model.info
    images = images if images is not None else plan.images.resolve(info.class_names, base)
    kept, tensors, failed = [], [], []
    for idx, entry in enumerate(images.entries):
        try:
            tensors.append(model_input(entry.load(), model))
            kept.append(idx)
        except Exception as exc:  # noqa: BLE001 - one unreadable image never stops the set
            failed.append(image_failure(entry.name, info.model_id, exc))
    readable = ImageSet(images.name, tuple(images.entries[i] for i in kept), images.source)
    refs = [replace(ref, idx=idx)  # its index in the whole set, as the Cohen TSVs number it
            for ref, idx in zip(image_refs(readable, tensors, info.model_id), kept)]
    return (build_tasks(plan, refs, info.model_id, forward_of(model).tag()), refs,
            {ref.hash: x for ref, x in zip(refs, tensors)}, failed)


def image_failure(name: str, model_id: str, error: BaseException) -> dict[str, Any]:
    """How an image that cannot be read is listed among a study's failures."""
    reason = str(error) if isinstance(error, RsvizError) else \
        f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
    return {"task_id": "", "task": f"read image {name}", "model": model_id, "image": name,
            "error": reason}


def run_study(plan: StudyPlan, out: str | Path,
              model: Classifier | Sequence[Classifier] | None = None,
              images: ImageSet | None = None, device: torch.device | str = "cpu",
              attack_fn: AttackFn | None = None, runner: TaskRunner | None = None,
              progress: Progress | None = None, base: str | Path | None = None) -> StudyResults:
    """Run (or resume) a study into folder `out`: plan.json and images.json first, one JSON per
    task as it finishes, then the tables (summary.csv, ratios.csv, accuracy_drop.csv, TSVs).
    Images that cannot be read and tasks that raised are in `failed` (and failed.json), with
    their reason; the rest of the set runs, and running again retries them."""
    custom_attacks = attack_fn is not None or getattr(runner, "attack_fn", None) is not None
    given = [model] if isinstance(model, Classifier) else list(model or [])
    check_plan(plan, base, attacks=not custom_attacks,
               loaded=[name for m in given for name in (m.info.name, m.info.model_id)])
    models = load_models(plan, given, device)
    tasks: list[Task] = []
    refs: list[ImageRef] = []
    tensors: dict[str, torch.Tensor] = {}
    unreadable: list[dict[str, Any]] = []
    for classifier in models.values():
        more_tasks, more_refs, more_tensors, more_failed = prepare(plan, classifier, images, base)
        tasks += more_tasks
        refs += more_refs
        tensors.update(more_tensors)
        unreadable += more_failed
    folder = Path(out)
    write_json_atomic(folder / "plan.json", plan.to_dict())
    write_json_atomic(folder / "images.json", [asdict(r) for r in refs])
    by_id = {m.info.model_id: m for m in models.values()}
    runner = runner or LocalRunner(attack_fn=attack_fn)
    runner.bind(by_id, tensors)
    store = ResultStore(folder)
    report = runner.run(tasks, store, progress)
    failed = unreadable + report.failed
    store.save_failures(failed)
    study = StudyResults(plan, [asdict(r) for r in refs], report.results, str(folder),
                         report.executed, report.reused, failed, [plan])
    write_tables(study)
    return study


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def write_tables(study: StudyResults) -> list[Path]:
    """summary.csv, ratios.csv, accuracy_drop.csv and one Cohen TSV per model and σ."""
    folder = Path(study.folder)
    paths = [write_csv(study.summary(), folder / "summary.csv"),
             write_csv(study.ratios(), folder / "ratios.csv")]
    by_model = study.certification_by_model()
    if by_model:
        paths.append(write_csv(study.accuracy_drop(), folder / "accuracy_drop.csv"))
        several = len(by_model) > 1
        for model, runs in by_model.items():
            prefix = f"certify_{_safe(model)}_" if several else "certify_"
            paths += [write_tsv(rows, folder / f"{prefix}sigma{sigma:g}.tsv")
                      for sigma, rows in runs.items()]
    return paths


def open_results(folder: str | Path) -> StudyResults:
    """A study folder (finished or not, e.g. one written by the CLI on a GPU machine)."""
    folder = Path(folder).expanduser()
    plan_path = folder / "plan.json"
    if not plan_path.is_file():
        raise RsvizError(f"{folder}: not a study folder (no plan.json).")
    try:
        plan = StudyPlan.from_dict(json.loads(plan_path.read_text(encoding="utf-8")))
        images_path = folder / "images.json"
        images = json.loads(images_path.read_text(encoding="utf-8")) \
            if images_path.is_file() else []
        failed_path = folder / "failed.json"
        failed = json.loads(failed_path.read_text(encoding="utf-8")) \
            if failed_path.is_file() else []
    except ValueError as exc:
        raise RsvizError(f"{folder}: a study file is not valid JSON ({exc}).") from exc
    return StudyResults(plan, images, ResultStore(folder).results(), str(folder),
                        failed=failed, plans=[plan])


def merge_results(studies: Sequence[StudyResults]) -> list[dict]:
    """Every result of the studies once. Task ids carry the forward identity, so results of
    different identities never replace each other; the same id stored in two folders without
    an identity (before identities existed) is kept once only when both hold the same numbers,
    else refused: nothing says which machine computed which."""
    merged: dict[str, tuple[dict, str]] = {}
    for study in studies:
        for r in study.results:
            kept = merged.setdefault(r["task_id"], (r, study.folder))
            if kept[0] is not r and not r.get("forward") and _numbers(kept[0]) != _numbers(r):
                raise RsvizError(
                    f"{kept[1]} and {study.folder} both hold task {r['task_id']} with different "
                    "numbers, stored before rsviz recorded which engine and arithmetic ran: "
                    "open these folders separately.")
    return [r for r, _ in merged.values()]


def _numbers(result: dict) -> dict:
    return {k: v for k, v in result.items()
            if k not in ("seconds", "model", "model_id", "image", "image_idx", "task_id")}


def open_many(folders: Sequence[str | Path]) -> StudyResults:
    """Several results folders together (e.g. one per model, or one per machine): every plan,
    every result once (by task id), so Fig. 4 and Fig. 5 draw every model."""
    if not folders:
        raise RsvizError("Give at least one results folder.")
    # a folder named twice (another spelling of the same path) is opened once
    studies = [open_results(f) for f in dict.fromkeys(Path(f).expanduser().resolve()
                                                          for f in folders)]
    if len(studies) == 1:
        return studies[0]
    results = merge_results(studies)
    images = [i for s in studies for i in s.images]
    return StudyResults(studies[0].plan, images, results,
                        os.pathsep.join(s.folder for s in studies),
                        failed=[f for s in studies for f in s.failed],
                        plans=[s.plan for s in studies],
                        merged_expected=sum(s.expected for s in studies))
