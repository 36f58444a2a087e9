"""``workbench.query`` (the lake's search) never imports ``workbench.mirror`` (Elasticsearch).

The mirror depends on the query package's shared types (``workbench.query.types``); the
dispatcher that chooses between the two stores (``workbench.explorer``) sits above both.
Every import counts, at module level or inside a function (a deferred import still makes
the cycle). The repo-wide graph is ``tests/test_package_graph.py``; this is the narrow check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "workbench"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", sorted((PACKAGE / "query").glob("*.py")), ids=lambda p: p.name)
def test_query_does_not_import_the_mirror(path: Path) -> None:
    mirror = sorted(
        name
        for name in _imports(path)
        if name == "workbench.mirror" or name.startswith("workbench.mirror.")
    )
    assert mirror == [], f"{path.name} imports {mirror}"


def test_the_mirror_search_and_the_lake_search_share_one_query_type() -> None:
    import inspect

    from workbench.mirror.search import search_elastic
    from workbench.query.search import search
    from workbench.query.types import SearchQuery

    for fn in (search, search_elastic):
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
        assert params[1].name == "query" and params[1].annotation is SearchQuery, fn
