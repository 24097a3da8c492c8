"""Task runners: they execute the tasks not yet stored and store each result as it finishes.

`LocalRunner` runs tasks one by one in this process on the models' device (the default);
`rsviz.study.ray_runner.RayRunner` runs one Ray task per study task on a local or remote Ray
cluster. Both skip stored tasks, report a task that raises instead of stopping (its result
is not stored, so the next run retries it), and honour Cancel between tasks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import torch

from rsviz.errors import Cancelled, ConfigError, RsvizError
from rsviz.images import preprocess, tensor_hash
from rsviz.jobs import NullProgress, Progress, SubProgress
from rsviz.models import Classifier
from rsviz.study.store import ResultStore
from rsviz.study.tasks import AttackFn, ImageRef, Task, describe, execute_task


@dataclass
class RunReport:
    """What a runner did: tasks run now, found already done, all results of the plan, and the
    tasks that raised (task_id, task, error)."""

    executed: int
    reused: int
    results: list[dict[str, Any]]
    seconds: float
    failed: list[dict[str, Any]] = field(default_factory=list)


class TaskRunner(Protocol):
    """Executes tasks and stores each result as it finishes; `bind` hands it the loaded models
    (by id) and the preprocessed images (by hash) before `run`."""

    def bind(self, models: dict[str, Classifier], images: dict[str, torch.Tensor]) -> None: ...

    def run(self, tasks: Sequence[Task], store: ResultStore,
            progress: Progress | None = None) -> RunReport: ...


def split_done(tasks: Sequence[Task],
               store: ResultStore) -> tuple[list[dict[str, Any]], list[Task]]:
    """Stored results, and the tasks still to run (in plan order)."""
    results: list[dict[str, Any]] = []
    todo: list[Task] = []
    for task in tasks:
        found = store.load(task.task_id)
        if found is None:
            todo.append(task)
        else:
            results.append(found)
    return results, todo


class RunState:
    """The bookkeeping every runner shares: the stored results and the tasks still to run,
    progress over their cost, each finished task stored (or its failure kept), the report."""

    def __init__(self, tasks: Sequence[Task], store: ResultStore,
                 progress: Progress | None = None) -> None:
        self.started = time.perf_counter()
        self.store = store
        self.progress = progress or NullProgress()
        self.results, self.todo = split_done(tasks, store)
        self.reused = len(self.results)
        self.failed: list[dict[str, Any]] = []
        self.total = float(sum(t.cost for t in self.todo)) or 1.0
        self.done = 0.0
        self.progress.report(0, self.total, f"{len(self.todo)} task(s) to run, {self.reused} "
                             "already done", partial=tuple(self.results))

    def finish(self, task: Task, result: dict[str, Any] | None = None,
               error: BaseException | str | None = None, message: str = "") -> None:
        """Store a task's result (or keep its failure) and advance the progress."""
        if error is not None:
            self.failed.append(failure(task, error))
        else:
            self.store.save(task.task_id, result)
            self.results.append(result)  # type: ignore[arg-type]
        self.done += task.cost
        self.progress.report(self.done, self.total, message, partial=tuple(self.results))

    def report(self) -> RunReport:
        return RunReport(len(self.todo) - len(self.failed), self.reused, self.results,
                         time.perf_counter() - self.started, self.failed)


def failure(task: Task, error: BaseException | str) -> dict[str, Any]:
    """How a task that raised is reported (one line: the error's type and first line)."""
    if isinstance(error, BaseException):
        first = (str(error).splitlines() or [""])[0]
        error = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return {"task_id": task.task_id, "task": describe(task), "model": task.model,
            "error": error}


def load_image(ref: ImageRef, model: Classifier) -> torch.Tensor:
    """An image of the set preprocessed for `model`, checked against its content hash."""
    from rsviz.imagesets import ImageEntry

    info = model.info
    x = preprocess(ImageEntry(ref.name, ref.ref, ref.label).load(), info.input_size,
                   info.resize, info.interpolation)
    if tensor_hash(x) != ref.hash:
        raise RsvizError(f"{ref.name}: the image changed since the plan was made.")
    return x


RUNNERS = ("local", "ray")


def make_runner(kind: str = "local", address: str | None = None,
                workers: int | None = None) -> TaskRunner:
    """The runner the CLI and the page name: `local` (this process) or `ray` (a local Ray with
    `workers` one-thread workers, or the cluster at `address`: auto or HOST:PORT)."""
    if kind == "local":
        if address:
            raise ConfigError("--address is for the Ray runner (--runner ray).")
        return LocalRunner()
    if kind == "ray":
        from rsviz.study.ray_runner import RayRunner

        return RayRunner(address=address or None, workers=workers)
    raise ConfigError(f"Unknown runner {kind!r}; use {' or '.join(RUNNERS)}.")


class LocalRunner:
    """Runs tasks one by one in this process, skipping those whose result is stored.

    Args:
        models: the loaded models by model id (one Classifier is accepted too).
        images: preprocessed tensors by content hash (others are loaded from their reference).
        attack_fn: the attack entry point (default rsviz.attacks.run_attack); injectable.
    """

    def __init__(self, models: dict[str, Classifier] | Classifier | None = None,
                 images: dict[str, torch.Tensor] | None = None,
                 attack_fn: AttackFn | None = None) -> None:
        if isinstance(models, Classifier):
            models = {models.info.model_id: models}
        self.models = dict(models or {})
        self.images = dict(images or {})
        self.attack_fn = attack_fn
        self.executed = 0

    def bind(self, models: dict[str, Classifier], images: dict[str, torch.Tensor]) -> None:
        """The loaded models by id and the preprocessed images by hash (from run_study)."""
        for model_id, model in models.items():
            self.models.setdefault(model_id, model)
        for key, x in images.items():
            self.images.setdefault(key, x)

    def _model(self, model_id: str) -> Classifier:
        if model_id not in self.models:
            raise RsvizError(f"Model {model_id} is not loaded in this runner.")
        return self.models[model_id]

    def _image(self, ref: ImageRef, model: Classifier) -> torch.Tensor:
        if ref.hash not in self.images:
            self.images[ref.hash] = load_image(ref, model)
        return self.images[ref.hash]

    def run(self, tasks: Sequence[Task], store: ResultStore,
            progress: Progress | None = None) -> RunReport:
        state = RunState(tasks, store, progress)
        for i, task in enumerate(state.todo):
            state.progress.check_cancel()
            message = f"task {i + 1}/{len(state.todo)}: {describe(task)}"
            sub = SubProgress(state.progress, state.done, task.cost, state.total, message)
            try:
                model = self._model(task.model)
                result = execute_task(task, model, self._image(task.image, model),
                                      self.attack_fn, sub)
            except (Cancelled, KeyboardInterrupt):
                raise
            except Exception as exc:  # noqa: BLE001 - reported with the task, run goes on
                state.finish(task, error=exc, message=message)
            else:
                state.finish(task, result, message=message)
                self.executed += 1
        return state.report()
