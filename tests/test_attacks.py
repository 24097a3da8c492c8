"""Attacks: generic properties for every registry attack, HSJA and RayS fidelity on a linear f."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from rsviz.attacks import REGISTRY, AttackTrace, make_attack, run_attack
from rsviz.attacks.base import run_steps
from rsviz.attacks.oracle import Oracle, OracleConfig
from rsviz.errors import Cancelled, ConfigError
from rsviz.images import preprocess, synthetic_image
from rsviz.models import Classifier, REGISTRY as MODELS, make_linear_toy, spec_info
from rsviz.smoothing import make_generator


pytestmark = pytest.mark.usefixtures("one_thread")


ATTACKS = list(REGISTRY)
FP32 = dict(precision="fp32")  # boundary points re-checked exactly (bf16 rounds differently per batch)


def tiny_input(tiny_model) -> tuple[torch.Tensor, int]:
    x = preprocess(synthetic_image(32, 0), 32, 32)
    with torch.inference_mode():
        return x, int(tiny_model(x[None]).argmax(1))


def linear(size: int) -> Classifier:
    info = dataclasses.replace(spec_info(MODELS["linear_toy"]), input_size=size, resize=size)
    return Classifier(make_linear_toy(size=size), info, normalize=False)


def attack_distance(name: str, x: torch.Tensor, x_o: torch.Tensor) -> float:
    delta = (x - x_o).flatten()
    return float(delta.norm() if REGISTRY[name].distance == "l2" else delta.abs().max())


@pytest.mark.parametrize("name", ATTACKS)
def test_generic_properties_on_f(tiny_model, name):
    x, y = tiny_input(tiny_model)
    budget = 300
    cfg = OracleConfig(budget=budget, **FP32)
    oracle = Oracle(tiny_model, x, y, cfg, distance=REGISTRY[name].distance)
    states = list(run_steps(make_attack(name), oracle, x, make_generator(0)))
    assert states, "the iterator yields"
    queries = [s.queries for s in states]
    assert queries == sorted(queries) and queries[-1] <= budget
    assert queries[-1] >= budget - 60  # it uses its budget (HSJA keeps a reserve for one step)
    assert all(s.forward_passes == s.queries for s in states)  # f: one pass per query
    found = [s for s in states if s.success]
    assert found, "an adversarial point is found within 300 queries on the tiny CNN"
    dists = [attack_distance(name, s.x_adv, x) for s in found]
    assert all(b <= a + 1e-7 for a, b in zip(dists, dists[1:])), "best distortion never increases"
    for s in found:
        assert s.l2 == pytest.approx(float((s.x_adv - x).norm()), rel=1e-5)
        assert s.linf == pytest.approx(float((s.x_adv - x).abs().max()), rel=1e-5)
        assert 0.0 <= float(s.x_adv.min()) and float(s.x_adv.max()) <= 1.0
    with torch.inference_mode():  # every reported best point is adversarial for f (one at a
        labels = [int(tiny_model(s.x_adv[None]).argmax(1)) for s in found]  # time, as queried)
    assert all(label != y for label in labels)
    assert dists[-1] < dists[0]  # and the attack made progress


@pytest.mark.parametrize("name", ATTACKS)
def test_same_seed_same_trace(tiny_model, name):
    x, y = tiny_input(tiny_model)
    cfg = OracleConfig(budget=120, sigma=0.1, n=4, seed=2)
    a = run_attack(tiny_model, x, y, name, cfg, generator_seed=5)
    b = run_attack(tiny_model, x, y, name, cfg, generator_seed=5)
    assert a.points == b.points
    assert (a.x_adv is None and b.x_adv is None) or torch.equal(a.x_adv, b.x_adv)
    c = run_attack(tiny_model, x, y, name, dataclasses.replace(cfg, seed=3), generator_seed=6)
    assert c.points != a.points


@pytest.mark.parametrize("name", ATTACKS)
@pytest.mark.parametrize("criterion", ["single_draw", "shortcut", "exact"])
def test_against_smoothed_model_ends(tiny_model, name, criterion):
    """Against g_{σ,n} the attack ends at its budget without error or hang; one query costs at
    most n passes; every best point was accepted by the criterion (the oracle's best)."""
    x, y = tiny_input(tiny_model)
    n = 5
    cfg = OracleConfig(sigma=0.25, n=n, criterion=criterion, p_a=0.6, budget=100, seed=1)
    trace = run_attack(tiny_model, x, y, name, cfg, generator_seed=0)
    assert trace.finished and trace.queries <= 100
    assert trace.forward_passes <= n * trace.queries
    best = [p[2] if REGISTRY[name].distance == "l2" else p[3] for p in trace.points]
    assert all(b <= a for a, b in zip(best, best[1:]))
    if trace.success:
        assert trace.l2 == pytest.approx(float((trace.x_adv - x).norm()), rel=1e-5)


def test_budget_too_small_ends_cleanly(tiny_model):
    x, y = tiny_input(tiny_model)
    for name in ("hsja", "rays"):
        trace = run_attack(tiny_model, x, y, name, OracleConfig(budget=3, **FP32), 0)
        assert trace.finished and trace.queries <= 3


def test_run_attack_reports_progress_and_cancels(tiny_model):
    x, y = tiny_input(tiny_model)

    class Recorder:
        def __init__(self, stop_after: int) -> None:
            self.reports: list[tuple[float, float | None, object]] = []
            self.stop_after = stop_after

        def report(self, done, total=None, message="", partial=None):
            self.reports.append((done, total, partial))

        def check_cancel(self):
            if len(self.reports) > self.stop_after:
                raise Cancelled()

    rec = Recorder(stop_after=10 ** 6)
    trace = run_attack(tiny_model, x, y, "hsja", OracleConfig(budget=400, **FP32), 0, progress=rec)
    partials = [p for _, _, p in rec.reports if p is not None]
    assert len(partials) == len(trace.points)
    assert all(total == 400 for _, total, _ in rec.reports)
    assert isinstance(partials[-1], AttackTrace) and not partials[-1].finished
    assert partials[-1].points == trace.points and trace.finished
    assert trace.label == y and trace.adv_label_f != y and trace.success
    stopper = Recorder(stop_after=3)
    with pytest.raises(Cancelled):
        run_attack(tiny_model, x, y, "rays", OracleConfig(budget=400, **FP32), 0, progress=stopper)
    assert len(stopper.reports) == 4  # the "starting" report, then one per state until cancel


def test_trace_is_picklable(tiny_model):
    import pickle

    x, y = tiny_input(tiny_model)
    trace = run_attack(tiny_model, x, y, "rays", OracleConfig(budget=60, **FP32), 0)
    again = pickle.loads(pickle.dumps(trace))
    assert again.points == trace.points and torch.equal(again.x_adv, trace.x_adv)
    summary = trace.as_dict()
    for key in ("queries", "forward_passes", "l2", "linf", "success", "label", "adv_label"):
        assert key in summary


def test_unknown_attack_and_bad_params():
    with pytest.raises(ConfigError):
        make_attack("boundary")
    with pytest.raises(ConfigError):
        make_attack("hsja", {"no_such_param": 1})
    with pytest.raises(ConfigError):
        make_attack("hsja", {"init_num_evals": 0})


def test_hsja_threshold_is_the_papers_below_the_float32_floor():
    from rsviz.attacks.hsja import HopSkipJump, binary_search_steps

    hsja = make_attack("hsja")
    assert hsja.threshold(192) == pytest.approx(192 ** -1.5)          # small d: the paper's θ
    assert hsja.threshold(3 * 32 * 32) == pytest.approx(3072 ** -1.5)
    assert hsja.threshold(150_528) == 1.7e-6                         # 224²: the float32 floor
    assert binary_search_steps(hsja.threshold(150_528)) == 20
    paper = HopSkipJump(min_theta=0.0)
    assert paper.threshold(150_528) == pytest.approx(150_528 ** -1.5)
    assert binary_search_steps(paper.threshold(150_528)) == 26
    with pytest.raises(ConfigError):
        HopSkipJump(min_theta=-1.0)


def test_hsja_approaches_the_analytic_distance_on_a_linear_classifier():
    """Linear f at L2 distance 0.2 from x_o (d = 192): HSJA ends within 10 % of it."""
    model = linear(8)
    x = torch.full((3, 8, 8), 0.5)
    true = float(model.net.distance_to_boundary(x[None]))
    trace = run_attack(model, x, 0, "hsja", OracleConfig(budget=2000, **FP32), 0)
    assert true == pytest.approx(0.2, abs=1e-5)
    assert true <= trace.l2 < 1.10 * true
    assert trace.points[0][2] > 3 * true  # it started far (uniform noise) and converged


def test_rays_approaches_the_linf_optimum_on_a_linear_classifier():
    """Linear f: the smallest L∞ perturbation is margin/‖w‖₁ along sign(w); RayS's sign search
    finds it within 10 % (d = 192)."""
    model = linear(8)
    x = torch.full((3, 8, 8), 0.5)
    w = model.net.w
    optimum = abs(float(model.net.score(x[None]))) / float(w.abs().sum())
    trace = run_attack(model, x, 0, "rays", OracleConfig(budget=2000, **FP32), 0)
    assert optimum <= trace.linf + 1e-6 and trace.linf < 1.10 * optimum


def test_hsja_targeted(tiny_model):
    x, y = tiny_input(tiny_model)
    noise = torch.rand((200, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        labels = tiny_model(noise).argmax(1)
    target = int(torch.mode(labels[labels != y]).values)
    cfg = OracleConfig(budget=400, target=target, **FP32)
    trace = run_attack(tiny_model, x, y, "hsja", cfg, 0)
    assert trace.success and trace.adv_label_f == target
    assert math.isfinite(trace.l2)


def test_live_attack_page_runs_an_attack(app_env):
    """AppTest: the page runs, a tiny-budget attack finishes, its result and overlay show."""

    from tests.conftest import make_app, run_until

    at = make_app("pages/5_Live_attack.py")
    assert not at.exception, at.exception
    at.number_input(key="attack_budget_w").set_value(40).run()
    at.radio(key="attack_target_w").set_value("f").run()
    at.button(key="start_live_attack").click().run()
    run_until(at, lambda at: any(m.label == "Queries" for m in at.metric), timeout=20, every=0.2)
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert "Queries" in metrics and int(metrics["Queries"].replace(",", "")) <= 40
    assert metrics["Success"] == "yes"
    assert any("Votes of g" in s.value for s in at.subheader)
    # a second run (another seed) overlays the first one, reloaded from the disk cache
    at.number_input(key="attack_seed_w").set_value(1).run()
    assert not at.exception, at.exception
    overlay = at.multiselect(key="attack_overlay")
    assert len(overlay.options) == 1 and len(overlay.value) == 1


def test_cli_attack_json_and_outputs(tmp_path, capsys):
    import json

    from rsviz.cli import main

    out = tmp_path / "run"
    code = main(["attack", "sample:coffee", "--model", "tiny_cnn", "--attack", "rays",
                 "--sigma", "0.1", "--n", "5", "--criterion", "shortcut", "--pa", "0.6",
                 "--budget", "60", "--seed", "3", "--precision", "fp32", "--out", str(out),
                 "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    for key in ("queries", "forward_passes", "l2", "linf", "success", "label", "adv_label"):
        assert key in result
    assert result["queries"] <= 60 and result["forward_passes"] <= 5 * result["queries"]
    assert (out / "trace.csv").read_text().startswith("queries,forward_passes,l2,linf,phase")
    assert json.loads((out / "trace.json").read_text())["trace"]
    if result["success"]:
        assert (out / "x_adv.png").exists() and (out / "perturbation.png").exists()
    assert "attack rays" in captured.err  # progress on stderr
    assert main(["attack", "sample:coffee", "--model", "tiny_cnn", "--n", "0", "--sigma",
                 "0.1"]) == 1
    assert "n must be" in capsys.readouterr().err


def test_bisect_keeps_the_accepted_end_within_tolerance():
    from rsviz.attacks.bisection import bisect

    calls = []

    def accepts(t: float) -> bool:
        calls.append(t)
        return t >= 0.3

    good = bisect(accepts, 0.0, 1.0, tol=1e-3)
    assert 0.3 <= good <= 0.3 + 1e-3 and len(calls) == 10        # ⌈log2(1/10⁻³)⌉ queries
    calls.clear()
    assert bisect(accepts, 0.0, 1.0, tol=0.0, max_steps=4) == 0.3125 and len(calls) == 4
    # the accepted end may be the smaller one (an angle whose larger values are rejected)
    calls.clear()
    good = bisect(lambda t: calls.append(t) or t <= 40.0, 60.0, 30.0, tol=0.01,
                  scale=lambda t: math.cos(math.radians(t)))
    gap = math.cos(math.radians(good)) - math.cos(math.radians(40.0))
    assert 30.0 <= good <= 40.0 and gap < 0.01
    assert bisect(lambda t: False, 0.0, 1.0, tol=0.1) == 1.0        # nothing accepted: good stays


def test_rays_first_ray_is_the_flip_of_all_plus_ones():
    """Like the authors' code, the search starts at the level-0 flip of s_0 = +1, i.e. all −1:
    the first query is clip(x_o − 1), the black image, never the white one."""

    class Recording(Oracle):
        def is_adversarial(self, xs):
            self.points = getattr(self, "points", []) + [xs.clone()]
            return super().is_adversarial(xs)

    model = linear(8)
    x = torch.full((3, 8, 8), 0.5)
    y = int(model(x[None]).argmax(1))
    oracle = Recording(model, x, y, OracleConfig(budget=30, **FP32), distance="linf")
    list(run_steps(make_attack("rays"), oracle, x, make_generator(0)))
    assert torch.equal(oracle.points[0], torch.zeros_like(x))


def test_distortion_axes_never_zoom_into_noise():
    """A run that stalls at one distortion is drawn flat: linear from 0, log over a decade."""
    from rsviz.attacks import AttackTrace
    from rsviz.attacks.oracle import OracleConfig
    from rsviz.figures.attacks import distortion_figure, y_range

    stalled = AttackTrace(attack="hsja", config=OracleConfig(sigma=0.05, n=10, budget=900),
                          params={}, seed=0,
                          points=[(140, 1400, 62.4388, 1.0, "step"),
                                  (963, 9630, 62.4381, 1.0, "step")])
    linear = distortion_figure([stalled]).layout.yaxis.range
    assert linear[0] == 0.0 and linear[1] > 62.4388
    log = distortion_figure([stalled], log_y=True).layout.yaxis.range
    assert log[1] - log[0] >= 1.0  # at least a decade
    assert y_range([0.0], log=True) is None and y_range([], log=False) is None
