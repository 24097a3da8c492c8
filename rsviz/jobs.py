"""Background jobs: cancel, errors captured, results in the disk cache (progress and ETA:
rsviz.progress).

Plain Python: the engine never imports Streamlit. One manager per process owns ONE daemon worker
thread, which is also what keeps two jobs off the device at once. A `Job` is the `Progress` its
engine function reports to.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import queue
import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Literal

from rsviz.cache import DiskCache, default_cache
from rsviz.errors import Cancelled, RsvizError
from rsviz.progress import Clock

log = logging.getLogger(__name__)
Status = Literal["queued", "running", "done", "error", "cancelled"]


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state, for a page to render."""

    id: str
    name: str
    status: Status
    done: float
    total: float | None
    fraction: float | None
    message: str
    elapsed_s: float
    eta_s: float | None
    partial: Any
    error: str | None
    result: Any
    warning: str | None
    subscribers: int = 0

    @property
    def finished(self) -> bool:
        return self.status in ("done", "error", "cancelled")


class Job:
    """One unit of background work. The worker calls `report` and `check_cancel`.

    `subscribers` are the sessions waiting for it (a job with the same key is shared)."""

    def __init__(self, job_id: str, name: str, fn: Callable[["Job"], Any],
                 cache_key: str | None) -> None:
        self.id = job_id
        self.name = name
        self.fn = fn
        self.cache_key = cache_key
        self.status: Status = "queued"
        self.message = "waiting for the device"
        self.partial: Any = None
        self.error: str | None = None
        self.warning: str | None = None
        self.result: Any = None
        self.created = time.time()
        self.subscribers: set[str] = set()
        self._clock = Clock()
        self._lock = threading.Lock()
        self._cancel = threading.Event()

    # -- called from the worker -------------------------------------------------------------
    def report(self, done: float, total: float | None = None, message: str = "",
               partial: Any = None) -> None:
        with self._lock:
            self._clock.update(done, total)
            if message:
                self.message = message
            if partial is not None:
                self.partial = partial

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled()

    # -- called from anywhere ---------------------------------------------------------------
    def cancel(self) -> None:
        """Stop the job (at its next cancel check; at once while it is queued)."""
        self._cancel.set()
        with self._lock:
            if self.status == "queued":
                self.status = "cancelled"
                self.message = "cancelled before it started"
                self._clock = Clock()
                self._clock.stop()

    def _end(self, status: Status, message: str) -> None:
        """Called by the worker, lock held: the final status, the clock stopped."""
        self.status, self.message = status, message
        self._clock.stop()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                id=self.id, name=self.name, status=self.status, done=self._clock.done,
                total=self._clock.total, fraction=self._clock.fraction, message=self.message,
                elapsed_s=self._clock.elapsed if self.status != "queued" else 0.0,
                eta_s=self._clock.eta if self.status == "running" else None,
                partial=self.partial, error=self.error, result=self.result,
                warning=self.warning, subscribers=len(self.subscribers),
            )


_MANAGERS: "weakref.WeakSet[JobManager]" = weakref.WeakSet()


@atexit.register
def _stop_all_workers() -> None:
    """At interpreter exit, let running jobs stop at their next cancel check."""
    for manager in list(_MANAGERS):
        manager.shutdown(wait=10.0)


class JobManager:
    """A dict of jobs, a queue, and one daemon worker thread that runs them in order.

    Args:
        cache: the disk cache of results (default: `default_cache()`).
        alive: whether a subscriber (a session id) is still connected; None: all are.
    """

    def __init__(self, cache: DiskCache | None = None,
                 alive: Callable[[str], bool] | None = None) -> None:
        self.cache = cache
        self.alive = alive
        self.jobs: dict[str, Job] = {}
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopped = False
        self._worker = threading.Thread(target=self._run, name="rsviz-worker", daemon=True)
        self._worker.start()
        _MANAGERS.add(self)

    def _disk(self) -> DiskCache:
        return self.cache or default_cache()

    def submit(self, name: str, fn: Callable[[Job], Any], cache_key: str | None = None,
               subscriber: str | None = None) -> str:
        """Queue `fn(job)`; return the job id. `subscriber` (a session id) waits for it.

        With a cache key: a finished result on disk gives a job that is done at once, and a job
        with the same key already queued or running is returned (and subscribed to) instead of
        a duplicate.
        """
        with self._lock:
            if cache_key is not None:
                for job in self.jobs.values():
                    if job.cache_key == cache_key and job.status in ("queued", "running", "done"):
                        if subscriber is not None:
                            job.subscribers.add(subscriber)
                        return job.id
            job = Job(f"job-{next(self._ids)}", name, fn, cache_key)
            if subscriber is not None:
                job.subscribers.add(subscriber)
            self.jobs[job.id] = job
        if cache_key is not None:
            cached = self._disk().get(cache_key)
            if cached is not None:
                with job._lock:
                    job.result, job.status = cached, "done"
                    job._clock.update(1, 1)
                    job._end("done", "loaded from the disk cache")
                return job.id
        self._queue.put(job)
        return job.id

    def find_active(self, cache_key: str) -> Job | None:
        """A queued or running job computing `cache_key` (to re-attach after a reload)."""
        with self._lock:
            for job in self.jobs.values():
                if job.cache_key == cache_key and job.status in ("queued", "running"):
                    return job
        return None

    def get(self, job_id: str | None) -> Job | None:
        return self.jobs.get(job_id) if job_id else None

    def subscribe(self, job_id: str, subscriber: str) -> None:
        """`subscriber` waits for the job too (a page that re-attaches to it)."""
        job = self.get(job_id)
        if job is not None:
            with self._lock:
                job.subscribers.add(subscriber)

    def waiting(self, job_id: str, besides: str | None = None) -> int:
        """How many connected subscribers (other than `besides`) wait for the job."""
        job = self.get(job_id)
        if job is None:
            return 0
        with self._lock:
            return sum(1 for s in job.subscribers
                       if s != besides and (self.alive is None or self.alive(s)))

    def cancel(self, job_id: str, subscriber: str | None = None) -> bool:
        """Stop the job; with `subscriber`, detach that subscriber, and stop the job only when
        no connected subscriber is left. True when the job was asked to stop."""
        job = self.get(job_id)
        if job is None:
            return False
        if subscriber is not None:
            with self._lock:
                job.subscribers.discard(subscriber)
            if self.waiting(job_id):
                return False
        job.cancel()
        return True

    def list(self) -> list[JobSnapshot]:
        """Snapshots of every job, newest first."""
        with self._lock:
            jobs = list(self.jobs.values())
        return [j.snapshot() for j in sorted(jobs, key=lambda j: j.created, reverse=True)]

    def wait(self, job_id: str, timeout: float = 60.0) -> JobSnapshot:
        """Block until the job ends (for tests and the CLI)."""
        deadline = time.monotonic() + timeout
        job = self.jobs[job_id]
        while time.monotonic() < deadline:
            snap = job.snapshot()
            if snap.finished:
                return snap
            time.sleep(0.02)
        return job.snapshot()

    def shutdown(self, wait: float = 0.0) -> None:
        """Cancel everything and stop the worker (used by st.cache_resource's on_release).

        With `wait` > 0, block up to that many seconds for the running job to reach its next
        cancel check: a worker killed inside a native (torch) call at interpreter exit aborts
        the process.
        """
        self._stopped = True
        for job in list(self.jobs.values()):
            job.cancel()
        self._queue.put(None)
        if wait > 0 and self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(wait)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None or self._stopped:
                return
            with job._lock:
                if job.status == "cancelled":
                    continue
                job.status, job.message = "running", "started"
                job._clock = Clock()
            try:
                result = job.fn(job)
            except Cancelled:
                with job._lock:
                    job._end("cancelled", "cancelled by the user")
                continue
            except RsvizError as exc:
                with job._lock:
                    job.error = str(exc)
                    job._end("error", job.message)
                continue
            except Exception as exc:  # noqa: BLE001 - the page shows "Type: message"
                log.error("job %s (%s) failed:\n%s", job.id, job.name, traceback.format_exc())
                with job._lock:
                    job.error = f"{type(exc).__name__}: {exc}"
                    job._end("error", job.message)
                continue
            stored = True
            if job.cache_key is not None:
                disk = self._disk()
                stored = disk.set(job.cache_key, result)
            with job._lock:
                job.result = result
                job._end("done", "finished")
                if not stored:
                    job.warning = self._disk().last_warning
                if job._clock.total is not None:
                    job._clock.done = job._clock.total
