"""Published results beside rsviz's (paper Fig. 4): Cohen et al.'s TSV format read and analysed
exactly as their analyze.py does (`(df["correct"] & (df["radius"] >= r)).mean()`), the average
certified radius, the `rsviz analyze` command and the Study page's overlay.

The TSV below has the layout of the files released with locuslab/smoothing
(data/certify/cifar10/resnet110/noise_0.25/test/sigma_0.25: radii with 3 decimals, time in
seconds, abstentions as predict -1 with radius 0.0); the numbers are made up for the test and
the expected values worked out by hand. Run on their released files, rsviz gives exactly the
table of their analysis/markdown/vary_noise_cifar10 (checked by hand while writing this)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsviz.certification import (CertRow, analysis_table, analyze_rows, analyze_tsv, radii_grid,
                                 sigma_of, write_tsv)

COHEN_TSV = """idx\tlabel\tpredict\tradius\tcorrect\ttime
0\t3\t3\t0.378\t1\t15.4
20\t7\t-1\t0.0\t0\t15.6
40\t4\t4\t0.341\t1\t15.7
60\t7\t7\t0.941\t1\t15.8
80\t1\t9\t0.512\t0\t15.5
100\t2\t2\t0.25\t1\t15.3
120\t5\t5\t0.102\t1\t15.6
140\t6\t6\t0.5\t1\t15.9
"""


@pytest.fixture
def cohen_tsv(tmp_path):
    path = tmp_path / "noise_0.25" / "test" / "sigma_0.25"
    path.parent.mkdir(parents=True)
    path.write_text(COHEN_TSV)
    return path


def test_table_is_analyze_py_s(cohen_tsv):
    a = analyze_tsv(cohen_tsv, (0.0, 0.25, 0.5, 0.75, 1.0))
    # correct rows: radii 0.378, 0.341, 0.941, 0.25, 0.102, 0.5 (0.512 is wrong, idx 20 abstains)
    assert a.certified_accuracy == (6 / 8, 5 / 8, 2 / 8, 1 / 8, 0.0)  # r = 0.25 and 0.5 count
    assert a.average_radius == pytest.approx((0.378 + 0.341 + 0.941 + 0.25 + 0.102 + 0.5) / 8)
    assert (a.images, a.abstain_rate, a.sigma) == (8, 1 / 8, 0.25)
    assert a.label == "trained σ = 0.25, σ = 0.25"
    # the same as pandas computes it, bit for bit (what analyze.py runs)
    pd = pytest.importorskip("pandas")
    df = pd.read_csv(cohen_tsv, delimiter="\t")
    theirs = [(df["correct"] & (df["radius"] >= r)).mean() for r in a.radii]
    assert list(a.certified_accuracy) == theirs
    table = analysis_table([a])
    assert "| r = 0.25 |" in table and "| 0.75 | 0.62 | 0.25 | 0.12 | 0.00 |" in table


def test_radii_grid_is_np_arange_as_in_their_tables():
    assert radii_grid(0.25, 1.5, 0.25) == tuple(np.arange(0.25, 1.75, 0.25))
    assert radii_grid(0.5, 3.0, 0.5) == (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    assert sigma_of("certify_sigma0.5.tsv") == 0.5 and sigma_of("x.tsv") is None


def test_rsviz_own_tsv_reads_back_the_same(tmp_path):
    rows = [CertRow(i, i % 3, i % 3 if i % 4 else -1, 0.1 * i if i % 4 else 0.0, bool(i % 4),
                    1.5) for i in range(12)]
    path = write_tsv(rows, tmp_path / "run_sigma0.25.tsv")
    assert analyze_tsv(path).certified_accuracy == analyze_rows(rows).certified_accuracy


def test_cli_analyze(cohen_tsv, tmp_path, capsys):
    from rsviz.cli import main

    assert main(["analyze", str(cohen_tsv), "--radii", "0", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["files"][0]["certified_accuracy"] == {"0": 0.75, "0.5": 0.25}
    assert out["files"][0]["average_radius"] == pytest.approx(2.512 / 8)
    figure = tmp_path / "fig4.html"
    assert main(["analyze", str(cohen_tsv), "--start", "0.25", "--stop", "0.5", "--step",
                 "0.25", "--figure", str(figure)]) == 0
    text = capsys.readouterr().out
    assert "| r = 0.25 | r = 0.5 | ACR | images |" in text and figure.is_file()
    assert main(["analyze", str(tmp_path / "absent.tsv")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_study_page_overlays_published_results(app_env, cohen_tsv, tmp_path, monkeypatch):
    """A finished study opened on the Study page, with a published TSV beside it: the Fig. 4
    tab draws both and tables the published file's certified accuracy and ACR."""
    from rsviz.certification import CertificationConfig
    from rsviz.imagesets import ImageSetSpec
    from rsviz.models import load_model
    from rsviz.study import StudyPlan, run_study
    from tests.conftest import ROOT, make_app

    images = ImageSetSpec("folder", str(ROOT / "tests/golden/images"), subset=1)
    plan = StudyPlan(name="t", models=("tiny_cnn",), images=images, sigmas=(0.25,), ns=(3,),
                     attacks=("hsja",), budget=10, include_undefended=False,
                     certify=CertificationConfig(n0=8, n=32, alpha=0.001))
    folder = tmp_path / "study"
    run_study(plan, folder, load_model("tiny_cnn"))
    at = make_app("pages/6_Study.py")
    at.radio(key="study_mode_w").set_value("Open a results folder").run()
    at.text_area(key="study_open_w").set_value(str(folder)).run()
    at.button(key="study_open_btn").click().run()
    at.text_area(key="study_tsv_paths_w").set_value(str(cohen_tsv)).run()
    at.text_input(key="study_tsv_radii_w").set_value("0, 0.25, 0.5").run()
    assert not at.exception and not at.error, (at.exception, [e.value for e in at.error])
    tables = [t.value for t in at.dataframe]
    published = next(t for t in tables if "results" in t.columns)
    row = published.iloc[0]
    assert row["results"] == "trained σ = 0.25, σ = 0.25"
    assert (row["r = 0"], row["r = 0.25"], row["r = 0.5"]) == (0.75, 0.625, 0.25)
    assert len(published) == 2  # the study's own run at the same radii, beside it
    fig4 = [c for c in at.get("plotly_chart") if "trained" in c.proto.spec]
    assert fig4, "the published curve is not in the Fig. 4 chart"


def test_certify_a_cifar10_batch_beside_published_results(cohen_tsv, tmp_path, capsys):
    from rsviz.cli import main
    from tests.test_cifar10 import fake_batch

    fake_batch(tmp_path / "test_batch", count=3)
    args = ["certify", "--images", str(tmp_path), "--model", "cifar10_resnet8_random",
            "--device", "cpu", "--engine", "eager", "--sigma", "0.25", "--n0", "8", "--n", "32",
            "--out", str(tmp_path / "run.tsv"), "--compare", str(cohen_tsv), "--radii", "0",
            "0.25"]
    assert main(args) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "3 images (CIFAR-10 batch" in text
    assert "| trained σ = 0.25, σ = 0.25 | 0.75 | 0.62 |" in text
    assert "| cifar10_resnet8_random, σ = 0.25 |" in text
    assert main([*args, "--json"]) == 0
    own = json.loads(capsys.readouterr().out)["compare"]["files"][1]
    assert own["certified_accuracy"]["0.25"] == analyze_tsv(
        tmp_path / "run.tsv", (0.0, 0.25)).certified_accuracy[1]
