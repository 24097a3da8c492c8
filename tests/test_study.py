"""Studies: plans, tasks, resumable runs, tables, figures, CLI and the Study page."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from rsviz.attacks import REGISTRY as ATTACK_REGISTRY
from rsviz.errors import Cancelled, ConfigError
from rsviz.figures.study import certification_figure, distortion_figure, ratio_figure
from rsviz.images import preprocess, synthetic_image
from rsviz.imagesets import ImageSetSpec, from_folder
from rsviz.smoothing import forward_labels
from rsviz.certification import CertificationConfig
from rsviz.study import (LocalRunner, ResultStore, StudyPlan, load_plan,
                         open_results, parse_plan, run_study)
from tests.conftest import ROOT


@pytest.fixture
def image_folder(tmp_path, tiny_model):
    """Two synthetic 32×32 images labelled with tiny_cnn's own predictions (f is right)."""
    folder = tmp_path / "images"
    folder.mkdir()
    lines = []
    for i in range(2):
        img = synthetic_image(32, seed=10 + i)
        img.save(folder / f"im{i}.png")
        label = int(forward_labels(tiny_model, preprocess(img, 32, 32)[None])[0])
        lines.append(f"im{i}.png,{label}")
    (folder / "labels.csv").write_text("filename,class_index\n" + "\n".join(lines) + "\n")
    return folder


def tiny_plan(folder, **changes) -> StudyPlan:
    """2 images × 2 configurations (f and g_{0.05,3}) × 2 attacks, small budget."""
    values = dict(name="tiny", models=("tiny_cnn",), images=ImageSetSpec("folder", str(folder)),
                  sigmas=(0.05,), ns=(3,), criteria=("shortcut",), p_as=(0.5,),
                  attacks=("alpha", "beta"), budget=20, seed=1, include_undefended=True,
                  certify=CertificationConfig(n0=16, n=64, alpha=0.01))
    values.update(changes)
    return StudyPlan(**values)


class StandIn:
    """A stand-in for rsviz.attacks.run_attack: deterministic in its seed, counts calls."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, model, x_o, y, attack_name, oracle_config, generator_seed,
                 progress=None, params=None):
        self.calls.append((attack_name, oracle_config.sigma, generator_seed))
        rng = np.random.default_rng(generator_seed)
        l2 = float(1 + rng.random()) * (2 if attack_name == "beta" else 1)
        return SimpleNamespace(l2=l2, linf=l2 / 10, queries=oracle_config.budget, success=True,
                               forward_passes=oracle_config.budget * oracle_config.n)


def test_plan_from_yaml_json_and_validation(tmp_path):
    plan = parse_plan("model: tiny_cnn\nsigmas: [0.05, 0.15]\nns: [10, 50]\n"
                      "criteria: [shortcut, single_draw]\np_as: [0.5, 0.8]\nattacks: [hsja]\n"
                      "images: {folder: x, subset: 3}\ncertify: null\n")
    assert plan.images == ImageSetSpec("folder", "x", None, 3, 0) and plan.certify is None
    # f + 2σ × 2n × (shortcut × 2 P_a + single_draw without P_a)
    assert len(plan.configurations()) == 1 + 2 * 2 * 3
    (tmp_path / "p.json").write_text(json.dumps(plan.to_dict()))
    assert load_plan(tmp_path / "p.json") == plan  # JSON round trip of the plan
    example = load_plan(ROOT / "examples" / "plan_small.yaml")
    assert example.attacks and example.certify is not None
    with pytest.raises(ConfigError, match="Unknown plan key"):
        parse_plan("sigma: 0.25\n")
    with pytest.raises(ConfigError, match="σ"):
        parse_plan("sigmas: [0]\n")
    with pytest.raises(ConfigError, match="criterion"):
        parse_plan("criteria: [nope]\n")
    with pytest.raises(ConfigError, match="not valid"):
        parse_plan("sigmas: [0.25\n")


def test_tiny_end_to_end_tables_and_figures(tiny_model, image_folder, tmp_path):
    fake = StandIn()
    plan = tiny_plan(image_folder)
    study = run_study(plan, tmp_path / "out", model=tiny_model, attack_fn=fake)
    # 2 images × (1 certify + 2 configurations × 2 attacks)
    assert study.executed == 10 and study.reused == 0 and len(study.results) == study.expected == 10
    assert len(fake.calls) == sum(r["start_correct"] for r in study.results if r["kind"] == "attack")
    summary = study.summary()
    assert len(summary) == 4
    f_rows = [r for r in summary if r["sigma"] is None]
    assert all(r["accuracy"] == 1.0 for r in f_rows)  # labels are f's predictions
    for row in summary:
        mine = [r["l2"] for r in study.results if r["kind"] == "attack" and r["success"]
                and r["attack"] == row["attack"] and r["sigma"] == row["sigma"]]
        if mine:
            assert row["mean_l2"] == pytest.approx(np.mean(mine))
            assert row["median_l2"] == pytest.approx(np.median(mine))
    for ratio in study.ratios():
        assert ratio["ratio"] == pytest.approx(ratio["l2"] / ratio["radius"])
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"plan.json", "images.json", "tasks", "summary.csv", "ratios.csv",
            "accuracy_drop.csv", "certify_sigma0.05.tsv"} <= names
    assert not list((tmp_path / "out").rglob("*.tmp"))
    # the folder reopens with the same tables (the app's "open a results folder")
    again = open_results(tmp_path / "out")
    assert again.plan == plan and again.summary() == summary
    assert len(certification_figure(again.certification(), "tiny_cnn").data) == 1
    fig5 = distortion_figure(summary)
    assert len(fig5.data) == 4 and {t.x[0] for t in fig5.data} <= {0.0, 0.5, 1.0}
    assert len(ratio_figure(study.ratios()).data) == len({r["attack"] for r in study.ratios()})


class StopAfter:
    """A Progress that cancels once `limit` tasks have been stored."""

    def __init__(self, store: ResultStore, limit: int) -> None:
        self.store, self.limit = store, limit

    def report(self, done, total=None, message="", partial=None) -> None:
        pass

    def check_cancel(self) -> None:
        if len(list(self.store.tasks_dir.glob("*.json"))) >= self.limit:
            raise Cancelled()


def test_resume_after_interruption_redoes_nothing(tiny_model, image_folder, tmp_path):
    plan = tiny_plan(image_folder)
    out = tmp_path / "out"
    first = StandIn()
    with pytest.raises(Cancelled):
        run_study(plan, out, model=tiny_model, attack_fn=first,
                  progress=StopAfter(ResultStore(out), 4))
    assert len(list((out / "tasks").glob("*.json"))) == 4
    second = StandIn()
    runner = LocalRunner(tiny_model, attack_fn=second)
    study = run_study(plan, out, model=tiny_model, runner=runner)
    assert study.reused == 4 and runner.executed == 6 == study.executed
    assert not set(first.calls) & set(second.calls)  # no attack ran twice
    third = StandIn()
    done = run_study(plan, out, model=tiny_model, attack_fn=third)
    assert done.executed == 0 and done.reused == 10 and third.calls == []
    # idempotent tasks: the resumed study equals an uninterrupted one
    straight = run_study(plan, tmp_path / "straight", model=tiny_model, attack_fn=StandIn())
    key = lambda r: r["task_id"]  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds",)}  # noqa: E731
    assert [strip(r) for r in sorted(done.results, key=key)] == \
        [strip(r) for r in sorted(straight.results, key=key)]


def test_corrupt_task_file_is_recomputed(tiny_model, image_folder, tmp_path):
    from rsviz.cache import default_cache

    plan = tiny_plan(image_folder, attacks=("alpha",), include_undefended=False, certify=None)
    out = tmp_path / "out"
    run_study(plan, out, model=tiny_model, attack_fn=StandIn())
    victim = sorted((out / "tasks").glob("*.json"))[0]
    victim.write_text("{ torn")
    restored = run_study(plan, out, model=tiny_model, attack_fn=StandIn())
    assert restored.executed == 0  # the disk cache still had it: the file is rewritten
    assert json.loads(victim.read_text())["kind"] == "attack"
    victim.write_text("{ torn")
    default_cache().clear()  # and now not in the disk cache either
    again = run_study(plan, out, model=tiny_model, attack_fn=StandIn())
    assert again.executed == 1 and json.loads(victim.read_text())["kind"] == "attack"


def test_real_registry_attacks_on_tiny_cnn(tiny_model, image_folder, tmp_path):
    names = ["hsja", "surfree"]
    plan = tiny_plan(image_folder, attacks=tuple(names), budget=30, certify=None,
                     images=ImageSetSpec("folder", str(image_folder), subset=1))
    study = run_study(plan, tmp_path / "out", model=tiny_model)
    attacked = [r for r in study.results if r["start_correct"]]
    assert len(study.results) == 2 * len(names)
    assert attacked and all(0 < r["queries"] <= 30 for r in attacked)
    for r in attacked:
        if r["success"]:
            assert r["l2"] > 0 and r["linf"] <= r["l2"] + 1e-6
    assert {r["attack"] for r in study.summary()} == set(names)


def test_cli_study_json(tiny_model, image_folder, tmp_path, capsys):
    from rsviz.cli import main

    names = list(ATTACK_REGISTRY)
    plan = tiny_plan(image_folder, attacks=(names[0],), budget=20, ns=(1,),
                     certify=CertificationConfig(n0=8, n=32, alpha=0.01),
                     images=ImageSetSpec("folder", str(image_folder), subset=1))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_dict()))
    assert main(["study", str(path), "--out", str(tmp_path / "out"), "--json",
                 "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["executed"] == 1 + 2 and len(result["rows"]) == 2
    assert set(result["rows"][0]) >= {"model", "sigma", "n", "criterion", "attack", "accuracy",
                                      "mean_l2", "median_l2"}
    assert main(["study", str(path), "--out", str(tmp_path / "out"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["executed"] == 0  # resumed: nothing redone


def test_cli_certify_set_and_single(tiny_model, image_folder, tmp_path, capsys):
    from rsviz.certification import read_tsv
    from rsviz.cli import main

    assert main(["certify", "--images", str(image_folder), "--model", "tiny_cnn", "--sigma",
                 "0.05", "0.1", "--n0", "8", "--n", "64", "--out", str(tmp_path / "r.tsv"),
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [s["sigma"] for s in result["sigmas"]] == [0.05, 0.1]
    assert len(read_tsv(tmp_path / "r_sigma0.05.tsv")) == 2
    assert result["sigmas"][0]["accuracy_f"] == 1.0
    assert main(["certify", "sample:coffee", "--model", "tiny_cnn", "--sigma", "0.1", "--n0",
                 "8", "--n", "64", "--alpha", "0.01", "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert {"predict", "radius", "p_lower", "forward_passes", "time"} <= set(single)
    assert single["forward_passes"] == 8 + 64 + 1
    assert single["predict"] == -1 or single["radius"] > 0
    assert main(["certify", "--model", "tiny_cnn"]) == 1  # neither IMAGE nor --images


def test_study_page_open_and_run(app_env, image_folder, tmp_path, monkeypatch):
    from tests.conftest import make_app, run_until

    monkeypatch.setenv("RSVIZ_RESULTS_DIR", str(tmp_path / "results"))
    at = make_app("pages/6_Study.py")
    assert not at.exception, at.exception
    # define a tiny plan on the server folder and run it as a job
    at.text_input(key="study_sigmas_w").set_value("0.05")
    at.text_input(key="study_ns_w").set_value("3")
    at.number_input(key="study_budget_w").set_value(20)
    at.number_input(key="study_cn_w").set_value(32)
    at.radio(key="study_src_w").set_value("Folder on the server").run()
    at.text_input(key="study_folder_w").set_value(str(image_folder)).run()
    assert not at.exception, at.exception
    at.button(key="start_study").click().run()
    run_until(at, lambda at: any("tasks done" in c.value for c in at.caption)
              and not at.get("progress"), timeout=30)
    assert not at.exception, at.exception
    assert any("Distortion vs accuracy" in str(t.label) for t in at.tabs)
    assert len(at.get("plotly_chart")) >= 2
    folders = list((tmp_path / "results" / "app").iterdir())
    assert len(folders) == 1 and (folders[0] / "summary.csv").is_file()
    # open the finished folder like one written by the CLI on a GPU machine
    at.radio(key="study_mode_w").set_value("Open a results folder").run()
    at.text_area(key="study_open_w").set_value(str(folders[0])).run()
    at.button(key="study_open_btn").click().run()
    assert not at.exception, at.exception
    assert any("tasks done" in c.value for c in at.caption)
    assert any(str(t.label) == "Claims" for t in at.tabs)
    assert any("paired bootstrap" in c.value for c in at.caption)  # the claims table's legend
    # several folders, one per line (here the same one twice: each task counted once)
    at.text_area(key="study_open_w").set_value(f"{folders[0]}\n\n{folders[0]}\n").run()
    at.button(key="study_open_btn").click().run()
    assert not at.exception, at.exception
    done = [c.value for c in at.caption if "tasks done" in c.value]
    tasks = len(list((folders[0] / "tasks").iterdir()))
    assert done and done[0].startswith(f"{tasks} of {tasks} tasks done")
    # a folder that is not a study: one message, no traceback
    at.text_area(key="study_open_w").set_value(str(tmp_path)).run()
    at.button(key="study_open_btn").click().run()
    assert not at.exception and any("not a study folder" in e.value for e in at.error)


@pytest.mark.parametrize("change, message", [
    (dict(models=("tiny_cn",)), r"^Unknown model 'tiny_cn' \(did you mean 'tiny_cnn'\?\)"),
    (dict(models=("resnet18:/nowhere/ckpt.pth",)), r"^Model 'resnet18:/nowhere/ckpt.pth': no "),
    (dict(images=ImageSetSpec("folder", "/nowhere/images")), r"^images.folder: no folder "),
    (dict(attacks=("hjsa",)), r"^Unknown attack\(s\) hjsa; available: "),
])
def test_bad_plans_fail_in_one_line_before_anything_runs(image_folder, tmp_path, change,
                                                         message):
    with pytest.raises(ConfigError, match=message) as err:
        run_study(tiny_plan(image_folder, **{"attacks": ("hsja",), **change}), tmp_path / "out")
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


def test_plan_typos_and_model_lists():
    with pytest.raises(ConfigError, match=r"^Unknown plan key 'sigma' \(did you mean 'sigmas'"):
        parse_plan("sigma: 0.25\n")
    with pytest.raises(ConfigError, match=r"^Unknown key certify.n1"):
        parse_plan("certify: {n1: 3}\n")
    assert parse_plan("model: tiny_cnn\n").models == ("tiny_cnn",)
    plan = parse_plan("models: [tiny_cnn, linear_toy]\nsigmas: [0.1, 0.2]\ncertify: {n: 99}\n")
    assert plan.models == ("tiny_cnn", "linear_toy") and plan.certify.sigmas == (0.1, 0.2)
    assert plan.to_dict()["certify"] == {"n0": 64, "n": 99, "alpha": 0.001}
    assert parse_plan(json.dumps(plan.to_dict())) == plan
    with pytest.raises(ConfigError, match="both model and models"):
        parse_plan("model: a\nmodels: [b]\n")


def test_models_side_by_side_and_folders_opened_together(tiny_model, image_folder, tmp_path):
    from rsviz.study import open_many

    both = tiny_plan(image_folder, models=("tiny_cnn", "linear_toy"))
    study = run_study(both, tmp_path / "both", model=tiny_model, attack_fn=StandIn())
    tiny, linear = "tiny_cnn-seed0", "linear_toy-v1"  # model ids: name + weights version
    assert study.models == [tiny, linear] and len(study.results) == 2 * 10
    summary = study.summary()
    assert {r["model"] for r in summary} == {tiny, linear} and len(summary) == 8
    fig5 = distortion_figure(summary)
    legends = {t.name.split(" / ")[0].split(",")[0] for t in fig5.data}
    assert legends == {r["model"] for r in summary if r["mean_l2"] is not None}
    assert fig5.layout.meta["models"] == [linear, tiny]
    fig4 = certification_figure(study.certification_by_model())
    assert sorted(t.name.split(",")[0] for t in fig4.data) == [linear, tiny]
    assert fig4.layout.meta["models"] == [tiny, linear]
    assert {r["model"] for r in study.accuracy_drop()} == {tiny, linear}
    assert (tmp_path / "both" / f"certify_{linear}_sigma0.05.tsv").is_file()
    # one folder per model, opened together: the same rows as the joint study
    for name in ("tiny_cnn", "linear_toy"):
        run_study(tiny_plan(image_folder, models=(name,)), tmp_path / name,
                  model=tiny_model if name == "tiny_cnn" else None, attack_fn=StandIn())
    merged = open_many([tmp_path / "tiny_cnn", tmp_path / "linear_toy"])
    assert merged.summary() == summary and merged.expected == 20 == len(merged.results)


def test_bootstrap_intervals_bracket_the_statistic():
    from rsviz.study import bootstrap_ci

    values = np.random.default_rng(3).lognormal(size=40)
    for stat, fn in (("mean", np.mean), ("median", np.median)):
        low, high = bootstrap_ci(values, stat)
        assert low < fn(values) < high and bootstrap_ci(values, stat) == (low, high)
    # the mean's interval matches the normal approximation (±1.96 s/√k) within 25 %
    low, high = bootstrap_ci(values, "mean")
    half = 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert (high - low) / 2 == pytest.approx(half, rel=0.25)
    assert bootstrap_ci([1.0], "mean") is None


def test_metadata_names_every_model_id(tiny_model, image_folder, tmp_path):
    plan = tiny_plan(image_folder, models=("tiny_cnn", "linear_toy"), certify=None)
    study = run_study(plan, tmp_path / "out", model=tiny_model, attack_fn=StandIn())
    meta = study.metadata()
    assert meta["model_ids"] == ["tiny_cnn-seed0", "linear_toy-v1"] and meta["tasks"] == 16
    assert meta["plans"][0]["models"] == ["tiny_cnn", "linear_toy"]
