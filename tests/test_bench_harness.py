"""bench/harness.py's rounds, ratios, report and JSON on trivial callables (no timing is
asserted), and every bench script importable (its --help runs), so a broken script fails CI."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("harness", BENCH / "harness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["harness"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_interleaved_runs_abba_rounds_and_keeps_each_result(harness):
    calls = []

    def call(label):
        return lambda r: calls.append((label, r)) or f"{label}{r}"

    timings = harness.interleaved({"a": call("a"), "b": call("b")}, rounds=4,
                                  work={"a": 10, "b": 5})
    assert calls == [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2), ("b", 3),
                     ("a", 3)]
    assert list(timings) == ["a", "b"]
    assert timings["a"].results == ["a0", "a1", "a2", "a3"]
    assert timings["b"].work == 5 and len(timings["b"].seconds) == 4
    assert all(s >= 0 for s in timings["a"].seconds)


def test_compare_ratios_from_given_seconds(harness):
    base = harness.Timing("naive", work=10, seconds=[2.0, 2.0])
    fast = harness.Timing("rsviz", work=10, seconds=[1.0, 0.5])
    rows = harness.compare({"naive": base, "rsviz": fast}, "naive", flops=2e9)
    naive, ours = rows
    assert naive["ratio"] == pytest.approx(1.0) and naive["median_round_ratio"] == 1.0
    assert ours["rate"] == pytest.approx(20 / 1.5)          # total work / total seconds
    assert ours["ratio"] == pytest.approx((20 / 1.5) / 5)   # against 20 / 4
    assert ours["round_ratios"] == pytest.approx([2.0, 4.0])
    assert ours["median_round_ratio"] == pytest.approx(3.0)
    assert ours["gflops"] == pytest.approx(20 / 1.5 * 2)
    assert harness.ratio(rows, "naive", "rsviz") == pytest.approx(5 / (20 / 1.5))


def test_compare_with_different_work_per_call(harness):
    timings = {"full": harness.Timing("full", 4, [2.0]), "lazy": harness.Timing("lazy", 4, [1.0]),
               "raw": harness.Timing("raw", 16, [1.0])}
    rows = {r["label"]: r for r in harness.compare(timings, "full")}
    assert rows["lazy"]["ratio"] == pytest.approx(2.0)   # same work: the time ratio
    assert rows["raw"]["ratio"] == pytest.approx(8.0)    # 16/s against 2/s


def test_report_prints_every_row_with_its_ratio(harness, capsys):
    timings = harness.interleaved({"base": lambda r: None, "cand": lambda r: None}, 2)
    timings["base"].seconds, timings["cand"].seconds = [1.0, 1.0], [0.25, 0.25]
    harness.print_report(harness.compare(timings, "base"), unit="calls/s")
    out = capsys.readouterr().out.splitlines()
    assert "calls/s" in out[0] and "× base" in out[0]
    assert out[1].split()[:3] == ["base", "1.0", "1.00"]
    assert out[2].split()[:3] == ["cand", "4.0", "4.00"]


def test_json_has_the_fingerprint_settings_and_results(harness, tmp_path):
    timings = {"a": harness.Timing("a", 1, [1.0]), "b": harness.Timing("b", 1, [0.5])}
    rows = harness.compare(timings, "a")
    path = tmp_path / "out" / "bench.json"
    written = harness.save(path, "demo", rows, None, "fp32", n=512, model="a name")
    data = json.loads(path.read_text())
    assert data == json.loads(json.dumps(written))
    assert data["bench"] == "demo" and data["settings"] == {"n": 512, "model": "a name"}
    assert data["results"][1]["ratio"] == pytest.approx(2.0)
    machine = data["machine"]
    for key in ("date", "cpu", "avx2", "avx512_bf16", "amx", "threads", "torch", "rsviz",
                "forward", "precision"):
        assert key in machine, key
    assert isinstance(machine["avx2"], bool) and isinstance(machine["amx"], bool)
    assert machine["precision"] == "fp32" and machine["threads"] >= 1
    import torch

    import rsviz
    assert (machine["torch"], machine["rsviz"]) == (torch.__version__, rsviz.__version__)
    assert harness.save(None, "demo", rows) is None


def test_fingerprint_describes_the_models_forward(harness):
    from rsviz import engines

    model = harness.load("tiny_cnn")
    machine = harness.fingerprint(model)
    assert machine["forward"] == engines.describe_forward(model)
    assert machine["precision"] == "fp32" and machine["model"] == model.info.model_id


def test_every_bench_script_imports_and_shows_its_help():
    """Each script's module-level imports and argument parser, in one process (torch is
    imported once): a script that no longer imports fails here."""
    scripts = sorted(p.name for p in BENCH.glob("*.py"))
    assert "harness.py" in scripts and "gpu_check.py" in scripts
    driver = (
        "import contextlib, io, runpy, sys, traceback\n"
        f"sys.path.insert(0, {str(BENCH)!r})\n"
        f"for name in {scripts!r}:\n"
        "    sys.argv = [name, '--help']\n"
        "    try:\n"
        "        with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"            runpy.run_path({str(BENCH)!r} + '/' + name, run_name='__main__')\n"
        "        code = 0 if name == 'harness.py' else 'no exit'\n"
        "    except SystemExit as done:\n"
        "        code = done.code or 0\n"
        "    except BaseException:\n"
        "        code = traceback.format_exc()\n"
        "    usage = 'usage:' in out.getvalue() or name == 'harness.py'\n"
        "    print(name, 'ok' if code == 0 and usage else f'FAILED: {code}')\n")
    done = subprocess.run([sys.executable, "-c", driver], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len([line for line in lines if line.endswith(" ok")]) == len(scripts), done.stdout
