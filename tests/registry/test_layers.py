"""The package's layers hold: no import cycle, no upward import (the contracts in pyproject.toml).

Every import counts, also one deferred into a function: a deferred import still makes the modules
depend on each other, it only hides the cycle from the interpreter. Only imports under
``if TYPE_CHECKING:`` (annotations, never executed) are left out.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """The import cycles of ``graph``: its strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def known_exceptions() -> list[tuple[str, str]]:
    """The imports pyproject's acyclic contract ignores (each with its reason there)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = []
    for contract in config["tool"]["importlinter"]["contracts"]:
        if contract["type"] == "acyclic_siblings":
            for line in contract.get("ignore_imports", []):
                importer, imported = (part.strip() for part in line.split("->"))
                found.append((importer, imported))
    return found


def test_no_import_cycle_in_the_package():
    graph = grimp.build_graph("marginalia", exclude_type_checking_imports=True)  # as pyproject says
    for importer, imported in known_exceptions():
        graph.remove_import(importer=importer, imported=imported)
    cycles = strongly_connected(graph)
    assert cycles == [], "import cycles (every import counts, deferred ones too):\n" + "\n".join(map(str, cycles))


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for a, b in [("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d")]:
        graph.add_import(importer=a, imported=b)
    assert strongly_connected(graph) == [["p.a", "p.b", "p.c"]]


def test_layer_contracts_are_kept():
    lint = Path(sys.executable).with_name("lint-imports")
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    proc = subprocess.run([*command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout
