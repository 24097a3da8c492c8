"""Command line: `python -m rsviz COMMAND ...`.

Each module in `rsviz/commands/` is one command with `NAME`, `HELP`,
`add_arguments(parser)` and `run(args) -> dict`, plus optionally `render(result) -> str` for
the human-readable output. With `--json` exactly one JSON object goes to stdout; progress and
logs go to stderr. Errors exit non-zero with a one-line message on stderr, never a traceback.

Fast start: command modules import nothing heavy at module level, and only the chosen
command's arguments are built (they may import torch for their help texts), so `--help` and
`theory` never load torch (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import pkgutil
import sys
from types import ModuleType
from typing import Any

import rsviz.commands
from rsviz import __version__
from rsviz.errors import RsvizError
from rsviz.storage import to_jsonable


def discover() -> dict[str, ModuleType]:
    """Command modules by name, in alphabetical order."""
    commands = {}
    for info in sorted(pkgutil.iter_modules(rsviz.commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rsviz.commands.{info.name}")
        commands[module.NAME] = module
    return commands


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"rsviz: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _chosen(argv: list[str], names: Any) -> str | None:
    """The command named in argv (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None) if argv else None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the command named in `argv` gets its arguments (None: every one)."""
    commands = discover()
    chosen = None if argv is None else _chosen(argv, commands)
    parser = _Parser(prog="python -m rsviz",
                     description="rsviz: randomized smoothing under attack, headless.")
    parser.add_argument("--version", action="version", version=f"rsviz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in commands.items():
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        if argv is not None and name != chosen:
            continue
        module.add_arguments(cmd)
        cmd.add_argument("--json", action="store_true",
                         help="print exactly one JSON object on stdout")
        cmd.add_argument("--verbose", action="store_true", help="log details to stderr")
    return parser


LIGHT = ("theory", "figure")  # commands without forward passes: no allocator restart


def restart_with_tcmalloc(argv: list[str]) -> None:
    """As a program (`rsviz`, `python -m rsviz`), commands that run forward passes restart once
    with tcmalloc preloaded when it is installed (rsviz.allocator; RSVIZ_TCMALLOC=0
    turns it off); without the library nothing happens."""
    if _chosen(argv, None) in LIGHT or {"-h", "--help", "--version"} & set(argv):
        return
    from rsviz.allocator import reexec_with_tcmalloc

    reexec_with_tcmalloc()


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        restart_with_tcmalloc(sys.argv[1:])
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from rsviz.allocator import tcmalloc_in_process

    logging.getLogger("rsviz.cli").info(
        "allocator: %s", "tcmalloc" if tcmalloc_in_process() else "the C library's malloc")
    module = discover()[args.command]
    try:
        result = module.run(args)
    except RsvizError as exc:
        _end_progress_bars()
        print(f"rsviz {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        _end_progress_bars()
        print(f"rsviz {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user, details with --verbose
        _end_progress_bars()
        logging.getLogger("rsviz").info("details", exc_info=True)
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"rsviz {args.command}: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    _end_progress_bars()
    try:
        _print(module, result, args.json)
    except BrokenPipeError:  # `rsviz ... | head`: the reader left, nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _end_progress_bars() -> None:
    """End an in-place progress bar left open (an error, Ctrl-C), so what follows starts on a
    line of its own."""
    progress = sys.modules.get("rsviz.progress")
    if progress is not None:
        progress.StderrProgress.close_all()


def _print(module: ModuleType, result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(to_jsonable(result)))
    elif hasattr(module, "render"):
        print(module.render(result))
    else:
        print(json.dumps(to_jsonable(result), indent=2))
