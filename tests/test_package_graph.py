"""The packages of ``workbench`` import each other without cycles.

The graph is read from the source with :mod:`ast`: every ``import`` counts,
at module level or inside a function (a deferred import is still a dependency;
it only hides the cycle from the interpreter). Nodes are the subpackages and
top-level modules of ``workbench`` (``lake``, ``catalog``, ``events``, ``api``, ...);
inside each subpackage, its modules form a graph of their own (``dashboard.page``,
``dashboard.nav``, ...). ``workbench/__init__.py`` is the public facade and is left
out: it loads its names lazily, by design from everywhere.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "workbench"

#: Cycles that still exist and are being removed (issue 16): each a tuple of nodes.
#: A cycle not listed here fails the test; a listed one that is gone fails it too,
#: so that this list only ever shrinks. Empty means: no cycles at all.
KNOWN_CYCLES: list[tuple[str, ...]] = []


@dataclass
class Graph:
    """Import edges between nodes, each with one place in the source that makes it."""

    edges: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    where: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, source: str, target: str, place: str) -> None:
        if source != target:
            self.edges[source].add(target)
            self.where.setdefault((source, target), place)


def _module_name(path: Path) -> str:
    """Return ``path``'s dotted name below ``workbench`` (``lake.reader``, ``events``)."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(dotted: str) -> bool:
    return (PACKAGE / dotted.replace(".", "/") / "__init__.py").exists()


def _is_module(dotted: str) -> bool:
    base = PACKAGE / dotted.replace(".", "/")
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imported(path: Path, tree: ast.Module) -> Iterable[tuple[str, int]]:
    """Yield the ``workbench`` modules (dotted, below ``workbench``) ``tree`` imports, with lines."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("workbench."):
                    yield alias.name.removeprefix("workbench."), node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.module == "workbench" or (node.module or "").startswith("workbench."):
                module = (node.module or "").removeprefix("workbench").removeprefix(".")
            else:
                continue
            for alias in node.names:
                # ``from workbench.lake import reader`` imports the module lake.reader.
                sub = f"{module}.{alias.name}" if module else alias.name
                target = sub if _is_module(sub) else module
                if target:
                    yield target, node.lineno


@functools.cache  # one read of the source per test session
def build_graphs() -> dict[str, Graph]:
    """Return the package graph (key ``""``) and one module graph per subpackage (its name)."""
    graphs: dict[str, Graph] = defaultdict(Graph)
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "__init__.py" or "migrations" in path.relative_to(PACKAGE).parts:
            continue
        source = _module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for target, line in _imported(path, tree):
            place = f"{path.relative_to(ROOT)}:{line}"
            graphs[""].add(source.split(".")[0], target.split(".")[0], place)
            top = source.split(".")[0]
            if _is_package(top) and target.split(".")[0] == top:
                # Inside a subpackage: its modules (a module of a sub-subpackage counts as it).
                inner = lambda dotted: ".".join(dotted.split(".")[:2])  # noqa: E731
                if inner(source) != top and inner(target) != top:
                    graphs[top].add(inner(source), inner(target), place)
    return graphs


def strongly_connected(graph: Graph) -> list[list[str]]:
    """Return the strongly connected components of more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.edges.get(node, ())):
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

    nodes = set(graph.edges) | {t for targets in graph.edges.values() for t in targets}
    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return sorted(found)


def describe(graph: Graph, component: list[str]) -> str:
    """Return the import edges inside ``component``, one line each with where they are made."""
    inside = set(component)
    lines = [
        f"  {source} -> {target}   ({graph.where[(source, target)]})"
        for source in sorted(inside)
        for target in sorted(graph.edges.get(source, set()) & inside)
    ]
    return "cycle among " + ", ".join(component) + ":\n" + "\n".join(lines)


def all_cycles() -> list[tuple[Graph, list[str]]]:
    return [(graph, c) for graph in build_graphs().values() for c in strongly_connected(graph)]


def test_no_import_cycles_beyond_the_known_ones() -> None:
    known = [set(cycle) for cycle in KNOWN_CYCLES]
    new = [
        describe(graph, component)
        for graph, component in all_cycles()
        # A component is explained when the known cycles inside it cover all its nodes.
        if set().union(*[k for k in known if k <= set(component)]) != set(component)
    ]
    assert new == [], "import cycles in workbench:\n" + "\n\n".join(new)


def test_known_cycles_still_exist() -> None:
    """Each entry of KNOWN_CYCLES is still a cycle: remove the ones that are gone."""
    components = [set(component) for _, component in all_cycles()]
    gone = [cycle for cycle in KNOWN_CYCLES if not any(set(cycle) <= c for c in components)]
    assert gone == [], f"no longer cycles: remove {gone} from KNOWN_CYCLES in {__file__}"


def test_the_graph_reader_sees_deferred_and_relative_imports() -> None:
    """Imports inside functions count, relative ones resolve, ``from pkg import module`` names the module."""
    tree = ast.parse("def f():\n    from .. import events\n    from .wal import x\n")
    found = dict(_imported(PACKAGE / "lake" / "reader.py", tree))
    assert set(found) == {"events", "lake.wal"}
