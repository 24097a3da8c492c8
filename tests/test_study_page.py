"""The Study page: the results folder is named by the loaded model's id, the cost counts every
model of the plan, the runner choice reaches the job, and a bad Ray address is one message."""

from __future__ import annotations

import re

import pytest

from rsviz.study import StudyPlan
from rsviz.views.study import request_for, results_name
from tests.conftest import ROOT, make_app, run_until
from tests.test_app import fill_small_study

pytestmark = pytest.mark.usefixtures("one_thread")
DONE = re.compile(r"(\d+) of (\d+) tasks done")


def small_study(at, ns: str = "5", budget: int = 10):
    """The page's form on the three golden images: f and g_{0.05,n}, 2 attacks, CERTIFY."""
    at.text_input(key="study_sigmas_w").set_value("0.05").run()
    at.text_input(key="study_ns_w").set_value(ns).run()
    at.number_input(key="study_budget_w").set_value(budget).run()
    at.number_input(key="study_n0_w").set_value(8).run()
    at.number_input(key="study_cn_w").set_value(32).run()
    at.radio(key="study_src_w").set_value("Folder on the server").run()
    at.text_input(key="study_folder_w").set_value(str(ROOT / "tests/golden/images")).run()
    return at


def finished(at) -> bool:
    return any((m := DONE.search(c.value)) and m[1] == m[2] != "0" for c in at.caption)


def start_button(at):
    return next(b for b in at.button if b.key == "start_study")


def test_results_folder_is_named_by_model_id(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("RSVIZ_RESULTS_DIR", str(tmp_path / "results"))
    at = small_study(make_app("pages/6_Study.py"))
    assert not at.exception, at.exception
    note = " ".join(c.value for c in at.caption)
    assert "tiny_cnn-seed0" in note and " models" not in note  # one model: no "× 1 models"
    start_button(at).click().run()
    run_until(at, lambda a: bool(a.exception) or finished(a), timeout=120)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("15 of 15 tasks done" in c.value for c in at.caption)
    folders = [p.name for p in (tmp_path / "results" / "app").iterdir()]
    assert len(folders) == 1 and folders[0].startswith("app-tiny_cnn-seed0-"), folders
    assert len(list((tmp_path / "results" / "app" / folders[0] / "tasks").iterdir())) == 15


def test_request_key_and_folder_follow_the_weights(tiny_model):
    """Two models of one name but different weights (ids) get different keys and folders."""
    from dataclasses import replace
    from types import SimpleNamespace

    plan = StudyPlan(models=("tiny_cnn",), sigmas=(0.05,), ns=(5,))
    other = SimpleNamespace(info=replace(tiny_model.info, model_id="tiny_cnn-retrained"))
    a, b = request_for(plan, "", model=tiny_model), request_for(plan, "", model=other)
    assert (a.model_id, b.model_id) == ("tiny_cnn-seed0", "tiny_cnn-retrained")
    assert a.key() != b.key()
    assert results_name(plan, tiny_model, a.key()) == f"study-tiny_cnn-seed0-{a.key()[-12:]}"
    assert results_name(plan, None, a.key()) == f"study-tiny_cnn-{a.key()[-12:]}"


def test_cost_counts_every_model_of_the_plan():
    from rsviz.imagesets import ImageSetSpec

    images = ImageSetSpec("samples", subset=2)
    one = StudyPlan(models=("tiny_cnn",), images=images, sigmas=(0.05,), ns=(5,))
    two = StudyPlan(models=("tiny_cnn", "linear_toy"), images=images, sigmas=(0.05,), ns=(5,))
    cost = [request_for(p, "").cost().passes for p in (one, two)]
    assert cost[0] > 0 and cost[1] == 2 * cost[0]


def test_bad_ray_address_is_one_message(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("RSVIZ_RESULTS_DIR", str(tmp_path / "results"))
    at = small_study(make_app("pages/6_Study.py"))
    at.radio(key="study_runner_w").set_value("Ray cluster (address)").run()
    at.text_input(key="study_address_w").set_value("no port here").run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == ["Ray address 'no port here': use auto or HOST:PORT."]
    at.text_input(key="study_address_w").set_value("127.0.0.1:1").run()  # nobody listens
    assert not at.error
    start_button(at).click().run()
    run_until(at, lambda a: bool(a.exception) or bool(a.error), timeout=60)
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "Cannot reach a Ray cluster at 127.0.0.1:1" in errors[0], errors
    assert "\n" not in errors[0] and "Traceback" not in errors[0]


def test_sigma_follows_the_model_and_cost_is_stated_before_start(app_env):
    """#25 item 8: σ starts at the model's default (the sidebar's), not a fixed 0.25; the image
    count, the forward passes and the seconds at the measured rate are stated before Start."""
    from rsviz.progress import format_eta
    from rsviz.models import default_sigma, load_model

    at = make_app("pages/6_Study.py")
    assert not at.exception, at.exception
    sigma = default_sigma(load_model("tiny_cnn").info)[0]
    assert sigma != 0.25 and at.text_input(key="study_sigmas_w").value == f"{sigma:g}"
    at.text_input(key="study_sigmas_w").set_value("0.05").run()
    fill_small_study(at)
    assert not at.exception, at.exception
    start_button(at)  # not started yet
    note = " ".join(c.value for c in at.caption)
    m = re.search(r"× (\d+) image\(s\): at most ([\d,]+) forward passes, ≈ (.+?) at most at "
                  r"([\d,]+) passes/s", note)
    assert m, note
    # f and g_{0.05,5} (shortcut, P_a 0.5) × 2 attacks × 10 queries × n = 5, CERTIFY 8 + 32
    assert int(m[1]) == 3 and int(m[2].replace(",", "")) == 3 * (2 * 2 * 10 * 5 + 8 + 32)
    rate = float(m[4].replace(",", ""))
    assert rate > 0 and m[3] in {format_eta(720 / (rate + d)) for d in (-0.5, 0, 0.5)}
