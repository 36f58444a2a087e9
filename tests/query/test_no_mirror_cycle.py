"""``workbench.query`` (the lake's search) never imports ``workbench.mirror`` (Elasticsearch).

The mirror depends on the query package's shared types (``workbench.query.types``); the
dispatcher that chooses between the two stores (``workbench.explorer``) sits above both.
Every import counts, at module level or inside a function (a deferred import still makes
the cycle): the graph is the one ``tests/test_package_graph.py`` reads; this is the narrow
check on the two packages.
"""

from __future__ import annotations

from tests.test_package_graph import build_graphs


def test_query_does_not_import_the_mirror() -> None:
    graph = build_graphs()[""]
    assert "mirror" not in graph.edges["query"], graph.where.get(("query", "mirror"))
    assert "query" in graph.edges["mirror"]  # the mirror takes the query's types: one way


def test_the_mirror_search_and_the_lake_search_share_one_query_type() -> None:
    import inspect

    from workbench.mirror.search import search_elastic
    from workbench.query.search import search
    from workbench.query.types import SearchQuery

    for fn in (search, search_elastic):
        params = list(inspect.signature(fn, eval_str=True).parameters.values())
        assert params[1].name == "query" and params[1].annotation is SearchQuery, fn
