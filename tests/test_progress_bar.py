"""CLI progress (rsviz.progress.StderrProgress): an in-place bar on a terminal (tqdm's, else a line
rewritten after a carriage return) ended by one newline; separate lines when piped."""

from __future__ import annotations

import io

import pytest

import rsviz.progress as progress_module
from rsviz.progress import StderrProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(progress: StderrProgress, steps: int = 5) -> None:
    for i in range(steps + 1):
        progress.report(i * 20, steps * 20, f"step {i}")


def test_piped_output_is_lines():
    stream = io.StringIO()
    drive(StderrProgress("demo", stream))
    text = stream.getvalue()
    assert "\r" not in text and text.endswith("\n") and "100.0%" in text


def test_terminal_gets_one_tqdm_bar_redrawn_in_place():
    pytest.importorskip("tqdm")
    stream = Terminal()
    progress = StderrProgress("demo", stream)
    assert progress.interactive
    drive(progress)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, ended once at 100 %
    assert text.count("\r") >= 2 and "100%" in text and "demo" in text
    progress.report(100, 100)  # a report after the end draws no second bar
    assert stream.getvalue() == text


def test_terminal_without_tqdm_rewrites_one_line(monkeypatch):
    monkeypatch.setattr(progress_module, "_tqdm_bar", lambda *args: None)
    stream = Terminal()
    progress = StderrProgress("demo", stream)
    progress.report(1, 4, "first")
    progress.report(2, 4, "never ends")
    assert stream.getvalue().startswith("\rdemo [")
    assert "\n" not in stream.getvalue()
    StderrProgress.close_all()  # what the CLI does before an error line
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1


def test_cli_error_after_an_open_bar_starts_its_own_line(monkeypatch, capsys):
    from rsviz import cli
    from rsviz.errors import RsvizError

    stream = Terminal()

    class Boom:
        NAME = "boom"

        @staticmethod
        def run(args):
            StderrProgress("work", stream).report(1, 10)
            raise RsvizError("broken")

    monkeypatch.setattr(cli, "discover", lambda: {"predict": Boom})
    monkeypatch.setattr(cli, "build_parser", lambda argv: _parser())
    assert cli.main(["predict"]) == 1
    assert stream.getvalue().endswith("\n")
    assert capsys.readouterr().err.strip() == "rsviz predict: error: broken"


def _parser():
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("command")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--json", action="store_true")
    return parser
