"""Vote sampling, p̂ and intervals, draws of g_{σ,n}, lazy vote, PREDICT and CERTIFY.

References are exact: a linear classifier has p(x) = Φ((w·x + b)/(σ‖w‖)); a ball classifier
has p via the noncentral χ² law. Every random test uses fixed seeds and states its tolerance.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from rsviz.errors import Cancelled, ConfigError
from rsviz.models import Classifier, ModelInfo
from rsviz.smoothing import (BatchTuner, VoteRecord, certify, clopper_pearson, forward_labels,
                             lazy_threshold_votes, lazy_votes, lower_confidence_bound,
                             make_generator, precision_agreement, predict, prob_wrong_binomial,
                             radius_from_votes, sample_votes)

SHAPE = (3, 32, 32)


pytestmark = pytest.mark.usefixtures("one_thread")


def along_normal(model: Classifier, offsets: list[float]) -> torch.Tensor:
    """Points at signed L2 distances `offsets` from the linear boundary (class 1 side > 0)."""
    net = model.net
    w = net.w / net.w.norm()
    x0 = torch.full((w.numel(),), 0.5)
    x0 = x0 - (net.score(x0[None])[0] / net.w.norm()) * w  # on the boundary
    return torch.stack([x0 + t * w for t in offsets]).view(-1, *SHAPE)


def info(num_classes: int) -> ModelInfo:
    return ModelInfo(name=f"test{num_classes}", model_id=f"test{num_classes}", input_size=32,
                     resize=32, mean=(0.0,) * 3, std=(1.0,) * 3,
                     class_names=tuple(f"c{i}" for i in range(num_classes)), source="test")


class ThreeClassLinear(nn.Module):
    """argmax of three linear scores: a triple point at the mid-grey image."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(5)
        w = torch.randn(3, int(np.prod(SHAPE)), generator=g)
        self.register_buffer("w", w / w.norm(dim=1, keepdim=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1).float() - 0.5) @ self.w.T


# ---------------------------------------------------------------------------- determinism


def test_same_seed_same_votes_whatever_the_batch(tiny_model):
    x = torch.rand((2, *SHAPE), generator=torch.Generator().manual_seed(0))
    runs = [sample_votes(tiny_model, x, 0.25, 120, make_generator(7), batch_size=b).labels
            for b in (40, 48, None)]  # 48 is not a multiple of the noise chunk
    for labels in runs[1:]:
        np.testing.assert_array_equal(runs[0], labels)
    other = sample_votes(tiny_model, x, 0.25, 120, make_generator(8)).labels
    assert (other != runs[0]).any()


def test_bad_parameters_raise_config_error(linear_model):
    x = torch.full((1, *SHAPE), 0.5)
    with pytest.raises(ConfigError):
        sample_votes(linear_model, x, 0.0, 10, make_generator(0))
    with pytest.raises(ConfigError):
        sample_votes(linear_model, x, 0.25, 0, make_generator(0))
    with pytest.raises(ConfigError):
        lazy_votes(linear_model, x, -1.0, 10, make_generator(0))


def test_cancel_stops_sampling(linear_model):
    class CancelAfterFirst:
        def __init__(self) -> None:
            self.reports = 0

        def report(self, done, total=None, message="", partial=None) -> None:
            self.reports += 1

        def check_cancel(self) -> None:
            if self.reports:
                raise Cancelled()

    progress = CancelAfterFirst()
    with pytest.raises(Cancelled):
        sample_votes(linear_model, torch.full((1, *SHAPE), 0.5), 0.25, 1000, make_generator(0),
                     batch_size=10, progress=progress)
    assert progress.reports == 1


# ------------------------------------------------------------------------ exact references


def test_linear_p_hat_matches_exact_probability(linear_model):
    """|p̂ − p| ≤ 4 standard errors at each point, and p inside the 99.9% CP interval."""
    sigma, N = 0.25, 4000
    points = along_normal(linear_model, [-0.3, -0.05, 0.0, 0.1, 0.4])
    record = sample_votes(linear_model, points, sigma, N, make_generator(11))
    p1 = linear_model.net.exact_p(points, sigma)[:, 1]
    np.testing.assert_allclose(p1, stats.norm.cdf(np.array([-0.3, -0.05, 0.0, 0.1, 0.4]) / sigma),
                               atol=1e-5)
    p_hat = record.p_hat(1)
    assert np.all(np.abs(p_hat - p1) <= 4 * np.sqrt(p1 * (1 - p1) / N) + 1e-12)
    lo, hi = record.interval(1, 0.001)
    assert np.all((lo <= p1) & (p1 <= hi))
    assert record.counts.sum() == 5 * N and record.forward_passes == 5 * N


def test_ball_p_hat_matches_noncentral_chi2(ball_model):
    """Ball of radius 3 in d = 3072: σ ≈ r/√d puts p in (0, 1); reference via scipy.stats.ncx2."""
    sigma, N = 0.054, 3000
    direction = torch.randn(int(np.prod(SHAPE)), generator=torch.Generator().manual_seed(2))
    direction /= direction.norm()
    points = torch.stack([0.5 + t * direction for t in (0.0, 0.3, 0.5, 0.7)]).view(-1, *SHAPE)
    p0 = ball_model.net.exact_p(points, sigma)[:, 0]
    assert 0.02 < p0.min() and p0.max() < 0.98, p0
    record = sample_votes(ball_model, points, sigma, N, make_generator(3))
    assert np.all(np.abs(record.p_hat(0) - p0) <= 4 * np.sqrt(p0 * (1 - p0) / N))


def test_g_draws_match_the_binomial_law(linear_model):
    """Empirical P[g_{σ,n} ≠ 1] over N // n disjoint blocks vs the exact binomial, 4 s.e."""
    sigma, n, N = 0.25, 10, 30_000
    point = along_normal(linear_model, [0.03])
    record = sample_votes(linear_model, point, sigma, N, make_generator(4))
    exact = float(prob_wrong_binomial(linear_model.net.exact_p(point, sigma)[0, 1], n))
    draws = record.g_draws(n, np.random.default_rng(0))
    assert draws.shape == (1, N // n)
    empirical = float(record.prob_g_wrong(1, n, "empirical", np.random.default_rng(0))[0])
    assert abs(empirical - exact) <= 4 * np.sqrt(exact * (1 - exact) / (N // n))
    assert abs(float(record.prob_g_wrong(1, n)[0]) - exact) < 0.03
    with pytest.raises(ConfigError):
        record.g_draws(N + 1)


def test_vote_record_bookkeeping():
    labels = np.array([[0, 1, 1, 2, 1, 0], [2, 2, 2, 2, 2, 2]])
    record = VoteRecord(labels, num_classes=3, sigma=0.1)
    np.testing.assert_array_equal(record.counts, [[2, 3, 1], [0, 0, 6]])
    np.testing.assert_array_equal(record.top_class(), [1, 2])
    np.testing.assert_allclose(record.p_hat([1, 2]), [0.5, 1.0])
    classes, blocks = record.block_counts(3)
    np.testing.assert_array_equal(classes, [0, 1, 2])
    np.testing.assert_array_equal(blocks[0], [[1, 2, 0], [1, 1, 1]])
    # a 3-way tie is broken at random: every class wins sometimes, never by index order only
    wins = np.array([record.g_draws(3, np.random.default_rng(s))[0, 1] for s in range(300)])
    assert set(wins) == {0, 1, 2}


def test_clopper_pearson_matches_the_beta_quantiles():
    lo, hi = clopper_pearson(np.array([0, 7, 20]), 20, 0.05)
    assert lo[0] == 0.0 and hi[2] == 1.0
    assert lo[1] == pytest.approx(stats.beta.ppf(0.025, 7, 14))
    assert hi[1] == pytest.approx(stats.beta.ppf(0.975, 8, 13))
    assert lower_confidence_bound(990, 1000, 0.001) == pytest.approx(stats.beta.ppf(0.001, 990, 11))
    p_lower, radius = radius_from_votes(990, 1000, 0.001, 0.5)
    assert radius == pytest.approx(0.5 * stats.norm.ppf(p_lower))
    assert radius_from_votes(500, 1000, 0.001, 0.5)[1] == -1.0


# ------------------------------------------------------------------------ PREDICT / CERTIFY


def test_certify_never_overstates_the_exact_radius_beyond_alpha(linear_model):
    """Over T seeded runs, P[R̲ > R* or a wrong class certified] ≤ α (Cohen et al., Thm. 2).

    Tolerance: the count must not exceed the 99.9% quantile of Bin(T, α). A CERTIFY that used
    p̂ instead of the lower bound fails this (about half the runs overstate R*).
    """
    sigma, alpha, T = 0.25, 0.1, 200
    offset = 0.32  # p_A = Φ(1.28) ≈ 0.9, exact radius R* = 0.32 for the ideal g_σ
    x = along_normal(linear_model, [offset])[0]
    violations, certified = 0, 0
    for seed in range(T):
        result = certify(linear_model, x, sigma, n0=20, n=200, alpha=alpha,
                         generator=make_generator(seed))
        if result.predict == -1:
            continue
        certified += 1
        violations += int(result.predict != 1 or result.radius > offset)
    assert certified > T // 2
    assert violations <= stats.binom.ppf(0.999, T, alpha), (violations, T)


def test_certify_keeps_its_votes_and_counts(linear_model):
    x = along_normal(linear_model, [0.5])[0]
    result = certify(linear_model, x, 0.25, 50, 400, 0.001, make_generator(0))
    assert result.predict == 1 and result.forward_passes == 450
    assert result.votes is not None and result.votes.labels.shape == (1, 400)
    np.testing.assert_array_equal(result.votes.counts[0], result.counts)
    assert result.radius == pytest.approx(0.25 * stats.norm.ppf(result.p_lower))


def test_predict_abstains_at_a_boundary_point(linear_model):
    """p = ½ exactly: the two-sided test rejects with probability ≤ α per call."""
    x = along_normal(linear_model, [0.0])[0]
    assert abs(float(linear_model.net.exact_p(x[None], 0.25)[0, 1]) - 0.5) < 1e-5
    decisions = [predict(linear_model, x, 0.25, 1000, 0.001, make_generator(s))[0]
                 for s in range(10)]
    assert decisions == [-1] * 10
    far = along_normal(linear_model, [-0.5])[0]
    assert predict(linear_model, far, 0.25, 1000, 0.001, make_generator(0))[0] == 0


# --------------------------------------------------------------------------------- lazy vote


@pytest.mark.parametrize("case", ["linear", "three_class"])
def test_lazy_vote_has_the_distribution_of_the_full_vote(case, linear_model):
    """Chi-square test (contingency table) of T lazy decisions vs T full n-vote decisions
    near a boundary, with an even n so that random tie-breaks matter. Fails below p = 0.001."""
    n, T, sigma = 10, 600, 0.25
    if case == "linear":
        model, point = linear_model, along_normal(linear_model, [0.02])
    else:
        model = Classifier(ThreeClassLinear(), info(3), normalize=False)
        point = torch.full((1, *SHAPE), 0.5)
    lazy = lazy_votes(model, point.expand(T, *SHAPE), sigma, n, make_generator(1))
    full = sample_votes(model, point, sigma, n * T, make_generator(2)).g_draws(
        n, np.random.default_rng(3))[0]
    C = model.info.num_classes
    table = np.stack([np.bincount(lazy.labels, minlength=C), np.bincount(full, minlength=C)])
    table = table[:, table.sum(0) > 0]
    assert table.shape[1] >= 2  # near a boundary: more than one outcome
    assert stats.chi2_contingency(table).pvalue > 0.001, table
    if case == "linear":
        exact = 1 - float(prob_wrong_binomial(model.net.exact_p(point, sigma)[0, 1], n))
        share = float((lazy.labels == 1).mean())
        assert abs(share - exact) <= 4 * np.sqrt(exact * (1 - exact) / T)
    assert lazy.forward_passes < n * T


def test_lazy_threshold_vote_matches_the_binomial_law(linear_model):
    """P["at least k of n votes are class 0"] from lazy votes vs the exact binomial, 4 s.e.;
    each point stops once k hits are drawn or k became unreachable."""
    sigma, n, k, T = 0.25, 15, 6, 2000
    point = along_normal(linear_model, [0.02])
    q = float(linear_model.net.exact_p(point, sigma)[0, 0])  # a vote for class 0 is a hit
    exact = float(stats.binom.sf(k - 1, n, q))
    decision, drawn, passes = lazy_threshold_votes(
        linear_model, point.expand(T, *SHAPE), sigma, n, np.array([True, False]), k,
        make_generator(5))
    assert abs(float(decision.mean()) - exact) <= 4 * np.sqrt(exact * (1 - exact) / T)
    assert (drawn <= n).all() and int(drawn.sum()) == passes < n * T
    assert (drawn >= np.minimum(k, n - k + 1)).all()  # never decided before it could be


def test_lazy_vote_saves_passes_far_from_the_boundary(linear_model):
    points = along_normal(linear_model, [1.0] * 20)  # p ≈ 1: 51 votes decide n = 100
    result = lazy_votes(linear_model, points, 0.25, 100, make_generator(0))
    assert (result.labels == 1).all()
    assert result.forward_passes == 20 * 51
    assert (result.counts.sum(1) <= 100).all()


def test_lazy_votes_do_not_depend_on_the_forward_batch(tiny_model):
    """Same seed, forward batches 3, 8 and 64 (an engine's or a machine's choice): the same
    votes, decisions and passes, so runners and thread counts agree on every query of g."""
    points = torch.rand((5, *SHAPE), generator=torch.Generator().manual_seed(4))
    hits = np.arange(tiny_model.info.num_classes) != 0
    runs = [(lazy_votes(tiny_model, points, 0.5, 50, make_generator(9), batch_size=b),
             lazy_threshold_votes(tiny_model, points, 0.5, 50, hits, 20, make_generator(9),
                                  batch_size=b))
            for b in (3, 8, 64)]
    (plurality, threshold), others = runs[0], runs[1:]
    assert plurality.forward_passes > 5  # several rounds: a batch could have mattered
    for p, t in others:
        np.testing.assert_array_equal(p.counts, plurality.counts)
        np.testing.assert_array_equal(p.labels, plurality.labels)
        assert p.forward_passes == plurality.forward_passes
        for a, b in zip(t, threshold):
            np.testing.assert_array_equal(a, b)


# ----------------------------------------------------------------- precision and batching


def test_forward_labels_and_precision_agreement(tiny_model):
    x = torch.rand((12, *SHAPE), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = tiny_model(x).argmax(1).numpy()
    np.testing.assert_array_equal(forward_labels(tiny_model, x, batch_size=5, precision="fp32"),
                                  expected)
    fraction, reference, labels = precision_agreement(tiny_model, x, "fp32")
    assert fraction == 1.0 and (reference == labels).all()
    fraction, reference, labels = precision_agreement(tiny_model, x, "bf16")
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = tiny_model(x.contiguous(memory_format=torch.channels_last)).float().argmax(1)
    np.testing.assert_array_equal(reference, expected)
    np.testing.assert_array_equal(labels, bf16.numpy())
    assert fraction == float((expected == bf16.numpy()).mean())


def test_batch_tuner_picks_the_fastest_measured_size(linear_model):
    tuner = BatchTuner(linear_model, "fp32", (3, 224, 224))  # CPU candidates 8..128
    tuner.rates.clear()
    seconds_per_image = {8: 0.010, 16: 0.007, 32: 0.008, 64: 0.020, 128: 0.001}
    while tuner.exploring:
        size = tuner.next_size()
        tuner.record(size, 1.0)  # warm-up run: ignored
        tuner.record(size, size * seconds_per_image[size])
    assert tuner.best() == 16
    assert 128 not in tuner.rates  # stopped once 64 fell below 85% of the best
    assert BatchTuner(linear_model, "fp32", (3, 224, 224)).best() == 16  # remembered
    assert BatchTuner(linear_model, "fp32", (3, 224, 224), batch_size=5).next_size() == 5
    tuner.rates.clear()


# ----------------------------------------------------------------------------- smooth CLI

SMOOTH = ["smooth", "sample:coffee", "--model", "tiny_cnn", "--sigma", "0.25", "--n", "10",
          "--samples", "200", "--n0", "20", "--alpha", "0.01", "--seed", "3", "--json"]


def test_smooth_cli_json_is_deterministic(capsys):
    from rsviz.cli import main

    outputs = []
    for _ in range(2):
        assert main(SMOOTH) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    out = outputs[0]
    for key in ("p_hat", "p_lower", "p_upper", "top_class", "g_draws", "forward_passes",
                "model", "device", "image_hash", "certify", "prob_g_wrong"):
        assert key in out, key
    assert out["forward_passes"] == 220 and len(out["g_draws"]) == 20
    assert out["p_lower"] <= out["p_hat"] <= out["p_upper"]
    assert sum(r["votes"] for r in out["vote_counts"]) <= 200
    assert out["p_hat"] == pytest.approx(
        next(r["votes"] for r in out["vote_counts"] if r["class_index"] == out["top_class"]) / 200)
    for key in ("p_hat", "g_draws", "certify", "vote_counts"):
        assert outputs[1][key] == out[key]


@pytest.mark.parametrize("change", [("--sigma", "0"), ("--n", "0"), ("--samples", "5"),
                                    ("--alpha", "2")])
def test_smooth_cli_bad_input_exits_with_one_line(capsys, change):
    from rsviz.cli import main

    argv = list(SMOOTH)
    argv[argv.index(change[0]) + 1] = change[1]
    assert main(argv) != 0
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
