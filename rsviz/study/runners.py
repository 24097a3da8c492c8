"""Task runners: they execute the tasks not yet stored and store each result as it finishes.

`LocalRunner` runs tasks one by one in this process on the models' device (the default);
`rsviz.study.ray_runner.RayRunner` runs one Ray task per study task on a local or remote Ray
cluster. Both skip stored tasks, report a task that raises instead of stopping (its result
is not stored, so the next run retries it), and honour Cancel between tasks.
"""

from __future__ import annotations

from typing import Sequence

import torch

import torch

from rsviz.errors import Cancelled, ConfigError, RsvizError
from rsviz.progress import Progress, SubProgress
from rsviz.models import Classifier
from rsviz.study.runstate import RunReport, RunState, TaskRunner, load_image
from rsviz.study.store import ResultStore
from rsviz.study.tasks import AttackFn, ImageRef, Task, describe, execute_task


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
