"""The Ray runner on a real local Ray (2 CPUs, started and stopped here): the same numbers as
LocalRunner, resume after the driver is killed, failures reported, dead workers retried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import numpy as np
import pytest
import ray

from rsviz.errors import RsvizError
from rsviz.imagesets import ImageSetSpec
from rsviz.study import LocalRunner, run_study
from rsviz.study.ray_runner import RayRunner, start_ray
from tests.conftest import ROOT
from tests.test_study import image_folder, tiny_plan  # noqa: F401 - the fixture is used


@pytest.fixture(scope="module")
def cluster():
    """A local Ray with 2 one-thread workers for this module; its GCS address."""
    start_ray(None, workers=2, threads=1)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def strip(results):
    return [{k: v for k, v in r.items() if k != "seconds"}
            for r in sorted(results, key=lambda r: r["task_id"])]


class Scripted:
    """A deterministic stand-in attack that workers import by name: `slow` sleeps, `raises`
    raises, `dies` kills its worker process the first time (a marker file remembers it)."""

    def __init__(self, marker: str = "", sleep: float = 0.0) -> None:
        self.marker, self.sleep = marker, sleep

    def __call__(self, model, x_o, y, attack_name, oracle_config, generator_seed,
                 progress=None, params=None):
        time.sleep(self.sleep)
        if attack_name == "raises":
            raise ValueError("scripted failure")
        if attack_name == "dies" and self.marker and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(1)
        l2 = float(1 + np.random.default_rng(generator_seed).random())
        return SimpleNamespace(l2=l2, linf=l2 / 10, queries=oracle_config.budget, success=True,
                               forward_passes=oracle_config.budget)


def test_ray_gives_the_local_numbers_with_real_attacks(cluster, tiny_model, image_folder,
                                                       tmp_path, monkeypatch):
    plan = tiny_plan(image_folder, attacks=("hsja", "surfree"), budget=20)
    local = run_study(plan, tmp_path / "local", model=tiny_model)
    monkeypatch.setenv("RSVIZ_CACHE_DIR", str(tmp_path / "other-cache"))  # nothing reused
    runner = RayRunner()
    remote = run_study(plan, tmp_path / "ray", model=tiny_model, runner=runner)
    assert remote.executed == runner.executed == local.executed == 10 and not remote.failed
    assert any(r["kind"] == "attack" and r["success"] for r in remote.results)
    assert strip(remote.results) == strip(local.results)
    assert remote.summary() == local.summary()
    names = sorted(p.name for p in (tmp_path / "ray" / "tasks").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "local" / "tasks").iterdir())


def test_failures_are_reported_and_dead_workers_retried(cluster, tiny_model, image_folder,
                                                        tmp_path):
    marker = tmp_path / "died-once"
    plan = tiny_plan(image_folder, attacks=("fine", "raises", "dies"), certify=None,
                     include_undefended=True, sigmas=(), images=ImageSetSpec(
                         "folder", str(image_folder), subset=1))
    study = run_study(plan, tmp_path / "out", model=tiny_model,
                      runner=RayRunner(attack_fn=Scripted(str(marker))))
    assert marker.exists()  # a worker died once; its task ran again and was stored
    assert {r["attack"] for r in study.results} == {"fine", "dies"}
    assert len(study.failed) == 1 and study.failed[0]["task"].startswith("raises on im")
    assert "ValueError: scripted failure" in study.failed[0]["error"]
    assert json.loads((tmp_path / "out" / "failed.json").read_text()) == study.failed
    assert study.executed == 2 and len(list((tmp_path / "out" / "tasks").iterdir())) == 2


DRIVER = """
import sys
from rsviz.models import load_model
from rsviz.study import run_study
from rsviz.study.ray_runner import RayRunner
from tests.test_study import tiny_plan
from tests.test_study_ray import Scripted
plan = tiny_plan(sys.argv[1], attacks=("a", "b"))
run_study(plan, sys.argv[2], model=load_model("tiny_cnn"),
          runner=RayRunner(address=sys.argv[3], attack_fn=Scripted(sleep=1.0)))
"""


def test_resume_after_the_driver_is_killed(cluster, tiny_model, image_folder, tmp_path,
                                           monkeypatch):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(image_folder), str(out),
                               cluster], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tasks = out / "tasks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None:
        if tasks.is_dir() and len(list(tasks.glob("*.json"))) >= 3:
            break
        time.sleep(0.1)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]  # still running
    driver.kill()
    driver.wait()
    stored = len(list(tasks.glob("*.json")))
    assert 3 <= stored < 10  # killed mid-run: 2 certify + 8 attack tasks in all
    plan = tiny_plan(image_folder, attacks=("a", "b"))
    resumed = run_study(plan, out, model=tiny_model, runner=RayRunner(attack_fn=Scripted()))
    assert resumed.reused == stored and resumed.executed == 10 - stored
    monkeypatch.setenv("RSVIZ_CACHE_DIR", str(tmp_path / "other-cache"))  # nothing reused
    straight = run_study(plan, tmp_path / "straight", model=tiny_model,
                         runner=LocalRunner(tiny_model, attack_fn=Scripted()))
    assert strip(resumed.results) == strip(straight.results)


def test_unreachable_address_is_one_line():
    with pytest.raises(RsvizError, match=r"^Cannot reach a Ray cluster at 127\.0\.0\.1:9 ") as err:
        RayRunner(address="127.0.0.1:9")
    assert "\n" not in str(err.value)
    with pytest.raises(RsvizError, match="HOST:PORT"):
        RayRunner(address="nowhere")


def test_page_runs_on_ray_with_progress_and_cancel(cluster, app_env, tmp_path, monkeypatch):
    """The Study page on "Ray on this machine" (the module's Ray is the one already running):
    a small plan runs to the end; a long one shows progress and Cancel stops it, keeping the
    tasks stored so far. Last in the module: a forced cancel kills the busy workers."""
    from tests.conftest import make_app, run_until
    from tests.test_study_page import finished, small_study, start_button

    monkeypatch.setenv("RSVIZ_RESULTS_DIR", str(tmp_path / "results"))
    at = small_study(make_app("pages/6_Study.py"))
    at.radio(key="study_runner_w").set_value("Ray on this machine").run()
    start_button(at).click().run()
    run_until(at, lambda a: bool(a.exception) or bool(a.error) or finished(a), timeout=180)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("15 of 15 tasks done" in c.value for c in at.caption)

    at.number_input(key="study_budget_w").set_value(5000).run()  # minutes of work: cancel it
    start_button(at).click().run()
    cancel = lambda a: [b for b in a.button if b.key.startswith("cancel_")]  # noqa: E731
    run_until(at, lambda a: bool(a.exception) or bool(cancel(a)), timeout=60)
    assert cancel(at), "no progress line with a Cancel button"
    cancel(at)[0].click().run()
    run_until(at, lambda a: any("cancelled" in i.value for i in a.info), timeout=60)
    assert not at.exception, at.exception
    assert any("The last run was cancelled." in i.value for i in at.info)
    folders = sorted((tmp_path / "results" / "app").iterdir(), key=lambda p: p.stat().st_mtime)
    assert len(folders) == 2
    assert len(list((folders[-1] / "tasks").glob("*.json"))) < 15  # stopped before the end


def test_a_model_with_an_attached_engine_ships_without_it(cluster, tiny_model, image_folder,
                                                           tmp_path):
    """The sidebar's model may carry a compiled engine that does not pickle (OpenVINO): the
    workers get the model without it, and the driver's model keeps it."""
    import threading

    from rsviz.engines import Engine, attach, engine_of

    lock = Engine(tiny_model, tiny_model.info.input_shape)  # eager fp32, as workers run it,
    lock.unpicklable = threading.Lock()  # with an object that cannot be pickled (OpenVINO's)
    attach(tiny_model, lock)
    plan = tiny_plan(image_folder, attacks=("a",), certify=None)
    study = run_study(plan, tmp_path / "out", model=tiny_model,
                      runner=RayRunner(attack_fn=Scripted()))
    assert study.executed == 4 and not study.failed
    assert engine_of(tiny_model) is lock
