"""Certification over a set: Cohen's TSV, the certified-accuracy curve, the accuracy drop."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pytest
import torch

from rsviz.certification import (CertificationConfig, CertRow, accuracy_drop_table,
                                 certified_accuracy, curve, radius_cap, read_tsv,
                                 run_certification, tsv_path_for, write_tsv)
from rsviz.errors import ConfigError, RsvizError
from rsviz.smoothing import radius_from_votes
from rsviz.imagesets import ImageEntry, ImageSet

# A hand-made run of 6 images: 2 abstain, 1 wrong, 3 right with radii 0.1, 0.3, 0.3.
HAND_TSV = ("idx\tlabel\tpredict\tradius\tcorrect\ttime\n"
            "0\t1\t1\t0.1\t1\t0:00:01.500000\n"
            "1\t2\t-1\t0.0\t0\t0:00:02\n"
            "2\t3\t3\t0.3\t1\t0:01:00.250000\n"
            "3\t4\t5\t0.7\t0\t1.25\n"
            "4\t5\t5\t0.3\t1\t0:00:00.100000\n"
            "5\t6\t-1\t0.0\t0\t0:00:00.100000\n")


def test_curve_on_hand_made_tsv(tmp_path):
    path = tmp_path / "hand.tsv"
    path.write_text(HAND_TSV)
    rows = read_tsv(path)
    assert [r.predict for r in rows] == [1, -1, 3, 5, 5, -1]
    assert rows[2].time == pytest.approx(60.25) and rows[3].time == pytest.approx(1.25)
    acc = certified_accuracy(rows, [0.0, 0.05, 0.1, 0.1001, 0.3, 0.31, 0.7])
    # the wrong prediction with radius 0.7 never counts; ≥ is inclusive at the radius itself
    np.testing.assert_allclose(acc, [3 / 6, 3 / 6, 3 / 6, 2 / 6, 2 / 6, 0, 0])
    radii, values = curve(rows, points=50)
    assert radii[0] == 0 and radii[-1] > 0.7 and values[0] == pytest.approx(0.5)
    assert np.all(np.diff(values) <= 0)


def test_tsv_round_trip(tmp_path):
    rows = [CertRow(i, i % 3, (-1 if i == 2 else i % 3), (0.0 if i == 2 else 0.123456789 * i),
                    i != 2, 0.5 + i / 7) for i in range(5)]
    path = write_tsv(rows, tmp_path / "sub" / "run.tsv")
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == ["idx", "label", "predict", "radius", "correct", "time"]
    assert lines[1].count("\t") == 5
    back = read_tsv(path)
    for a, b in zip(rows, back):
        assert (a.idx, a.label, a.predict, a.radius, a.correct) == \
            (b.idx, b.label, b.predict, b.radius, b.correct)
        assert b.time == pytest.approx(a.time, abs=1e-6)


def test_read_rejects_other_files(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(RsvizError, match="missing columns"):
        read_tsv(path)


def test_accuracy_drop_table():
    rows = [CertRow(0, 1, 1, 0.2, True, 0, f_predict=1), CertRow(1, 2, -1, 0, False, 0, f_predict=2),
            CertRow(2, 3, 3, 0.6, True, 0, f_predict=3), CertRow(3, 4, 0, 0, False, 0, f_predict=1)]
    (row,) = accuracy_drop_table({0.25: rows})
    assert row["accuracy_f"] == 0.75 and row["accuracy_g"] == 0.5
    assert row["drop"] == pytest.approx(0.25) and row["abstain_rate"] == 0.25
    assert row["cert_acc@0.25"] == 0.25 and row["median_radius_correct"] == pytest.approx(0.4)


def test_defaults_and_validation():
    assert (CertificationConfig.defaults_for("cpu").n0, CertificationConfig.defaults_for("cpu").n) == (64, 512)
    gpu = CertificationConfig.defaults_for("cuda", sigmas=(0.5,))
    assert (gpu.n0, gpu.n, gpu.alpha, gpu.sigmas) == (100, 100_000, 0.001, (0.5,))
    with pytest.raises(ConfigError):
        CertificationConfig(sigmas=(0.0,))
    with pytest.raises(ConfigError):
        CertificationConfig(n=0)
    assert radius_cap(1.0, 512, 0.001) == pytest.approx(2.214, abs=1e-3)
    assert tsv_path_for("out/run.tsv", 0.25, True).name == "run_sigma0.25.tsv"


def test_run_on_linear_model_matches_exact_radius(linear_model, tmp_path):
    """CERTIFY over a set on the analytic linear classifier: radii never exceed the exact
    distance to the boundary (beyond α) and are close to it with n = 2000."""
    torch.manual_seed(0)
    net = linear_model.net
    w = net.w.view(3, 32, 32) if hasattr(net, "w") else None
    assert w is not None
    grey = torch.full((3, 32, 32), 0.5)
    offsets = [0.6, -0.25, -0.5]  # boundary at +0.2 along w: distances 0.4, 0.45, 0.7 (L2)
    xs = [(grey + o * w / w.norm()).clamp(0, 1) for o in offsets]
    exact = [abs(float(net.distance_to_boundary(x[None]).item())) for x in xs]
    labels = [int(linear_model(x[None]).argmax()) for x in xs]
    images = ImageSet("lin", tuple(ImageEntry(f"x{i}", f"x{i}", labels[i]) for i in range(3)))
    images = _tensor_set(images, xs)
    config = CertificationConfig(sigmas=(0.25, 0.5), n0=64, n=2000, seed=3)
    run = run_certification(linear_model, images, config, out=tmp_path / "lin.tsv")
    assert set(run.paths) == {0.25, 0.5}
    for sigma, rows in run.runs.items():
        back = read_tsv(run.paths[sigma])
        assert [r.radius for r in back] == [r.radius for r in rows]
        for row, dist in zip(rows, exact):
            assert row.correct and row.f_predict == row.label
            assert row.radius <= dist + 1e-9
            # p̲_A ≈ p_A − 3.1 sd at n = 2000, and no radius beyond the cap σΦ⁻¹(α^{1/n})
            assert row.radius > min(dist, radius_cap(sigma, 2000, 0.001)) - 0.4 * sigma
    table = run.table()
    assert [t["sigma"] for t in table] == [0.25, 0.5] and table[0]["accuracy_g"] == 1.0


class _TensorSet(ImageSet):
    """An image set whose tensors are given (the linear toy needs exact positions)."""

    def tensors(self, size, resize=None, interpolation="bicubic"):  # noqa: D401
        return list(self._xs)


def _tensor_set(images: ImageSet, xs: list[torch.Tensor]) -> ImageSet:
    out = _TensorSet(images.name, images.entries)
    object.__setattr__(out, "_xs", xs)
    return out


@pytest.mark.parametrize("n, cap_in_sigmas", [(512, 2.2), (100_000, 3.8)])
def test_radius_cap_matches_the_readme_and_certify(n, cap_in_sigmas):
    """σΦ⁻¹(α^{1/n}) at α = 0.001: 2.2σ at n = 512, 3.8σ at n = 100 000 (README), against the
    standard library's normal quantile; CERTIFY's radius with all n votes for ĉ_A is the cap,
    with one vote fewer it is smaller."""
    sigma, alpha = 0.25, 0.001
    independent = sigma * NormalDist().inv_cdf(alpha ** (1.0 / n))
    cap = radius_cap(sigma, n, alpha)
    assert cap == pytest.approx(independent, rel=1e-9)
    assert round(cap / sigma, 1) == cap_in_sigmas
    p_lower, radius = radius_from_votes(n, n, alpha, sigma)
    assert p_lower == pytest.approx(alpha ** (1.0 / n), rel=1e-9)
    assert radius == pytest.approx(cap, rel=1e-6)
    assert radius_from_votes(n - 1, n, alpha, sigma)[1] < cap


def test_the_certify_command_defaults_are_the_configs():
    """`rsviz certify IMAGE` without options certifies with CertificationConfig.defaults_for
    the device: no copy of n0, n, α or the seed in the command."""
    from rsviz.cli import build_parser
    from rsviz.commands.certify import certification_config

    argv = ["certify", "sample:coffee"]
    args = build_parser(argv).parse_args(argv)
    for device in ("cpu", "cuda"):
        expected = CertificationConfig.defaults_for(device, sigmas=(0.25,))
        assert certification_config(args, device, (0.25,)) == expected
    argv += ["--alpha", "0.01", "--n0", "10", "--seed", "4"]
    args = build_parser(argv).parse_args(argv)
    assert certification_config(args, "cpu", (0.5,)) == CertificationConfig(
        sigmas=(0.5,), n0=10, alpha=0.01, seed=4)
