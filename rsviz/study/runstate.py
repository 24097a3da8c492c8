"""What every task runner shares: the run's bookkeeping (`RunState`, `RunReport`), the
`TaskRunner` protocol, and `load_image` (an image of the set preprocessed for a model).

`rsviz.study.runners.LocalRunner` and `rsviz.study.ray_runner.RayRunner` both build on it, and
`rsviz.study.runners.make_runner` chooses between them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

import torch

from rsviz.errors import RsvizError
from rsviz.images import model_input, tensor_hash
from rsviz.progress import NullProgress, Progress
from rsviz.models import Classifier
from rsviz.study.store import ResultStore
from rsviz.study.tasks import ImageRef, Task, describe


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

    x = model_input(ImageEntry(ref.name, ref.ref, ref.label).load(), model)
    if tensor_hash(x) != ref.hash:
        raise RsvizError(f"{ref.name}: the image changed since the plan was made.")
    return x
