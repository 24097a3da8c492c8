"""The attack oracle: exact query and forward-pass counts, strict budget, criteria, best point."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy import stats

from rsviz import theory
from rsviz.attacks.oracle import CRITERIA, Oracle, OracleConfig
from rsviz.errors import BudgetExhausted, ConfigError
from rsviz.models import Classifier, REGISTRY, make_linear_toy, spec_info


pytestmark = pytest.mark.usefixtures("one_thread")


def linear(size: int = 8) -> Classifier:
    """Half-space at L2 distance 0.2 from the grey image (class 0 at grey)."""
    info = dataclasses.replace(spec_info(REGISTRY["linear_toy"]), input_size=size, resize=size)
    return Classifier(make_linear_toy(size=size), info, normalize=False)


def along_normal(model: Classifier, x: torch.Tensor, signed_distance: float) -> torch.Tensor:
    """The point at signed distance `signed_distance` from the boundary (positive: class 1)."""
    w = model.net.w / model.net.w.norm()
    s = float(model.net.distance_to_boundary(x[None])) * (1 if float(model.net.score(x[None])) > 0 else -1)
    return x + (signed_distance - s) * w.view_as(x)


GREY = torch.full((3, 8, 8), 0.5)


def test_config_validation():
    with pytest.raises(ConfigError):
        OracleConfig(sigma=0.0)
    with pytest.raises(ConfigError):
        OracleConfig(n=0)
    with pytest.raises(ConfigError):
        OracleConfig(budget=0)
    with pytest.raises(ConfigError):
        OracleConfig(criterion="majority")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        OracleConfig(p_a=1.0)
    with pytest.raises(ConfigError):
        OracleConfig(target=-1)
    assert set(CRITERIA) == {"single_draw", "shortcut", "exact"}


def test_target_checks():
    model = linear()
    with pytest.raises(ConfigError, match="original label"):
        Oracle(model, GREY, 0, OracleConfig(target=0))
    with pytest.raises(ConfigError, match="does not exist"):
        Oracle(model, GREY, 0, OracleConfig(target=5))


@pytest.mark.parametrize("n,p_a", [(10, 0.5), (10, 0.8), (11, 0.5), (50, 0.8), (1, 0.5)])
def test_wrong_votes_needed(n, p_a):
    shortcut = OracleConfig(sigma=0.1, n=n, criterion="shortcut", p_a=p_a)
    assert shortcut.wrong_votes_needed() == max(1, int(np.ceil(n * p_a - 1e-12)))
    exact = OracleConfig(sigma=0.1, n=n, criterion="exact", p_a=p_a)
    pi0_max = theory.threshold_exact(n, p_a)
    needed = exact.wrong_votes_needed()
    # smallest count of wrong votes whose vote estimate π̂0 = (n − wrong)/n is ≤ π0*
    assert (n - needed) / n <= pi0_max + 1e-12
    assert needed == 1 or (n - needed + 1) / n > pi0_max


def test_counts_and_budget_on_f():
    model = linear()
    oracle = Oracle(model, GREY, 0, OracleConfig(budget=10, precision="fp32"))
    far = along_normal(model, GREY, 1.0)
    out = oracle.is_adversarial(torch.stack([GREY, far, GREY]))
    assert out.tolist() == [False, True, False]
    assert bool(oracle.is_adversarial(far)) is True  # one [3,H,W] point is one query
    assert (oracle.queries, oracle.forward_passes, oracle.remaining) == (4, 4, 6)
    with pytest.raises(BudgetExhausted):
        oracle.is_adversarial(torch.stack([GREY] * 7))
    assert (oracle.queries, oracle.forward_passes) == (4, 4)  # refused without querying
    oracle.is_adversarial(torch.stack([GREY] * 6))
    assert oracle.remaining == 0
    with pytest.raises(BudgetExhausted):
        oracle.is_adversarial(GREY)
    assert oracle.is_adversarial(torch.zeros(0, 3, 8, 8)).numel() == 0


def test_best_point_is_closest_accepted():
    model = linear()
    oracle = Oracle(model, GREY, 0, OracleConfig(precision="fp32"))
    assert oracle.best_x is None and oracle.best_l2 == float("inf")
    points = torch.stack([along_normal(model, GREY, s) for s in (0.5, 0.1, -0.1, 0.3)])
    oracle.is_adversarial(points)
    assert torch.equal(oracle.best_x, points[1])
    assert oracle.best_l2 == pytest.approx(0.3, abs=1e-4)  # 0.2 to the boundary + 0.1
    oracle.is_adversarial(along_normal(model, GREY, 0.4))  # farther: best unchanged
    assert torch.equal(oracle.best_x, points[1])


def test_best_point_by_linf():
    """The L2-closest and the L∞-closest accepted points differ; `distance` picks which."""
    model = linear()
    w = model.net.w
    a = GREY + 1.1 * 0.2 / float(w.abs().sum()) * torch.sign(w).view_as(GREY)  # small L∞
    b = along_normal(model, GREY, 0.05)  # small L2 (0.25), larger L∞
    assert (a - GREY).abs().max() < (b - GREY).abs().max() and (a - GREY).norm() > (b - GREY).norm()
    for distance, best in (("l2", b), ("linf", a)):
        oracle = Oracle(model, GREY, 0, OracleConfig(precision="fp32"), distance=distance)
        assert oracle.is_adversarial(torch.stack([a, b])).all()
        assert torch.equal(oracle.best_x, best)
    with pytest.raises(ConfigError):
        Oracle(model, GREY, 0, OracleConfig(), distance="l1")  # type: ignore[arg-type]


@pytest.mark.parametrize("criterion", ["single_draw", "shortcut", "exact"])
def test_lazy_vote_passes_exact_far_from_boundary(criterion):
    """Far from the boundary every vote agrees: the lazy vote stops at the first decisive prefix."""
    model = linear()
    n, sigma = 10, 0.05
    cfg = OracleConfig(sigma=sigma, n=n, criterion=criterion, p_a=0.5, seed=3)
    inside = torch.stack([along_normal(model, GREY, -1.0)] * 4)
    outside = torch.stack([along_normal(model, GREY, 1.0)] * 3)
    oracle = Oracle(model, GREY, 0, cfg)
    assert not oracle.is_adversarial(inside).any()
    passes_in = oracle.forward_passes
    assert oracle.is_adversarial(outside).all()
    passes_out = oracle.forward_passes - passes_in
    assert oracle.queries == 7
    if criterion == "single_draw":  # plurality settled after ⌊n/2⌋ + 1 identical votes
        assert passes_in == 4 * 6 and passes_out == 3 * 6
    else:
        k = cfg.wrong_votes_needed()  # accept after k wrong; reject after n − k + 1 right
        assert passes_out == 3 * k and passes_in == 4 * (n - k + 1)


@pytest.mark.parametrize("criterion,n,p_a", [("single_draw", 10, 0.5), ("shortcut", 10, 0.8),
                                             ("exact", 11, 0.8), ("exact", 10, 0.5)])
def test_acceptance_rate_matches_binomial_law(criterion, n, p_a):
    """At a point with known π0 (linear f, exact), the oracle accepts with the exact probability
    of its criterion; the lazy vote never spends more than n passes per query."""
    model = linear()
    sigma, queries = 0.1, 600
    x = along_normal(model, GREY, -0.02)  # just inside: π0 = Φ(0.2)
    pi0 = float(model.net.exact_p(x[None], sigma)[0, 0])
    cfg = OracleConfig(sigma=sigma, n=n, criterion=criterion, p_a=p_a, budget=queries, seed=11)
    oracle = Oracle(model, GREY, 0, cfg)
    rate = float(oracle.is_adversarial(torch.stack([x] * queries)).float().mean())
    if criterion == "single_draw":
        expected = float(theory.prob_wrong_binomial(pi0, n))
    else:
        expected = float(stats.binom.sf(cfg.wrong_votes_needed() - 1, n, 1 - pi0))
    tol = 4 * np.sqrt(expected * (1 - expected) / queries)
    assert abs(rate - expected) < tol, (rate, expected)
    assert oracle.forward_passes <= n * queries
    assert oracle.forward_passes < 0.95 * n * queries  # the lazy vote saves passes


def test_targeted_criterion(tiny_model):
    x = torch.rand((3, 32, 32), generator=torch.Generator().manual_seed(0))
    points = torch.rand((64, 3, 32, 32), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        labels = tiny_model(points).argmax(1)
        y = int(tiny_model(x[None]).argmax(1))
    target = next(int(c) for c in labels if int(c) != y)
    oracle = Oracle(tiny_model, x, y, OracleConfig(target=target, precision="fp32"))
    assert oracle.is_adversarial(points).tolist() == (labels == target).tolist()
    untargeted = Oracle(tiny_model, x, y, OracleConfig(precision="fp32"))
    assert untargeted.is_adversarial(points).tolist() == (labels != y).tolist()


def test_same_seed_same_decisions():
    model = linear()
    x = torch.stack([along_normal(model, GREY, 0.0)] * 50)
    cfg = OracleConfig(sigma=0.1, n=5, seed=4)
    a = Oracle(model, GREY, 0, cfg).is_adversarial(x)
    b = Oracle(model, GREY, 0, cfg).is_adversarial(x)
    c = Oracle(model, GREY, 0, dataclasses.replace(cfg, seed=5)).is_adversarial(x)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_describe_names_the_criterion():
    assert OracleConfig().describe() == "undefended f"
    text = OracleConfig(sigma=0.25, n=10, criterion="shortcut", p_a=0.8).describe()
    assert "σ=0.25" in text and "n=10" in text and "P_a=0.8" in text and "≥ 8 of 10" in text


def test_auto_precision_is_fp32_against_f():
    """bf16 would round HSJA's tiny probes away: f is always queried in fp32 under "auto";
    against g, "auto" is the attached engine's arithmetic (here a bf16 one)."""
    from types import SimpleNamespace

    from rsviz.engines import attach
    model = linear()
    attach(model, SimpleNamespace(precision="bf16", batch_size=None), None)
    assert Oracle(model, GREY, 0, OracleConfig()).precision == "fp32"
    assert Oracle(model, GREY, 0, OracleConfig(sigma=0.1)).precision == "bf16"
    assert Oracle(model, GREY, 0, OracleConfig(precision="bf16")).precision == "bf16"
