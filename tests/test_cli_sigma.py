"""The CLI's σ default follows the model as the app's sidebar does (#25 item 8):
`rsviz.models.default_sigma` when --sigma is left out, said on stderr; --sigma still wins."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["sample:coffee", "--model", "tiny_cnn", "--device", "cpu", "--engine", "eager"]
# command -> (small-budget arguments, where the JSON says which σ ran)
COMMANDS = {
    "smooth": (["--samples", "40", "--n0", "8", "--n", "5"], lambda out: out["sigma"]),
    "certify": (["--n0", "8", "--n", "32"], lambda out: out["runs"][0]["sigma"]),
    "profile": (["--samples", "16", "--points", "4", "--n", "5", "--attack-iters", "3",
                 "--no-curvature"], lambda out: out["config"]["sigma"]),
    "dichotomy": (["--n", "5", "--trials", "10", "--steps", "4", "--grid", "6",
                   "--samples", "16", "--segment", "towards"],
                  lambda out: out["config"]["sigma"]),
}


def run(capsys, command: str, *extra: str) -> tuple[float, str]:
    from rsviz.cli import main

    args, sigma_of = COMMANDS[command]
    assert main([command, *TINY, *args, *extra, "--json"]) == 0
    captured = capsys.readouterr()
    return sigma_of(json.loads(captured.out)), captured.err


@pytest.mark.parametrize("command", list(COMMANDS))
def test_sigma_defaults_to_the_models(capsys, monkeypatch, command):
    import rsviz.models

    monkeypatch.setattr(rsviz.models, "default_sigma",
                        lambda info: (0.31, f"σ = 0.31: {info.name}'s default"))
    sigma, err = run(capsys, command)
    assert sigma == pytest.approx(0.31)
    assert "σ = 0.31: tiny_cnn's default (--sigma to choose another)" in err


def test_tiny_cnn_default_is_the_apps_and_sigma_wins(capsys):
    from rsviz.models import default_sigma, load_model

    expected = default_sigma(load_model("tiny_cnn").info)[0]
    assert expected != 0.25  # the old fixed default would fail here
    sigma, err = run(capsys, "smooth")
    assert sigma == pytest.approx(expected) and "σ = " in err
    sigma, err = run(capsys, "smooth", "--sigma", "0.2")
    assert sigma == pytest.approx(0.2) and "--sigma to choose another" not in err
