"""Command line: `python -m rsviz COMMAND ...`.

Each module in `rsviz/commands/` is one command with `NAME`, `HELP`,
`add_arguments(parser)` and `run(args) -> dict`, plus optionally `render(result) -> str` for
the human-readable output. With `--json` exactly one JSON object goes to stdout; progress and
logs go to stderr. Errors exit non-zero with a one-line message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import pkgutil
import sys
from types import ModuleType
from typing import Any

import numpy as np

import rsviz.commands
from rsviz import __version__
from rsviz.errors import RsvizError


def discover() -> dict[str, ModuleType]:
    """Command modules by name, in alphabetical order."""
    commands = {}
    for info in sorted(pkgutil.iter_modules(rsviz.commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"rsviz.commands.{info.name}")
        commands[module.NAME] = module
    return commands


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        print(f"rsviz: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m rsviz",
                     description="rsviz: randomized smoothing under attack, headless.")
    parser.add_argument("--version", action="version", version=f"rsviz {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, module in discover().items():
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.add_argument("--json", action="store_true",
                         help="print exactly one JSON object on stdout")
        cmd.add_argument("--verbose", action="store_true", help="log details to stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    module = discover()[args.command]
    try:
        result = module.run(args)
    except RsvizError as exc:
        print(f"rsviz {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"rsviz {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user, details with --verbose
        logging.getLogger("rsviz").info("details", exc_info=True)
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"rsviz {args.command}: error: {type(exc).__name__}: {first}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(_jsonable(result)))
    elif hasattr(module, "render"):
        print(module.render(result))
    else:
        print(json.dumps(_jsonable(result), indent=2))
    return 0
