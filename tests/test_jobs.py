"""Background jobs: progress with ETA, cancel, errors captured, results in the disk cache."""

from __future__ import annotations

import io
import threading
import time

import pytest

from rsviz.cache import DiskCache
from rsviz.errors import Cancelled, ConfigError
from rsviz.jobs import JobManager
from rsviz.progress import StderrProgress, SubProgress, format_eta


def _steps(n, delay=0.01, gate: threading.Event | None = None):
    def fn(job):
        for i in range(n):
            if gate is not None:
                gate.wait(5)
            job.check_cancel()
            time.sleep(delay)
            job.report(i + 1, n, f"step {i + 1}", partial=list(range(i + 1)))
        return {"steps": n}

    return fn


def test_progress_and_result_cached(tmp_path):
    cache = DiskCache(tmp_path)
    manager = JobManager(cache)
    job_id = manager.submit("demo", _steps(5), cache_key="demo-key")
    snap = manager.wait(job_id, 10)
    assert snap.status == "done" and snap.result == {"steps": 5}
    assert snap.fraction == 1.0 and snap.partial == [0, 1, 2, 3, 4]
    assert cache.get("demo-key") == {"steps": 5}
    # a new manager (server restart) finds it done at once, without running anything
    again = JobManager(cache)
    snap2 = again.get(again.submit("demo", _steps(5, delay=10), cache_key="demo-key")).snapshot()
    assert snap2.status == "done" and snap2.result == {"steps": 5}


def test_cancel_running_and_queued(tmp_path):
    manager = JobManager(DiskCache(tmp_path))
    gate = threading.Event()
    running = manager.submit("long", _steps(1000, gate=gate))
    queued = manager.submit("next", _steps(3))
    time.sleep(0.05)
    manager.cancel(queued)
    assert manager.get(queued).snapshot().status == "cancelled"
    manager.cancel(running)
    gate.set()
    assert manager.wait(running, 5).status == "cancelled"
    assert manager.get(queued).snapshot().done == 0  # never ran


def test_errors_are_captured(tmp_path):
    manager = JobManager(DiskCache(tmp_path))

    def bad(job):
        raise ConfigError("σ must be a positive number (got 0).")

    def crash(job):
        return 1 / 0

    assert manager.wait(manager.submit("bad", bad)).error == "σ must be a positive number (got 0)."
    snap = manager.wait(manager.submit("crash", crash))
    assert snap.status == "error" and snap.error.startswith("ZeroDivisionError")
    assert manager.wait(manager.submit("ok", _steps(1))).status == "done"  # worker survived


def test_one_worker_runs_jobs_in_order(tmp_path):
    manager = JobManager(DiskCache(tmp_path))
    order = []
    lock = threading.Lock()

    def make(i):
        def fn(job):
            with lock:
                order.append(("start", i))
            time.sleep(0.02)
            with lock:
                order.append(("end", i))
        return fn

    ids = [manager.submit(f"j{i}", make(i)) for i in range(3)]
    for job_id in ids:
        manager.wait(job_id)
    assert order == [("start", 0), ("end", 0), ("start", 1), ("end", 1), ("start", 2), ("end", 2)]


def test_duplicate_submissions_share_a_job(tmp_path):
    manager = JobManager(DiskCache(tmp_path))
    gate = threading.Event()
    a = manager.submit("a", _steps(2, gate=gate), cache_key="same")
    b = manager.submit("a", _steps(2, gate=gate), cache_key="same")
    gate.set()
    assert a == b and manager.wait(a).status == "done"


def test_full_disk_warns_but_keeps_result(tmp_path, monkeypatch):
    cache = DiskCache(tmp_path)
    monkeypatch.setattr(cache, "set", lambda key, value: False)
    cache.last_warning = "Could not save the result to the disk cache (disk full)."
    manager = JobManager(cache)
    snap = manager.wait(manager.submit("x", _steps(1), cache_key="k"))
    assert snap.status == "done" and snap.result == {"steps": 1} and "disk" in snap.warning


def test_eta_and_stderr_progress():
    assert format_eta(5) == "5 s" and format_eta(65) == "1 min 05 s" and format_eta(None) == "—"
    stream = io.StringIO()
    progress = StderrProgress("demo", stream)
    progress.report(1, 4)
    progress.report(4, 4, "done")
    text = stream.getvalue()
    assert "25.0%" in text and "100.0%" in text and "ETA" in text


def test_find_active_reattaches(tmp_path):
    manager = JobManager(DiskCache(tmp_path))
    gate = threading.Event()
    job_id = manager.submit("a", _steps(2, gate=gate), cache_key="key-a")
    assert manager.find_active("key-a").id == job_id and manager.find_active("other") is None
    gate.set()
    manager.wait(job_id)
    assert manager.find_active("key-a") is None


class _Recorder:
    def __init__(self) -> None:
        self.reports: list[tuple] = []
        self.cancelled = False

    def report(self, done, total=None, message="", partial=None):
        self.reports.append((done, total, message))

    def check_cancel(self):
        if self.cancelled:
            raise Cancelled()


def test_sub_progress_maps_a_part_onto_its_share():
    parent = _Recorder()
    part = SubProgress(parent, offset=2.0, share=3.0, parent_total=10.0,
                       message=lambda m: f"part: {m}")
    part.report(1, 4, "a")
    part.report(8, 4, "b")  # past the end: clamped to the part's share
    part.report(5, None, "no total")  # dropped
    assert parent.reports == [(2.75, 10.0, "part: a"), (5.0, 10.0, "part: b")]
    fixed = SubProgress(parent, 0.0, 1.0, 2.0, "segment")
    fixed.report(1, 2, "ignored")
    assert parent.reports[-1] == (0.5, 2.0, "segment")
    parent.cancelled = True
    with pytest.raises(Cancelled):
        part.check_cancel()
