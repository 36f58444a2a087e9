"""The dashboard's modules import each other one way: text helpers below widgets, pages on top.

``format`` (pure text and HTML) and ``errors`` (wording) need no ipywidgets; ``nav``
draws with them; ``page`` (the page base) sits on ``nav``; only the page modules
import ``page``. The graph is the one ``tests/test_package_graph.py`` reads (every
import counts, deferred ones too); this is the narrow check on the dashboard.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.test_package_graph import PACKAGE, build_graphs, strongly_connected

#: The modules that are pages (each a notebook's ``build_*``): the only importers of ``page``.
PAGE_MODULES = {"overview", "logs", "incidents", "rules", "channels"}


def _graph():  # type: ignore[no-untyped-def]
    return build_graphs()["dashboard"]


def test_the_dashboard_modules_have_no_import_cycle() -> None:
    assert strongly_connected(_graph()) == []


def test_nav_draws_with_format_and_only_pages_import_the_page_base() -> None:
    graph = _graph()
    assert "dashboard.format" in graph.edges["dashboard.nav"]
    assert "dashboard.nav" in graph.edges["dashboard.page"]
    importers = {
        source.removeprefix("dashboard.")
        for source, targets in graph.edges.items()
        if "dashboard.page" in targets
    }
    assert importers <= PAGE_MODULES, importers - PAGE_MODULES


def test_text_helpers_do_not_import_ipywidgets() -> None:
    for name in ("format", "errors"):
        tree = ast.parse(Path(PACKAGE / "dashboard" / f"{name}.py").read_text())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert not imported & {"ipywidgets", "IPython"}, name


def test_no_common_module_is_left() -> None:
    assert not (PACKAGE / "dashboard" / "common.py").exists()
