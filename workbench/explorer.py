"""The log explorer's search: Elasticsearch for full-text when it is complete, else the lake.

The dispatcher sits above both stores: :mod:`workbench.query` (the lake) and
:mod:`workbench.mirror` (Elasticsearch) take the same :class:`~workbench.query.types.SearchQuery`
and neither imports this module, so neither package imports the other's search
(the mirror imports only ``workbench.query.types``). Both return the same
:class:`~workbench.query.types.SearchResult`
(same totals, order and cursors), so the caller never sees which one answered,
except through the returned ``source``. Elasticsearch is asked only for text
searches, only when the mirror holds every lake event of the range, and any
refusal or failure there falls back to the lake: the lake is the source of truth.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Literal

from workbench.config import Settings
from workbench.query.search import search
from workbench.query.types import SearchQuery, SearchResult

log = logging.getLogger(__name__)
Source = Literal["lake", "elasticsearch"]

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def _client(settings: Settings) -> tuple[Any, str]:
    from workbench.mirror.elastic import make_client, mirror_settings

    ms = mirror_settings(settings)
    key = f"{ms.elastic_url}|{ms.index_prefix}"
    with _clients_lock:
        if key not in _clients:
            _clients[key] = make_client(ms)
        return _clients[key], ms.index_prefix


def search_logs(settings: Settings, query: SearchQuery) -> tuple[SearchResult, Source]:
    """Return one page of matching events, newest first, and which store answered it."""
    if query.text and settings.elastic_url and not query.meta:
        from workbench.mirror.bulk import MirrorUnavailable
        from workbench.mirror.search import covers, search_elastic

        try:
            if covers(settings, query.start, query.end):
                es, prefix = _client(settings)
                return search_elastic(es, query, index_prefix=prefix), "elasticsearch"
        except MirrorUnavailable as exc:  # includes NotCovered
            log.info("explorer search falls back to the lake: %s", exc)
        except Exception as exc:  # a mirror problem must never break the explorer
            log.warning("explorer search through Elasticsearch failed, using the lake: %s", exc)
    return search(settings.lake_url, query), "lake"
