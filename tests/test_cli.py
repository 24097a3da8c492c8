"""CLI: --help, predict (human and --json), one-line errors with non-zero exit codes."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.conftest import ROOT


def rsviz(*args, check=False):
    proc = subprocess.run([sys.executable, "-m", "rsviz", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    return proc


def test_help_lists_commands():
    proc = rsviz("--help")
    assert proc.returncode == 0 and "predict" in proc.stdout


def test_normalized_inside_is_accepted_but_not_advertised():
    """--normalized-inside (old scripts) still means --normalization none, hidden from --help."""
    import argparse

    from rsviz.commands._common import add_model_arguments, checkpoint_normalization

    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert "--normalized-inside" not in parser.format_help()
    assert checkpoint_normalization(parser.parse_args(["--normalized-inside"])) == "none"
    assert checkpoint_normalization(parser.parse_args([])) == "auto"


def test_predict_json_on_embedded_model():
    proc = rsviz("predict", "sample:coffee", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # exactly one JSON object
    assert out["model"] == "efficientnet_lite0" and "CPU" in out["device"]
    assert out["top5"][0]["name"] == "espresso" and out["top5"][0]["class_index"] == 967
    assert len(out["top5"]) == 5 and abs(sum(r["prob"] for r in out["top5"]) - 1) < 0.1


def test_predict_file_and_human_output(tmp_path):
    path = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50, 3)) * 255).astype(np.uint8)).save(path)
    proc = rsviz("predict", str(path), "--model", "tiny_cnn")
    assert proc.returncode == 0, proc.stderr
    assert "tiny_cnn" in proc.stdout and "class" in proc.stdout


def test_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    for args in (["predict", str(bad)], ["predict", "missing.png"],
                 ["predict", "sample:coffee", "--model", "nope"],
                 ["predict", "sample:coffee", "--model", "resnet50.imagenet1k_v1"],
                 ["nosuchcommand"]):
        proc = rsviz(*args)
        assert proc.returncode != 0, args
        lines = [line for line in proc.stderr.splitlines()
                 if line.strip() and not line.startswith("Downloading")]
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stdout == ""
