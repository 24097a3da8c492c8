"""The package's structure: no import cycle among rsviz modules, lazy imports included.

Every rsviz/**/*.py is parsed with `ast` (nothing is imported). A module depends on every rsviz
module it imports anywhere, at module level or inside a function (a lazy import hides a cycle
from the interpreter, not from the reader). `from P import name` depends on P.name when that
is a module, else on P. Importing P.Q.m also runs the packages P and P.Q, so it depends on them
too, except on the packages that enclose the importer: those are already imported when it runs.
That exception is the one allowance: a package `__init__` may import (re-export) its own
submodules, which import their siblings through it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package) for every module of rsviz."""
    found = {}
    for path in sorted((ROOT / "rsviz").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if package else parts)] = (path, package)
    return found


def _enclosing(name: str) -> list[str]:
    """The packages enclosing `name` below the top-level rsviz ("rsviz.a.b.c" -> a, a.b)."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(2, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """Module -> the rsviz modules it imports (see the module docstring)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, (path, package) in modules.items():
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets.update(known(a.name) for a in node.names if a.name.startswith("rsviz"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name if package else name.rpartition(".")[0]
                    for _ in range(node.level - 1):
                        anchor = anchor.rpartition(".")[0]
                    base = f"{anchor}.{base}" if base else anchor
                if base == "rsviz" or base.startswith("rsviz."):
                    targets.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules
                                   else known(base) for a in node.names)
        own = set(_enclosing(name)) | ({name} if package else set())
        deps = set()
        for target in targets - {None, name, "rsviz"}:
            deps.add(target)
            deps.update(p for p in _enclosing(target) if p not in own)
        graph[name] = deps - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_detector_sees_lazy_and_package_cycles():
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    graph = import_graph()
    assert "rsviz.engines.candidates" in graph["rsviz.engines"]  # a lazy import inside a function
    # a lazy `from rsviz.attacks.rs_aware.geometry import ...` runs both packages' __init__ first
    assert ({"rsviz.attacks.rs_aware.geometry", "rsviz.attacks.rs_aware", "rsviz.attacks"}
            <= graph["rsviz.views.rs_aware"])
    assert "rsviz.attacks" not in graph["rsviz.attacks.hsja"]  # its own package: allowed


def test_no_import_cycle_among_rsviz_modules():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
