"""`RayRunner`: one Ray task per study task, on a local Ray or an existing cluster.

Without an address it starts a local Ray on this machine (one worker per core, one thread
each: the attacks' serial bisection steps leave a multi-threaded process idle, while one-thread
workers keep every core busy); with `auto` or `HOST:PORT` it joins a running cluster. The
driver puts each model and image in Ray's object store once (workers need no files and no
registry: a checkpoint uploaded to the app runs on the cluster too), submits every task not yet
stored, and stores each result in the results folder as it arrives — atomically, one file per
task, exactly as `LocalRunner` does — so a run resumes under either runner with the same
numbers (tasks are pure functions of their inputs and derived seeds). A worker that dies loses
only its task, which Ray retries (`max_retries`); a task that raises is reported, not stored,
so the next run retries it. Cancel cancels every pending Ray task.
"""

from __future__ import annotations

import copy
import os
import socket
from pathlib import Path
from typing import Any, Sequence

import torch

from rsviz.engines import detach
from rsviz.errors import Cancelled, ConfigError, RsvizError
from rsviz.progress import Progress
from rsviz.models import Classifier
from rsviz.study.runstate import RunReport, RunState, load_image
from rsviz.study.store import ResultStore
from rsviz.study.tasks import AttackFn, Task, describe, execute_task

ROOT = Path(__file__).resolve().parents[2]
_WORKER_MODELS: dict[str, Classifier] = {}  # per worker process: models already fetched


def _worker_execute(task: Task, model_box: list, image_box: list, attack_fn: AttackFn | None,
                    threads: int) -> dict[str, Any]:
    """Runs in a Ray worker: fetch the model (once per process) and the image, run the task."""
    import ray

    torch.set_num_threads(threads)
    device = "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"
    key = f"{task.model}@{device}"
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = ray.get(model_box[0]).to(device)
    return execute_task(task, _WORKER_MODELS[key], ray.get(image_box[0]), attack_fn, None)


def shippable(model: Classifier) -> Classifier:
    """The model as workers receive it: on the CPU, without the forward engine attached in
    this process (e.g. compiled OpenVINO objects, which neither pickle nor copy); each worker
    picks its own engine at first use. The model itself is left as it is."""
    clone = copy.copy(model)  # shares the weights; only the attribute dict is new
    detach(clone)
    return copy.deepcopy(clone).cpu() if clone.device.type != "cpu" else clone


def check_address(address: str, timeout: float = 3.0) -> None:
    """A HOST:PORT that accepts a connection, else ConfigError in one line."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"Ray address {address!r}: use auto or HOST:PORT.")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RsvizError(f"Cannot reach a Ray cluster at {address} ({reason}).") from None


def start_ray(address: str | None = None, workers: int | None = None, threads: int = 1) -> None:
    """Start a local Ray (`workers` × `threads` CPUs, every GPU of this machine) or join the
    cluster at `address`; workers import rsviz from this checkout and use `threads` threads."""
    import ray

    env = {"env_vars": {"OMP_NUM_THREADS": str(threads),
                        "PYTHONPATH": os.pathsep.join(
                            p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}}
    quiet: dict[str, Any] = dict(log_to_driver=False, logging_level="warning", runtime_env=env)
    try:
        if address is None:
            ray.init(num_cpus=(workers or os.cpu_count() or 1) * threads,
                     num_gpus=torch.cuda.device_count(), include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except ConnectionError as exc:
        first = (str(exc).splitlines() or [""])[0]
        raise RsvizError(f"Cannot reach a Ray cluster at {address}: {first}") from None


class RayRunner:
    """Runs study tasks as Ray tasks.

    Args:
        address: None starts a local Ray (stopped after the run); "auto" or "HOST:PORT" joins a
            running cluster (left running).
        workers: local Ray only: worker processes (default: the machine's cores).
        threads: torch threads per task (and CPUs each task asks Ray for).
        gpu_fraction: GPU share each task asks for (default: 0.25 when this machine has CUDA
            and the models are on it, else 0 = CPU tasks).
        max_retries: retries of a task whose worker died.
        attack_fn: the attack entry point (default rsviz.attacks.run_attack); must be importable
            by the workers.
    """

    def __init__(self, address: str | None = None, workers: int | None = None, threads: int = 1,
                 gpu_fraction: float | None = None, max_retries: int = 3,
                 attack_fn: AttackFn | None = None, poll_seconds: float = 0.5) -> None:
        if address is not None and address != "auto":
            check_address(address)
        self.address = address
        self.workers = workers or os.cpu_count() or 1
        self.threads = threads
        self.gpu_fraction = gpu_fraction
        self.max_retries = max_retries
        self.attack_fn = attack_fn
        self.poll_seconds = poll_seconds
        self.models: dict[str, Classifier] = {}
        self.images: dict[str, torch.Tensor] = {}
        self.executed = 0

    def bind(self, models: dict[str, Classifier], images: dict[str, torch.Tensor]) -> None:
        """The loaded models by id and the preprocessed images by hash (from run_study)."""
        self.models.update(models)
        self.images.update(images)

    def _start(self) -> bool:
        """Connect to (or start) Ray; True when this runner started it (and must stop it)."""
        import ray

        if ray.is_initialized():
            return False
        start_ray(self.address, self.workers, self.threads)
        return True

    def _gpu_fraction(self) -> float:
        if self.gpu_fraction is not None:
            return self.gpu_fraction
        on_gpu = any(m.device.type == "cuda" for m in self.models.values())
        return 0.25 if on_gpu and torch.cuda.is_available() else 0.0

    def run(self, tasks: Sequence[Task], store: ResultStore,
            progress: Progress | None = None) -> RunReport:
        import ray

        state = RunState(tasks, store, progress)
        if not state.todo:
            return state.report()
        owned = self._start()
        pending: dict[Any, Task] = {}
        try:
            pending = self._submit(state.todo)
            while pending:
                state.progress.check_cancel()
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=self.poll_seconds)
                for ref in ready:
                    task = pending.pop(ref)
                    message = f"{len(state.todo) - len(pending)}/{len(state.todo)} tasks: " \
                              f"{describe(task)}"
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        state.finish(task, error=exc.cause or exc, message=message)
                    except ray.exceptions.RayError as exc:  # worker died past its retries
                        state.finish(task, error=f"{type(exc).__name__}: worker lost",
                                     message=message)
                    else:
                        state.finish(task, result, message=message)
                        self.executed += 1
        except (Cancelled, KeyboardInterrupt):
            for ref in pending:
                ray.cancel(ref, force=True)
            raise
        finally:
            if owned:
                ray.shutdown()
        return state.report()

    def _submit(self, todo: Sequence[Task]) -> dict[Any, Task]:
        import ray

        remote = ray.remote(_worker_execute).options(
            num_cpus=self.threads, num_gpus=self._gpu_fraction(),
            max_retries=self.max_retries, retry_exceptions=False)
        model_refs: dict[str, Any] = {}
        image_refs: dict[str, Any] = {}
        pending: dict[Any, Task] = {}
        for task in todo:
            if task.model not in model_refs:
                if task.model not in self.models:
                    raise RsvizError(f"Model {task.model} is not loaded in this runner.")
                model_refs[task.model] = ray.put(shippable(self.models[task.model]))
            if task.image.hash not in image_refs:
                x = self.images.get(task.image.hash)
                if x is None:
                    x = load_image(task.image, self.models[task.model])
                image_refs[task.image.hash] = ray.put(x.cpu())
            ref = remote.remote(task, [model_refs[task.model]], [image_refs[task.image.hash]],
                                self.attack_fn, self.threads)
            pending[ref] = task
        return pending
