"""The library's import graph has no cycle, and the lab borrows no decision from the code it checks.

Every import counts, including those inside functions and under ``TYPE_CHECKING``: a cycle hidden behind a
lazy import is still two modules that cannot be understood, tested or moved one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "ocsps"

LAB_MAY_IMPORT = (
    "ocsps.lab",
    "ocsps.errors",
    "ocsps.catalog",
    "ocsps.hostname",
    "ocsps.powershell.syntax",
    "ocsps.localfiles",
    "ocsps.shapes",
)
"""What the simulated server may use from the product: errors, the product list and names (data), host-name
syntax, the grammar used to refuse malformed scripts and the generic conversion of input data into typed
shapes. Never a decision (quorum, order, verdicts)."""


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join([*parts[: len(parts) - node.level + 1], base]).rstrip(".")
                targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("ocsps"):
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_package_parent(a: str, b: str) -> bool:
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycle() -> None:
    graph = _graph()
    # A package's __init__ re-exporting its own modules is not a cycle of meaning: drop parent<->child edges.
    pruned = {name: {t for t in deps if not _is_package_parent(name, t)} for name, deps in graph.items()}
    assert _cycles(pruned) == []


@pytest.mark.parametrize("module", sorted(m for m in _graph() if m.startswith("ocsps.lab")))
def test_lab_borrows_no_decision(module: str) -> None:
    borrowed = sorted(t for t in _graph()[module] if not t.startswith(LAB_MAY_IMPORT))
    assert borrowed == [], f"{module} imports product code: {borrowed}"
