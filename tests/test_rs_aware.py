"""RS-aware attacks on the analytic linear f, where ∂g_σ and P_a are exact.

For the half-space f (two classes), π0(x) = Φ(−s/σ) with s the signed distance to ∂f, so ∂g_σ
is ∂f itself and one query of g_{σ,n} (single draw) is adversarial with probability
q(s) = P[Bin(n, 1 − π0) > n/2] + ½ P[= n/2] (`theory.prob_wrong_binomial`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rsviz import theory
from rsviz.attacks import REGISTRY, VARIANTS, empirical_p_a, make_attack, run_attack
from rsviz.attacks import hsja
from rsviz.attacks.base import MAX_IDLE_STATES, make_state, run_steps
from rsviz.attacks.oracle import Oracle, OracleConfig
from rsviz.attacks.rs_aware import NoiseAwareOracle, SequentialTest, level_check_needed
from rsviz.attacks.rs_aware.attacks import NoiseAware
from rsviz.errors import BudgetExhausted, ConfigError
from rsviz.models import Classifier, REGISTRY as MODELS, make_linear_toy, spec_info

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 8  # d = 192
SIGMA, N = 0.1, 10
# ℓ and the final push of the views built here (the RS-aware attacks' defaults' values)
CHECKS = {"check_repeats": 10, "push_steps": 4}


def linear(size: int = SIZE) -> Classifier:
    """Half-space at L2 distance 0.2 from the grey image (class 0 at grey)."""
    info = dataclasses.replace(spec_info(MODELS["linear_toy"]), input_size=size, resize=size)
    return Classifier(make_linear_toy(size=size), info, normalize=False)


def grey(size: int = SIZE) -> torch.Tensor:
    return torch.full((3, size, size), 0.5)


def signed_distance(model: Classifier, x: torch.Tensor) -> float:
    """Signed distance to ∂f = ∂g_σ (positive on the adversarial side)."""
    return float(model.net.score(x[None])) / float(model.net.w.norm())


def exact_q(model: Classifier, x: torch.Tensor, sigma: float = SIGMA, n: int = N) -> float:
    """Exact probability that one single-draw query of g_{σ,n} calls x adversarial."""
    pi0 = float(model.net.exact_p(x[None], sigma)[0, 0])
    return float(theory.prob_wrong_binomial(pi0, n))


def oblique_target(model: Classifier, x_o: torch.Tensor, past: float = 1.0) -> torch.Tensor:
    """A point `past` beyond ∂f, reached from x_o at 45° to the normal."""
    w = (model.net.w / model.net.w.norm()).view_as(x_o)
    tangent = torch.randn(x_o.shape, generator=torch.Generator().manual_seed(1))
    tangent -= (tangent * w).sum() * w
    tangent /= tangent.norm()
    step = past - signed_distance(model, x_o)
    return x_o + step * w + step * tangent


# ------------------------------------------------------------------------ the sequential test


def test_sequential_test_law_matches_simulation():
    """The exact acceptance probability and expected cost agree with 4 000 simulated tests."""
    test = SequentialTest()
    rng = np.random.default_rng(0)
    up, down = test.steps
    for q in (0.1, 0.4, 0.5, 0.7, 0.95):
        accepted, answers = 0, 0
        for _ in range(4000):
            llr, k = 0.0, 0
            while not test.decided(np.array([llr]), np.array([k]))[0]:
                llr += up if rng.random() < q else down
                k += 1
            accepted += llr > 1e-12
            answers += k
        p = test.accept_probability(q)
        assert abs(accepted / 4000 - p) < 4 * np.sqrt(p * (1 - p) / 4000) + 1e-9, q
        assert abs(answers / 4000 - test.expected_repeats(q)) < 0.1, q


def test_sequential_test_is_reliable_away_from_its_level_and_cheap_far_from_it():
    test = SequentialTest()  # level ½, hypotheses 0.2 / 0.8, α = 0.1, at most 7 answers
    assert test.accept_probability(0.8) >= 0.9 and test.accept_probability(0.2) <= 0.1
    assert test.accept_probability(0.5) == pytest.approx(0.5)  # symmetric at its level
    assert test.expected_repeats(1.0) == pytest.approx(2.0)  # two agreeing answers settle it
    assert test.expected_repeats(0.0) == pytest.approx(2.0)
    assert test.expected_repeats(0.5) <= test.max_repeats
    qs = np.linspace(0, 1, 21)
    assert np.all(np.diff([test.accept_probability(q) for q in qs]) >= -1e-12)  # monotone
    with pytest.raises(ConfigError):
        SequentialTest(level=1.0)
    with pytest.raises(ConfigError):
        SequentialTest(max_repeats=0)


def test_level_check_count():
    assert level_check_needed(10, 0.5) == 6  # strictly more than ℓ·P_a
    assert level_check_needed(10, 0.8) == 9
    assert level_check_needed(7, 0.5) == 4
    assert level_check_needed(10, 0.99) == 10


# ----------------------------------------------------------------- bisection against g_{σ,n}


def bisections(tested: bool, runs: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Signed distance to ∂g_σ of the closest accepted point after each of `runs` bisections
    on the same segment (one oracle), and the exact q of every bisection's own output."""
    model, x_o = linear(), grey()
    x_adv = oblique_target(model, x_o)
    oracle = Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=100_000, seed=5))
    view = NoiseAwareOracle(oracle, **CHECKS) if tested else oracle
    closest, q_out = [], []
    for _ in range(runs):
        x = hsja.binary_search(view, x_o, x_adv, theta)
        q_out.append(exact_q(model, x))
        closest.append(signed_distance(model, view.best_x))
    return np.array(closest), np.array(q_out)


def test_plain_bisection_keeps_a_lucky_point_inside_the_class():
    """Single answers: each bisection ends on either side of ∂g_σ (its output's q is a coin
    flip), and the closest point accepted over 20 of them — what a plain attack reports —
    lies clearly on x_o's side of ∂g_σ, where g mostly answers 'not adversarial'."""
    closest, q_out = bisections(tested=False, runs=20, theta=1.7e-6)
    assert 0.25 < np.mean(q_out > 0.5) < 0.75
    assert closest[-1] < -0.3 * SIGMA
    assert exact_q(linear(), grey()) < 0.01  # sanity: x_o itself is not adversarial


def test_tested_bisection_lands_near_the_boundary_on_its_adversarial_side():
    """Sequential tests with the RS-aware stopping width ½σ (along the segment): every output
    lies within 0.75σ of ∂g_σ, the outputs' q is above ½ on average, the closest accepted
    point over 20 bisections stays within 0.3σ of ∂g_σ — and the level-P_a check of the
    NoiseAwareOracle rejects the plain attack's lucky point."""
    model, x_o = linear(), grey()
    length = float((oblique_target(model, x_o) - x_o).norm())
    closest, q_out = bisections(tested=True, runs=20, theta=0.5 * SIGMA / length)
    assert q_out.mean() > 0.5
    assert closest[-1] > -0.3 * SIGMA
    # every output within 0.75σ of ∂g_σ (in signed distance; exact q ∈ (q(−0.75σ), q(0.75σ)))
    w = (model.net.w / model.net.w.norm()).view_as(x_o)
    on_boundary = x_o + (0 - signed_distance(model, x_o)) * w
    bounds = [exact_q(model, on_boundary + s * SIGMA * w) for s in (-0.75, 0.75)]
    assert np.all((q_out > bounds[0]) & (q_out < bounds[1]))


def test_level_check_rejects_points_inside_and_passes_points_outside():
    model, x_o = linear(), grey()
    w = (model.net.w / model.net.w.norm()).view_as(x_o)
    on_boundary = x_o + (0 - signed_distance(model, x_o)) * w
    oracle = Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=10_000, seed=2))
    view = NoiseAwareOracle(oracle, **CHECKS)
    inside = [view.level_check(on_boundary - SIGMA * w) for _ in range(30)]
    outside = [view.level_check(on_boundary + SIGMA * w) for _ in range(30)]
    assert sum(inside) <= 3 and sum(outside) >= 27  # q = 0.03 and 0.97: ≥ 6 of 10 needed
    assert oracle.queries == 600


def test_final_push_reports_a_fresh_passing_point_on_the_ray():
    """A confirmed point just inside the level set (q ≈ 0.3: the lucky survivor of many noisy
    checks) is re-checked with fresh queries, then moved σ, 2σ, 4σ outward along its ray until
    a check passes; every check is ℓ queries of the reserve. Against f nothing happens."""
    model, x_o = linear(), grey()
    lucky = oblique_target(model, x_o, past=-0.2 * SIGMA)  # 45° to the normal, just inside
    assert exact_q(model, lucky) < 0.35
    passed = []
    for seed in range(20):
        oracle = Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=1000, seed=seed))
        view = NoiseAwareOracle(oracle, **CHECKS)
        assert view.push_steps == 4 and view.reserve == 50 and view.budget == 950
        view.confirmed_x, view.confirmed_distance = lucky, float((lucky - x_o).norm())
        assert view.secure() and 0 <= view.pushed < 4
        assert oracle.queries == 10 * (view.pushed + 1)
        moved = view.confirmed_x - x_o
        assert torch.allclose(moved / moved.norm(), (lucky - x_o) / (lucky - x_o).norm(),
                              atol=1e-5)  # on the same ray
        extra = float(moved.norm() - (lucky - x_o).norm())
        assert extra == pytest.approx(0 if view.pushed == 0 else SIGMA * 2 ** (view.pushed - 1),
                                      abs=1e-5)
        passed.append(exact_q(model, view.confirmed_x))
    # the reported points are adversarial most of the time, the lucky one was not (measured:
    # median q 0.89; 3 seeds of 20 kept it after a lucky re-check, 17 pushed it 1σ)
    assert np.median(passed) > 0.6 > exact_q(model, lucky) + 0.25
    on_f = NoiseAwareOracle(Oracle(model, x_o, 0, OracleConfig(budget=1000)), **CHECKS)
    on_f.confirmed_x = lucky
    assert on_f.reserve == 0 and not on_f.secure() and on_f.queries == 0
    small = NoiseAwareOracle(Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=300)),
                             **CHECKS)
    assert small.push_steps == 0 and small.reserve == 10  # ≤ 5 % of the budget kept back


class StuckAfterOneQuery:
    """An attack that finds one adversarial point, then yields states without querying."""

    name = "stuck"

    def __init__(self, target: torch.Tensor) -> None:
        self.target = target

    def steps(self, oracle, x_o, generator):
        oracle.is_adversarial(self.target)
        iteration = 0
        while True:
            iteration += 1
            yield make_state(oracle, iteration, self.target, "stuck")


def test_a_stalled_rs_aware_attack_still_runs_its_final_check_and_push():
    """run_steps stops an attack after MAX_IDLE_STATES states without a query; the RS-aware
    wrapper is told (Stalled) and still ends with its reserved final check and push."""
    model, x_o = linear(), grey()
    target = oblique_target(model, x_o, past=2.0)  # far outside: every check passes
    oracle = Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=1000, seed=0))
    attack = NoiseAware(StuckAfterOneQuery(target), "stuck")
    states = list(run_steps(attack, oracle, x_o, torch.Generator().manual_seed(0)))
    assert len(states) == 1 + MAX_IDLE_STATES + 1  # the first, the idle ones, the final state
    final = states[-1]
    assert final.phase.startswith("end: level-P_a check") and "fresh re-check passed" in final.phase
    assert final.queries > states[-2].queries  # the push's fresh check used the reserve
    assert final.x_adv is not None and final.queries <= 1000

    plain = Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=1000, seed=0))
    states = list(run_steps(StuckAfterOneQuery(target), plain, x_o,
                            torch.Generator().manual_seed(0)))
    assert len(states) == MAX_IDLE_STATES + 1 and states[-1].phase == "stuck"  # just stops


# ------------------------------------------------------------------------ budgets and counts


class CountingOracle(Oracle):
    """An oracle that also counts the rows it was asked about, independently."""

    rows = 0

    def is_adversarial(self, xs):
        out = super().is_adversarial(xs)
        self.rows += 1 if xs.dim() == 3 else len(xs)
        return out


@pytest.mark.parametrize("name", list(REGISTRY))
@pytest.mark.parametrize("budget", [60, 257])
def test_budget_is_strict_with_repetitions(name, budget):
    """Every repetition is a query: the oracle's count equals the rows it was asked about,
    never exceeds the budget, and the RS-aware run uses (almost) all of it."""
    model, x_o = linear(), grey()
    oracle = CountingOracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=budget, seed=0),
                            distance=REGISTRY[name].distance)
    attack = make_attack(name, variant="rs-aware")
    states = list(attack.steps(oracle, x_o, torch.Generator().manual_seed(0)))
    assert states and oracle.queries == oracle.rows <= budget
    assert states[-1].queries == oracle.queries
    assert oracle.queries >= budget - 40  # what a step or a search could not start with
    assert oracle.forward_passes <= N * oracle.queries
    best = states[-1].x_adv
    l2s = [s.l2 for s in states]
    assert all(b <= a + 1e-6 for a, b in zip(l2s, l2s[1:])) or name == "rays"  # RayS: L∞
    if best is not None:
        assert signed_distance(model, best) > -0.5 * SIGMA  # a checked point, not a lucky one


def test_noise_aware_view_refuses_the_reserve():
    model, x_o = linear(), grey()
    oracle = Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, n=N, budget=30, seed=0))
    view = NoiseAwareOracle(oracle, **CHECKS)
    assert view.budget == 20 and view.remaining == 20
    with pytest.raises(BudgetExhausted):
        view.probe(torch.stack([x_o] * 21))
    assert oracle.queries == 0
    view.probe(torch.stack([x_o] * 20))
    with pytest.raises(BudgetExhausted):
        view.level_check(x_o)
    assert view.level_check(x_o, use_reserve=True) is False and oracle.queries == 30
    with pytest.raises(ConfigError):
        NoiseAwareOracle(Oracle(model, x_o, 0, OracleConfig(sigma=SIGMA, budget=10)), **CHECKS)


# ------------------------------------------------------------------ attacks: f and g_{σ,n}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_rs_aware_on_f_makes_the_plain_attacks_queries(name, tiny_model):
    """Against f nothing is random: the RS-aware variant is the plain attack, query for
    query, so it is no worse at any budget (the distortion curves are equal)."""
    from rsviz.images import preprocess, synthetic_image
    x = preprocess(synthetic_image(32, 0), 32, 32)
    with torch.inference_mode():
        y = int(tiny_model(x[None]).argmax(1))
    config = OracleConfig(budget=300, precision="fp32")
    plain = run_attack(tiny_model, x, y, name, config, 0)
    aware = run_attack(tiny_model, x, y, name, config, 0, variant="rs-aware")
    assert [p[:4] for p in aware.points[:len(plain.points)]] == [p[:4] for p in plain.points]
    assert aware.l2 == plain.l2 and aware.queries == plain.queries
    assert aware.p_a_empirical == plain.p_a_empirical == 1.0


def test_rs_aware_hsja_beats_plain_hsja_on_the_smoothed_linear_model():
    """g_{0.1,10} on the linear f (d = 192, ∂g_σ at 0.2 from x_o), 1 000 queries, 3 seeds:
    plain HSJA's probes are too narrow to see the boundary and its point is a lucky draw;
    the RS-aware point is within 0.15 of the exact distance (measured 0.25–0.30 over 6 seeds,
    plain 0.79–2.34) and adversarial on most fresh queries (measured 0.54–0.76, plain ≤ 0.38)."""
    model, x_o = linear(), grey()
    for seed in range(3):
        config = OracleConfig(sigma=SIGMA, n=N, budget=1000, seed=seed)
        plain = run_attack(model, x_o, 0, "hsja", config, seed)
        aware = run_attack(model, x_o, 0, "hsja", config, seed, variant="rs-aware")
        assert aware.l2 < 0.2 + 2 * SIGMA and plain.l2 > 2 * aware.l2
        assert aware.p_a_empirical >= 0.5 > plain.p_a_empirical
        # the final push ran on the reserve (4 checks allowed at 1 000 queries) and one passed
        assert any(s in aware.points[-1][4] for s in ("fresh re-check passed", "σ outward"))
        assert aware.queries <= 1000 and aware.p_a_queries == 100


def test_empirical_p_a_matches_the_exact_law():
    """100-query measurement (outside the budget) within binomial error of the exact q, at
    three points; on f it is 0 or 1 from one forward pass."""
    model, x_o = linear(), grey()
    w = (model.net.w / model.net.w.norm()).view_as(x_o)
    on_boundary = x_o + (0 - signed_distance(model, x_o)) * w
    config = OracleConfig(sigma=SIGMA, n=N, budget=5, seed=4)
    for s in (-0.05, 0.0, 0.08):
        x = on_boundary + s * w
        q = exact_q(model, x)
        share, queries, passes = empirical_p_a(model, x, 0, config, queries=400)
        assert queries == 400 and passes <= 400 * N
        assert abs(share - q) < 4 * np.sqrt(q * (1 - q) / 400) + 1e-9, (s, share, q)
    share, queries, passes = empirical_p_a(model, on_boundary + 0.1 * w, 0,
                                           OracleConfig(budget=5), queries=100)
    assert (share, queries, passes) == (1.0, 100, 1)


def test_variant_selection_and_errors():
    assert set(VARIANTS) == {"plain", "rs-aware"}
    for name, spec in REGISTRY.items():
        assert make_attack(name, variant="rs-aware").name == name
        assert "check_repeats" in spec.defaults_for("rs-aware")
        assert "check_repeats" not in spec.defaults_for("plain")
    with pytest.raises(ConfigError, match="variant"):
        make_attack("hsja", variant="clever")
    with pytest.raises(ConfigError):
        make_attack("hsja", {"probe_scale": -1.0}, variant="rs-aware")
    with pytest.raises(ConfigError):
        make_attack("hsja", {"check_repeats": 0}, variant="rs-aware")
    with pytest.raises(ConfigError):  # an RS-aware parameter is not a plain one
        make_attack("hsja", {"probe_scale": 1.0})


# ------------------------------------------------------------------------------- the figure


def test_distances_figure_and_bundle(tmp_path):
    from rsviz.figures.export import load_bundle, save_bundle
    from rsviz.figures.rs_aware import distances_figure, distances_rows

    geometry = {"a.JPEG": {"radius": 0.1, "boundary": 3.0}, "b.JPEG": {"radius": 0.0,
                                                                       "boundary": None}}
    runs = {("a.JPEG", "plain"): {"l2": 60.0, "p_a_empirical": 0.2},
            ("a.JPEG", "rs-aware"): {"l2": 20.0, "p_a_empirical": 0.7},
            ("b.JPEG", "plain"): {"l2": float("inf"), "p_a_empirical": None},
            ("b.JPEG", "rs-aware"): {"l2": 30.0, "p_a_empirical": 0.6}}
    rows = distances_rows(["a.JPEG", "b.JPEG"], geometry, runs)
    assert rows[0] == {"image": "a.JPEG", "radius": 0.1, "boundary": 3.0, "plain": 60.0,
                       "rs_aware": 20.0, "p_a_plain": 0.2, "p_a_rs_aware": 0.7}
    fig = distances_figure(rows, title="t")
    assert fig.layout.xaxis.type == "log"
    markers = {t.name: list(t.x) for t in fig.data if t.name}
    # abstained radius (0), unknown boundary and an infinite distortion are left out
    assert markers == {"certified radius R(x_o)": [0.1], "∂g_σ along the attack direction": [3.0],
                       "plain attack": [60.0], "RS-aware attack": [20.0, 30.0]}
    path = save_bundle(fig, rows, {"sigma": 0.05}, tmp_path / "fig.json")
    back = load_bundle(path)
    assert back.data[0] == rows[0] and back.params["sigma"] == 0.05
    assert back.data[1]["rs_aware"] == 30.0  # (JSON writes the infinite distortion as text)


# ------------------------------------------------------------------------- study plans


def test_study_plan_variant_reaches_the_attack(tiny_model):
    from types import SimpleNamespace

    from rsviz.images import preprocess, synthetic_image
    from rsviz.study.plan import StudyPlan
    from rsviz.study.tasks import ImageRef, build_tasks, execute_task

    x = preprocess(synthetic_image(32, 0), 32, 32)
    with torch.inference_mode():
        y = int(tiny_model(x[None]).argmax(1))
    refs = [ImageRef(0, "synthetic", "synthetic", y, "h0", "tiny_cnn")]
    base = dict(models=["tiny_cnn"], sigmas=[0.25], ns=[5], criteria=["single_draw"],
                certify=None, include_undefended=True)
    plain = build_tasks(StudyPlan.from_dict(base), refs, "tiny_cnn")
    aware = build_tasks(StudyPlan.from_dict({**base, "variant": "rs-aware"}), refs, "tiny_cnn")
    assert [t.variant for t in plain] == ["plain", "plain"]
    assert [t.variant for t in aware] == ["rs-aware", "rs-aware"]
    assert not {t.task_id for t in plain} & {t.task_id for t in aware}
    with pytest.raises(ConfigError, match="variant"):
        StudyPlan.from_dict({**base, "variant": "smart"})
    seen = {}

    def attack_fn(*args, **kwargs):
        seen.update(kwargs)
        return SimpleNamespace(success=False, l2=float("inf"), linf=float("inf"), queries=3,
                               forward_passes=3, x_adv=None, p_a_empirical=None)

    row = execute_task(aware[0], tiny_model, x, attack_fn=attack_fn)  # f: always starts right
    assert seen["variant"] == "rs-aware" and row["variant"] == "rs-aware"
