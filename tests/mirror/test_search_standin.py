"""Explorer search through Elasticsearch gives the lake's answer (stand-in unless ELASTIC_URL is set)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests.factories import make_events, write_events
from workbench.config import Settings
from workbench.mirror.bulk import Retry
from workbench.mirror.elastic import MirrorSettings
from workbench.mirror.follower import Follower
from workbench.mirror.search import NotCovered, covers, search_elastic
from workbench.query.search import search
from workbench.query.types import SearchQuery

T = datetime(2026, 11, 20, 23, 59, 0, tzinfo=UTC)
MESSAGES = [
    "Auth FAILED for user",
    "auth ok",
    "50% off* sale?",
    "payment declined",
    "timeout after 30s",
    "AUTHENTICATION required",
    "back\\slash path",
]


def _lake(settings: Settings) -> None:
    rnd = random.Random(7)
    rows: list[dict[str, Any]] = []
    for i in range(240):
        # Many events share a millisecond (distinct microseconds) and some share
        # the exact microsecond: order then falls to the id.
        ts = T + timedelta(microseconds=rnd.choice([0, 1, 2, 999, 1000, 1001]) + 1500 * (i // 6))
        rows.append(
            {
                "timestamp": ts,
                "service": rnd.choice(["api", "auth", "billing"]),
                "level": rnd.choice(["debug", "info", "warn", "error", "fatal"]),
                "message": rnd.choice(MESSAGES),
                "meta": {"n": i},
            }
        )
    rnd.shuffle(rows)
    for k in range(0, len(rows), 60):
        write_events(settings.lake_url, make_events(rows[k : k + 60]))


@pytest.fixture
def mirrored(mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch) -> Settings:
    _lake(mirror_env)
    Follower(mirror_env, mirror_config, es, retry=Retry(initial_backoff_s=0.01)).run_once()
    es.indices.refresh(index=f"{mirror_config.index_prefix}*")
    return mirror_env


QUERIES: list[dict[str, Any]] = [
    {},
    {"text": "auth"},
    {"text": "FAILED", "service": "auth"},
    {"text": "50% off*"},
    {"text": "?"},
    {"text": "back\\slash"},
    {"levels": ["error", "FATAL"]},
    {"service": "billing", "levels": ["info"], "text": "declined"},
    {
        "start": T + timedelta(microseconds=1001),
        "end": T + timedelta(milliseconds=30, microseconds=1),
    },
    {"start": T + timedelta(days=1)},
    {"text": "no such message"},
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
def test_standin_search_matches_the_lake(
    mirrored: Settings, mirror_config: MirrorSettings, es: Elasticsearch, query: dict[str, Any]
) -> None:
    assert covers(mirrored, query.get("start"), query.get("end"))
    for page in (1, 2, 5):
        lake = search(mirrored.lake_url, SearchQuery(page=page, limit=7, **query))
        elastic = search_elastic(
            es, SearchQuery(page=page, limit=7, **query), index_prefix=mirror_config.index_prefix
        )
        assert elastic == lake
    # Cursor paging through everything: same pages, same cursors, either side's cursor works.
    cursor: str | None = None
    seen = 0
    while True:
        lake = search(mirrored.lake_url, SearchQuery(limit=50, cursor=cursor, **query))
        elastic = search_elastic(
            es,
            SearchQuery(limit=50, cursor=cursor, **query),
            index_prefix=mirror_config.index_prefix,
        )
        assert elastic == lake
        seen += len(lake.logs)
        cursor = lake.next_cursor
        if cursor is None:
            break
    assert seen == lake.total


def test_standin_covers_only_what_is_mirrored(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    no_mirror = Settings(WORKBENCH_DATA_DIR=mirror_env.data_dir, ELASTIC_URL="")  # type: ignore[call-arg]
    assert not covers(no_mirror, None, None)
    write_events(mirror_env.lake_url, make_events(n=5, start=T))
    assert not covers(mirror_env, None, None)
    follower = Follower(mirror_env, mirror_config, es, retry=Retry(initial_backoff_s=0.01))
    follower.run_once()
    assert covers(mirror_env, None, None)
    later = T + timedelta(days=3)
    write_events(mirror_env.lake_url, make_events(n=5, start=later))
    assert covers(mirror_env, T, T + timedelta(days=1))  # the pending file is later
    assert not covers(mirror_env, T, later + timedelta(hours=1))
    follower.run_once()
    # A recorded failure on a day means Elasticsearch lacks an event of that day.
    write_events(mirror_env.lake_url, make_events(n=1, start=later, meta={"n": {"deep": 1}}))
    write_events(mirror_env.lake_url, make_events(n=1, start=T, meta={"n": "text"}))
    follower.run_once()
    write_events(mirror_env.lake_url, make_events(n=1, start=T, meta={"n": {"x": 1}}))
    follower.run_once()
    assert follower.state.failure_count() >= 1
    assert not covers(mirror_env, T, T + timedelta(hours=1))


def test_standin_search_refuses_what_only_the_lake_answers(
    mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    with pytest.raises(NotCovered):
        search_elastic(es, SearchQuery(meta={"n": 1}), index_prefix=mirror_config.index_prefix)
    with pytest.raises(NotCovered):
        search_elastic(
            es, SearchQuery(page=200, limit=100), index_prefix=mirror_config.index_prefix
        )
