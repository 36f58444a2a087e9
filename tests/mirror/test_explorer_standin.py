"""The explorer answers text searches from Elasticsearch when complete, else from the lake.

Runs against the Elasticsearch stand-in (tests/mirror/es_standin.py), or a real
cluster when ELASTIC_URL is set.
"""

from __future__ import annotations

from datetime import UTC, datetime

from elasticsearch import Elasticsearch

from tests.factories import make_events, write_events
from workbench.config import Settings
from workbench.explorer import search_logs
from workbench.mirror.bulk import Retry
from workbench.mirror.elastic import MirrorSettings
from workbench.mirror.follower import Follower
from workbench.query.types import SearchQuery

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_standin_explorer_uses_elasticsearch_only_when_it_holds_the_range(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    settings = mirror_env.model_copy()
    rows = [{"timestamp": T, "service": "auth", "level": "error", "message": "Token expired"}]
    write_events(settings.lake_url, make_events(rows * 3))
    # Not mirrored yet: the lake answers.
    result, source = search_logs(settings, SearchQuery(text="token"))
    assert (source, result.total) == ("lake", 3)
    Follower(settings, mirror_config, es, retry=Retry(initial_backoff_s=0.01)).run_once()
    es.indices.refresh(index=f"{mirror_config.index_prefix}*")
    if mirror_config.index_prefix == "app-logs-":  # the stand-in: default prefix
        result_es, source = search_logs(settings, SearchQuery(text="token"))
        assert source == "elasticsearch"
        lake_only = settings.model_copy(update={"elastic_url": None})
        assert result_es == search_logs(lake_only, SearchQuery(text="token"))[0]
    # No text, or a meta filter: always the lake.
    assert search_logs(settings, SearchQuery())[1] == "lake"
    assert search_logs(settings, SearchQuery(text="token", meta={"k": "v"}))[1] == "lake"


def test_standin_explorer_falls_back_when_elasticsearch_is_down(data_dir) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(WORKBENCH_DATA_DIR=data_dir, ELASTIC_URL="http://127.0.0.1:9")  # type: ignore[call-arg]
    write_events(settings.lake_url, make_events(n=4, start=T))
    result, source = search_logs(settings, SearchQuery(text=""))
    assert source == "lake" and result.total == 4
    result, source = search_logs(settings, SearchQuery(text="a"))
    assert source == "lake"
