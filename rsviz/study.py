"""Studies over image sets: plans, independent idempotent tasks, a resumable runner (Fig. 5).

A `StudyPlan` (YAML or JSON) names a model, an image set, the defended configurations
(σ × n × criterion × P_a, plus the undefended f), the attacks, a query budget and a seed. It
expands into tasks; every task — CERTIFY of one image at one σ, or one attack on one image
against one configuration — is a pure function of its inputs and its derived seed. A task's
result is stored as soon as it finishes (one JSON file per task under `<out>/tasks/`, written
atomically, plus the disk cache), so a run that crashes or is stopped resumes without redoing
work. `LocalRunner` executes tasks one by one on the model's device; the `TaskRunner` protocol
is the boundary where a distributed runner (e.g. Ray workers loading the model by name and the
image by reference) would plug in. Aggregation: accuracy against mean/median distortion per
(model, σ, n, criterion, P_a, attack) — the Fig. 5 scatter — and the ratio of each distortion to
the image's certified radius at that σ (the paper's "at least 30×").
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import torch

from rsviz import ENGINE_VERSION
from rsviz.attacks.oracle import CRITERIA, OracleConfig
from rsviz.cache import default_cache, make_key
from rsviz.certification import CertRow, accuracy_drop_table, certify_image, derive_seed, write_tsv
from rsviz.config import check_alpha, check_count, check_probability, check_sigma
from rsviz.errors import ConfigError, RsvizError
from rsviz.imagesets import ImageSet, ImageSetSpec
from rsviz.images import preprocess, tensor_hash
from rsviz.jobs import NullProgress, Progress
from rsviz.models import Classifier, load_model
from rsviz.smoothing import forward_labels, make_generator, sample_votes

AttackFn = Callable[..., Any]  # rsviz.attacks.run_attack's signature


# ------------------------------------------------------------------------------------ plans


@dataclass(frozen=True)
class CertifySettings:
    """CERTIFY of every image at every σ of the plan (for Fig. 4 and the ratio to the radius)."""

    n0: int = 64
    n: int = 512
    alpha: float = 0.001

    def __post_init__(self) -> None:
        check_count("certify.n0", self.n0)
        check_count("certify.n", self.n)
        check_alpha(self.alpha)


@dataclass(frozen=True)
class Configuration:
    """One attacked classifier: f (sigma None) or g_{σ,n} with an adversarial criterion."""

    sigma: float | None = None
    n: int | None = None
    criterion: str | None = None
    p_a: float | None = None

    @property
    def defended(self) -> bool:
        return self.sigma is not None

    def oracle_config(self, budget: int, seed: int) -> OracleConfig:
        return OracleConfig(sigma=self.sigma, n=self.n or 1,
                            criterion=self.criterion or "single_draw", p_a=self.p_a or 0.5,
                            budget=budget, seed=seed)

    def label(self) -> str:
        if not self.defended:
            return "f (undefended)"
        text = f"σ={self.sigma:g}, n={self.n}, {self.criterion}"
        return text + (f", P_a={self.p_a:g}" if self.p_a is not None else "")


@dataclass(frozen=True)
class StudyPlan:
    """What to run. Every field has a default; see examples/plan_small.yaml.

    Attributes:
        name: a title for the study.
        model: registry model name.
        images: the image set (samples, or a folder with labels, subset, seed).
        sigmas, ns, criteria, p_as: the grid of defended configurations g_{σ,n}.
        attacks: registry names of the attacks (rsviz.attacks.REGISTRY).
        budget: queries per attack.
        seed: base seed; every task derives its own from it and its identity.
        include_undefended: also attack the base classifier f.
        certify: CERTIFY settings, or None to skip certification.
        attack_params: per-attack hyper-parameters {attack: {name: value}}.
    """

    name: str = "study"
    model: str = "efficientnet_lite0"
    images: ImageSetSpec = ImageSetSpec()
    sigmas: tuple[float, ...] = (0.25,)
    ns: tuple[int, ...] = (10,)
    criteria: tuple[str, ...] = ("shortcut",)
    p_as: tuple[float, ...] = (0.5,)
    attacks: tuple[str, ...] = ("hsja",)
    budget: int = 500
    seed: int = 0
    include_undefended: bool = True
    certify: CertifySettings | None = CertifySettings()
    attack_params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for sigma in self.sigmas:
            check_sigma(sigma)
        for n in self.ns:
            check_count("n", n)
        for p_a in self.p_as:
            check_probability("P_a", p_a)
        for criterion in self.criteria:
            if criterion not in CRITERIA:
                raise ConfigError(f"Unknown criterion {criterion!r}; use {', '.join(CRITERIA)}.")
        check_count("budget", self.budget)
        if not self.attacks:
            raise ConfigError("The plan names no attack.")
        if not self.configurations():
            raise ConfigError("The plan has no configuration: give sigmas/ns or include_undefended.")

    def configurations(self) -> list[Configuration]:
        """f first (when included), then σ × n × criterion × P_a (P_a only where it matters)."""
        configs = [Configuration()] if self.include_undefended else []
        for sigma in self.sigmas:
            for n in self.ns:
                for criterion in self.criteria:
                    levels = [None] if criterion == "single_draw" else list(self.p_as)
                    configs += [Configuration(float(sigma), int(n), criterion, p_a)
                                for p_a in levels]
        return configs

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "StudyPlan":
        """Build and validate a plan from parsed YAML/JSON (unknown keys are an error)."""
        if not isinstance(data, dict):
            raise ConfigError("A plan is a mapping of keys (model, images, sigmas, ...).")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"Unknown plan key(s): {', '.join(sorted(unknown))}; "
                              f"known: {', '.join(sorted(known))}.")
        values = dict(data)
        images = values.get("images", {})
        if isinstance(images, str):
            images = {"source": "samples"} if images == "samples" else {"source": "folder",
                                                                         "folder": images}
        if isinstance(images, dict):
            images = {"source": "folder" if images.get("folder") else "samples", **images}
            values["images"] = ImageSetSpec(**images)
        cert = values.get("certify", {})
        values["certify"] = None if cert in (None, False) else CertifySettings(**(cert or {}))
        for key, kind in (("sigmas", float), ("ns", int), ("p_as", float), ("criteria", str),
                          ("attacks", str)):
            if key in values:
                raw = values[key]
                values[key] = tuple(kind(v) for v in (raw if isinstance(raw, list) else [raw]))
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"Invalid plan: {exc}.") from exc


def load_plan(path: str | Path) -> StudyPlan:
    """Read a plan from a YAML (.yaml/.yml) or JSON file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RsvizError(f"{path}: cannot read the plan ({exc.strerror}).") from exc
    return parse_plan(text, path.suffix)


def parse_plan(text: str, suffix: str = ".yaml") -> StudyPlan:
    """Parse plan text (JSON when it starts with '{' or the suffix is .json, else YAML)."""
    try:
        if suffix == ".json" or text.lstrip().startswith("{"):
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parser error is the user's file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"The plan is not valid YAML/JSON: {first}") from exc
    return StudyPlan.from_dict(data or {})


# ------------------------------------------------------------------------------------ tasks


@dataclass(frozen=True)
class ImageRef:
    """An image of the set as a task sees it: where to load it, its label, its content hash."""

    idx: int
    name: str
    ref: str
    label: int
    hash: str


@dataclass(frozen=True)
class CertifyTask:
    """CERTIFY one image at one σ."""

    model: str
    image: ImageRef
    sigma: float
    n0: int
    n: int
    alpha: float
    seed: int

    kind = "certify"

    @property
    def cost(self) -> int:
        return self.n0 + self.n

    @property
    def task_id(self) -> str:
        return make_key("certify", self.model, self.image.hash, self.image.label, self.sigma,
                        self.n0, self.n, self.alpha, self.seed)


@dataclass(frozen=True)
class AttackTask:
    """One attack on one image against one configuration."""

    model: str
    image: ImageRef
    config: Configuration
    attack: str
    budget: int
    seed: int
    start_seed: int
    params: tuple[tuple[str, Any], ...] = ()

    kind = "attack"

    @property
    def cost(self) -> int:
        return self.budget * (self.config.n or 1)

    @property
    def task_id(self) -> str:
        return make_key("attack", self.model, self.image.hash, self.image.label, self.config,
                        self.attack, self.budget, self.seed, self.start_seed, list(self.params))


Task = CertifyTask | AttackTask


def image_refs(images: ImageSet, tensors: Sequence[torch.Tensor]) -> list[ImageRef]:
    return [ImageRef(i, e.name, e.ref, e.label, tensor_hash(x))
            for i, (e, x) in enumerate(zip(images.entries, tensors))]


def build_tasks(plan: StudyPlan, refs: Sequence[ImageRef]) -> list[Task]:
    """Every task of the plan, image by image (so partial results cover every configuration
    early): CERTIFY at each σ, then each configuration × attack."""
    tasks: list[Task] = []
    for image in refs:
        if plan.certify is not None:
            for sigma in plan.sigmas:
                tasks.append(CertifyTask(plan.model, image, float(sigma), plan.certify.n0,
                                         plan.certify.n, plan.certify.alpha,
                                         derive_seed(plan.seed, image.hash, "certify", sigma)))
        for config in plan.configurations():
            for attack in plan.attacks:
                params = tuple(sorted(plan.attack_params.get(attack, {}).items()))
                tasks.append(AttackTask(plan.model, image, config, attack, plan.budget,
                                        derive_seed(plan.seed, image.hash, config.label(), attack),
                                        derive_seed(plan.seed, image.hash, config.label(), "start"),
                                        params))
    return tasks


def _start_correct(model: Classifier, x: torch.Tensor, y: int, config: Configuration,
                   seed: int) -> tuple[bool, int, int]:
    """Is the attacked classifier right at x_o? f: its label; g_{σ,n}: one vote of n
    (random tie-break). Returns (correct, decision, forward passes)."""
    if not config.defended:
        label = int(forward_labels(model, x[None])[0])
        return label == y, label, 1
    record = sample_votes(model, x[None], config.sigma, config.n,  # type: ignore[arg-type]
                          make_generator(seed, model.device))
    decision = int(record.g_draws(config.n, np.random.default_rng(seed))[0, 0])  # type: ignore[arg-type]
    return decision == y, decision, record.forward_passes


class _SubProgress:
    """Maps a task's own progress into the study's (and forwards cancel)."""

    def __init__(self, parent: Progress, offset: float, cost: float, total: float, message: str):
        self.parent, self.offset, self.cost, self.total, self.message = (
            parent, offset, cost, total, message)

    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        if total:
            frac = min(1.0, max(0.0, done / total))
            self.parent.report(self.offset + frac * self.cost, self.total, self.message)

    def check_cancel(self) -> None:
        self.parent.check_cancel()


def execute_task(task: Task, model: Classifier, x: torch.Tensor,
                 attack_fn: AttackFn | None = None,
                 progress: Progress | None = None) -> dict[str, Any]:
    """Run one task; the result is a JSON-ready dict (a pure function of task and x)."""
    started = time.perf_counter()
    base = {"task_id": task.task_id, "kind": task.kind, "model": task.model,
            "image": task.image.name, "image_idx": task.image.idx, "image_hash": task.image.hash,
            "label": task.image.label, "seed": task.seed, "engine": ENGINE_VERSION}
    if isinstance(task, CertifyTask):
        row = certify_image(model, x, task.image.label, task.sigma, task.n0, task.n, task.alpha,
                            task.seed, task.image.idx, task.image.name, progress=progress)
        return {**base, "sigma": task.sigma, "n0": task.n0, "n": task.n, "alpha": task.alpha,
                "predict": row.predict, "radius": row.radius, "correct": bool(row.correct),
                "p_lower": row.p_lower, "f_predict": row.f_predict,
                "forward_passes": row.forward_passes, "seconds": time.perf_counter() - started}
    config = task.config
    y = task.image.label
    correct, decision, passes = _start_correct(model, x, y, config, task.start_seed)
    out = {**base, "sigma": config.sigma, "n": config.n, "criterion": config.criterion,
           "p_a": config.p_a, "configuration": config.label(), "attack": task.attack,
           "budget": task.budget, "start_correct": correct, "start_label": decision,
           "l2": 0.0, "linf": 0.0, "queries": 0, "forward_passes": passes, "success": None}
    if correct:  # a misclassified image needs no attack (distortion 0, as foolbox counts it)
        if attack_fn is None:
            from rsviz.attacks import run_attack as attack_fn  # noqa: N813
        trace = attack_fn(model, x, y, task.attack, config.oracle_config(task.budget, task.seed),
                          task.seed, progress=progress, params=dict(task.params) or None)
        success = bool(getattr(trace, "success"))
        l2, linf = (float(trace.l2), float(trace.linf)) if success else (None, None)
        x_adv = getattr(trace, "x_adv", None)
        if success and isinstance(x_adv, torch.Tensor):  # the oracle's closest accepted point
            delta = (x_adv.detach().cpu().float() - x.detach().cpu().float()).flatten()
            l2, linf = float(delta.norm()), float(delta.abs().max())
        out.update(l2=l2, linf=linf,
                   queries=int(trace.queries), success=success,
                   forward_passes=passes + int(getattr(trace, "forward_passes", 0) or 0))
    out["seconds"] = time.perf_counter() - started
    return out


# ------------------------------------------------------------------------------------ store


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON to a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1, default=_json_default)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


class ResultStore:
    """One JSON file per finished task under `<folder>/tasks/`, mirrored in the disk cache."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.tasks_dir = self.folder / "tasks"

    def _path(self, task_id: str) -> Path:
        return self.tasks_dir / f"{task_id}.json"

    def load(self, task_id: str) -> dict[str, Any] | None:
        """A finished task's result (from its file, else from the disk cache), or None."""
        path = self._path(task_id)
        if path.is_file():
            try:
                return json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                pass  # a torn or corrupt file: recompute
        cached = default_cache().get(make_key("study-task", task_id))
        if cached is not None:
            write_json_atomic(path, cached)
        return cached

    def save(self, task_id: str, result: dict[str, Any]) -> None:
        write_json_atomic(self._path(task_id), result)
        default_cache().set(make_key("study-task", task_id), result)

    def results(self) -> list[dict[str, Any]]:
        """Every stored result (in file-name order)."""
        out = []
        for path in sorted(self.tasks_dir.glob("*.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out


# ----------------------------------------------------------------------------------- runners


@dataclass
class RunReport:
    """What a runner did: tasks run now, found already done, and all results of the plan."""

    executed: int
    reused: int
    results: list[dict[str, Any]]
    seconds: float


class TaskRunner(Protocol):
    """Executes tasks and stores each result as it finishes (local now; Ray workers later)."""

    def run(self, tasks: Sequence[Task], store: ResultStore,
            progress: Progress | None = None) -> RunReport: ...


class LocalRunner:
    """Runs tasks one by one on one device, skipping those whose result is stored.

    Args:
        model: the loaded model (tasks naming another model load it by name on `device`).
        images: preprocessed tensors by content hash (others are loaded from their reference).
        attack_fn: the attack entry point (default rsviz.attacks.run_attack); injectable.
        device: where models named by tasks are loaded.
    """

    def __init__(self, model: Classifier | None = None,
                 images: dict[str, torch.Tensor] | None = None,
                 attack_fn: AttackFn | None = None, device: torch.device | str = "cpu") -> None:
        self.models = {model.info.name: model} if model is not None else {}
        self.images = dict(images or {})
        self.attack_fn = attack_fn
        self.device = device
        self.executed = 0

    def _model(self, name: str) -> Classifier:
        if name not in self.models:
            self.models[name] = load_model(name, self.device)
        return self.models[name]

    def _image(self, ref: ImageRef, model: Classifier) -> torch.Tensor:
        if ref.hash not in self.images:
            from rsviz.imagesets import ImageEntry

            info = model.info
            x = preprocess(ImageEntry(ref.name, ref.ref, ref.label).load(), info.input_size,
                           info.resize, info.interpolation)
            if tensor_hash(x) != ref.hash:
                raise RsvizError(f"{ref.name}: the image changed since the plan was made.")
            self.images[ref.hash] = x
        return self.images[ref.hash]

    def run(self, tasks: Sequence[Task], store: ResultStore,
            progress: Progress | None = None) -> RunReport:
        progress = progress or NullProgress()
        started = time.perf_counter()
        results: list[dict[str, Any]] = []
        todo: list[Task] = []
        for task in tasks:
            found = store.load(task.task_id)
            if found is None:
                todo.append(task)
            else:
                results.append(found)
        reused = len(results)
        total = float(sum(t.cost for t in todo)) or 1.0
        done = 0.0
        progress.report(0, total, f"{len(todo)} task(s) to run, {reused} already done",
                        partial=tuple(results))
        for i, task in enumerate(todo):
            progress.check_cancel()
            message = f"task {i + 1}/{len(todo)}: {_describe(task)}"
            model = self._model(task.model)
            x = self._image(task.image, model)
            sub = _SubProgress(progress, done, task.cost, total, message)
            result = execute_task(task, model, x, self.attack_fn, sub)
            store.save(task.task_id, result)
            self.executed += 1
            results.append(result)
            done += task.cost
            progress.report(done, total, message, partial=tuple(results))
        return RunReport(len(todo), reused, results, time.perf_counter() - started)


def _describe(task: Task) -> str:
    if isinstance(task, CertifyTask):
        return f"certify {task.image.name} at σ={task.sigma:g}"
    return f"{task.attack} on {task.image.name} vs {task.config.label()}"


# ------------------------------------------------------------------------------- aggregation


def _stat(values: list[float], fn: Callable[[np.ndarray], float]) -> float | None:
    return float(fn(np.asarray(values, dtype=np.float64))) if values else None


def summarize(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (model, σ, n, criterion, P_a, attack): the Fig. 5 scatter.

    accuracy: fraction of images the attacked classifier got right at the start (f's label,
    or one vote of g_{σ,n}); mean/median L2 and L∞ over the successful attacks on those images;
    success_rate among them; ratio: median of L2 / certified radius at that σ where certified.
    """
    radii = certified_radii(results)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        if r.get("kind") == "attack":
            key = (r["model"], r["sigma"], r["n"], r["criterion"], r["p_a"], r["attack"])
            groups.setdefault(key, []).append(r)
    rows = []
    for (model, sigma, n, criterion, p_a, attack), group in groups.items():
        attacked = [r for r in group if r["start_correct"]]
        won = [r for r in attacked if r["success"]]
        l2 = [r["l2"] for r in won]
        ratios = [r["l2"] / radii[(r["image_hash"], r["sigma"])] for r in won
                  if (r["image_hash"], r["sigma"]) in radii]
        rows.append({
            "model": model, "sigma": sigma, "n": n, "criterion": criterion, "p_a": p_a,
            "attack": attack, "configuration": group[0]["configuration"],
            "images": len(group), "accuracy": float(np.mean([r["start_correct"] for r in group])),
            "attacked": len(attacked),
            "success_rate": len(won) / len(attacked) if attacked else None,
            "mean_l2": _stat(l2, np.mean), "median_l2": _stat(l2, np.median),
            "mean_linf": _stat([r["linf"] for r in won], np.mean),
            "mean_queries": _stat([r["queries"] for r in attacked], np.mean),
            "mean_forward_passes": _stat([r["forward_passes"] for r in group], np.mean),
            "median_ratio": _stat(ratios, np.median), "ratios": len(ratios),
        })
    rows.sort(key=lambda r: (r["attack"], r["sigma"] is not None, r["sigma"] or 0, r["n"] or 0,
                             r["criterion"] or "", r["p_a"] or 0))
    return rows


def certified_radii(results: Sequence[dict[str, Any]]) -> dict[tuple[str, float], float]:
    """Certified radius by (image hash, σ), for images certified with the right class."""
    return {(r["image_hash"], r["sigma"]): r["radius"] for r in results
            if r.get("kind") == "certify" and r["correct"] and r["radius"] > 0}


def ratio_rows(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """L2 distortion / certified radius per successful attack on a certified image."""
    radii = certified_radii(results)
    out = []
    for r in results:
        key = (r.get("image_hash"), r.get("sigma"))
        if r.get("kind") == "attack" and r.get("success") and key in radii:
            out.append({"image": r["image"], "configuration": r["configuration"],
                        "attack": r["attack"], "sigma": r["sigma"], "n": r["n"],
                        "l2": r["l2"], "radius": radii[key], "ratio": r["l2"] / radii[key]})
    return out


def certification_runs(results: Sequence[dict[str, Any]]) -> dict[float, list[CertRow]]:
    """Cohen rows per σ from the CERTIFY tasks (ordered by image index)."""
    runs: dict[float, list[CertRow]] = {}
    for r in results:
        if r.get("kind") == "certify":
            runs.setdefault(float(r["sigma"]), []).append(CertRow(
                idx=r["image_idx"], label=r["label"], predict=r["predict"], radius=r["radius"],
                correct=r["correct"], time=r["seconds"], name=r["image"], p_lower=r["p_lower"],
                forward_passes=r["forward_passes"], f_predict=r["f_predict"]))
    return {s: sorted(rows, key=lambda row: row.idx) for s, rows in sorted(runs.items())}


@dataclass
class StudyResults:
    """A study's plan, images and task results, with its tables."""

    plan: StudyPlan
    images: list[dict[str, Any]]
    results: list[dict[str, Any]]
    folder: str = ""
    executed: int = 0
    reused: int = 0

    @property
    def expected(self) -> int:
        """Number of tasks the plan has for these images."""
        per_image = len(self.plan.sigmas) * (self.plan.certify is not None) + \
            len(self.plan.configurations()) * len(self.plan.attacks)
        return per_image * len(self.images)

    def summary(self) -> list[dict[str, Any]]:
        return summarize(self.results)

    def certification(self) -> dict[float, list[CertRow]]:
        return certification_runs(self.results)

    def accuracy_drop(self) -> list[dict[str, Any]]:
        return accuracy_drop_table(self.certification())

    def ratios(self) -> list[dict[str, Any]]:
        return ratio_rows(self.results)


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Rows of dicts as CSV (header from the first row), written atomically."""
    import csv
    import io

    buffer = io.StringIO()
    if rows:
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
        handle.write(buffer.getvalue())
    os.replace(tmp, path)
    return path


def write_tables(study: StudyResults) -> list[Path]:
    """summary.csv, ratios.csv, accuracy_drop.csv and one Cohen TSV per σ in the folder."""
    folder = Path(study.folder)
    paths = [write_csv(study.summary(), folder / "summary.csv"),
             write_csv(study.ratios(), folder / "ratios.csv")]
    runs = study.certification()
    if runs:
        paths.append(write_csv(study.accuracy_drop(), folder / "accuracy_drop.csv"))
        paths += [write_tsv(rows, folder / f"certify_sigma{sigma:g}.tsv")
                  for sigma, rows in runs.items()]
    return paths


# ------------------------------------------------------------------------- running, opening


def default_results_dir() -> Path:
    """Where the app keeps studies: $RSVIZ_RESULTS_DIR, else results/ beside the package."""
    env = os.environ.get("RSVIZ_RESULTS_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "results"


def prepare(plan: StudyPlan, model: Classifier, images: ImageSet | None = None,
            base: str | Path | None = None) -> tuple[list[Task], list[ImageRef], dict[str, torch.Tensor]]:
    """Resolve the image set, preprocess it for the model, and expand the plan into tasks."""
    info = model.info
    images = images if images is not None else plan.images.resolve(info.class_names, base)
    tensors = images.tensors(info.input_size, info.resize, info.interpolation)
    refs = image_refs(images, tensors)
    return build_tasks(plan, refs), refs, {ref.hash: x for ref, x in zip(refs, tensors)}


def run_study(plan: StudyPlan, out: str | Path, model: Classifier | None = None,
              images: ImageSet | None = None, device: torch.device | str = "cpu",
              attack_fn: AttackFn | None = None, runner: TaskRunner | None = None,
              progress: Progress | None = None, base: str | Path | None = None) -> StudyResults:
    """Run (or resume) a study into folder `out`: plan.json and images.json first, one JSON per
    task as it finishes, then the tables (summary.csv, ratios.csv, accuracy_drop.csv, TSVs)."""
    if attack_fn is None and runner is None:
        from rsviz.attacks import REGISTRY

        unknown = [a for a in plan.attacks if a not in REGISTRY]
        if unknown:
            raise ConfigError(f"Unknown attack(s) {', '.join(unknown)}; available: "
                              f"{', '.join(REGISTRY)}.")
    model = model if model is not None else load_model(plan.model, device)
    if model.info.name != plan.model:
        raise ConfigError(f"The plan names model {plan.model!r} but {model.info.name!r} is loaded.")
    tasks, refs, tensors = prepare(plan, model, images, base)
    folder = Path(out)
    write_json_atomic(folder / "plan.json", plan.to_dict())
    write_json_atomic(folder / "images.json", [asdict(r) for r in refs])
    runner = runner or LocalRunner(model, tensors, attack_fn, model.device)
    report = runner.run(tasks, ResultStore(folder), progress)
    study = StudyResults(plan, [asdict(r) for r in refs], report.results, str(folder),
                         report.executed, report.reused)
    write_tables(study)
    return study


def open_results(folder: str | Path) -> StudyResults:
    """A study folder (finished or not, e.g. one written by the CLI on a GPU machine)."""
    folder = Path(folder).expanduser()
    plan_path = folder / "plan.json"
    if not plan_path.is_file():
        raise RsvizError(f"{folder}: not a study folder (no plan.json).")
    plan = StudyPlan.from_dict(json.loads(plan_path.read_text(encoding="utf-8")))
    images_path = folder / "images.json"
    images = json.loads(images_path.read_text(encoding="utf-8")) if images_path.is_file() else []
    return StudyResults(plan, images, ResultStore(folder).results(), str(folder))
