"""The mirror follower while today's partition is compacted: nothing lost, nothing sent twice."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from elasticsearch import Elasticsearch

from tests.factories import make_events, write_events
from workbench.config import Settings
from workbench.lake import reader
from workbench.lake.compaction import SmallFilePolicy, compact_partition
from workbench.mirror.bulk import Retry
from workbench.mirror.elastic import MirrorSettings
from workbench.mirror.follower import Follower

FAST = Retry(item_retries=2, item_backoff_s=0.01, item_max_backoff_s=0.02, initial_backoff_s=0.02)
EAGER = SmallFilePolicy(min_files=2, min_age=timedelta(0))


def _es_ids(es: Elasticsearch, pattern: str) -> list[str]:
    es.indices.refresh(index=pattern, ignore_unavailable=True, allow_no_indices=True)
    hits = es.search(index=pattern, size=10_000, query={"match_all": {}})["hits"]["hits"]
    return sorted(h["_id"] for h in hits)


def _lake_ids(settings: Settings) -> list[str]:
    return sorted(reader.scan(settings.lake_url).select("id").collect()["id"].to_list())


def test_follower_behind_compaction_sends_only_the_unmirrored_sources(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    url = mirror_env.lake_url
    now = datetime.now(UTC)
    day = (now - timedelta(minutes=10)).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=1)
    for i in range(3):
        write_events(url, make_events(n=5, start=start + timedelta(minutes=i)), name=f"s{i}")
    follower = Follower(mirror_env, mirror_config, es, retry=FAST)
    assert follower.run_once().indexed == 15
    # Two more batches the follower has not seen yet, then a hot compaction of all five.
    for i in (3, 4):
        write_events(url, make_events(n=4, start=start + timedelta(minutes=i)), name=f"s{i}")
    first = compact_partition(url, day, policy=EAGER, grace=timedelta(minutes=5))
    assert first.merged == 5

    result = follower.run_once()  # the two unmirrored sources, read while still on disk
    assert (result.files_sent, result.indexed) == (2, 8)
    result = follower.run_once()  # the compacted file is now covered: recorded, not sent
    assert (result.files_sent, result.files_skipped, result.indexed) == (0, 1, 0)

    # Compacted twice while the follower looked away: the intermediate file it never saw
    # does not force a re-send; only the two batches it missed are sent.
    write_events(url, make_events(n=3, start=start + timedelta(minutes=9)), name="s5")
    assert follower.run_once().indexed == 3
    write_events(url, make_events(n=2, start=start + timedelta(minutes=8)), name="s6")
    compact_partition(url, day, policy=EAGER, grace=timedelta(minutes=5))
    write_events(url, make_events(n=1, start=start + timedelta(minutes=7)), name="s7")
    compact_partition(url, day, policy=EAGER, grace=timedelta(minutes=5))
    result = follower.run_once()
    assert (result.files_sent, result.indexed) == (2, 3)  # s6 and s7
    result = follower.run_once()
    assert (result.files_sent, result.files_skipped, result.indexed) == (0, 1, 0)
    compact_partition(url, day, grace=timedelta(0))  # sources deleted: the cursor forgets them
    assert follower.run_once().indexed == 0
    assert _es_ids(es, f"{mirror_config.index_prefix}*") == _lake_ids(mirror_env)


def test_ingest_hot_compaction_and_follower_together_send_each_event_once(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    url = mirror_env.lake_url
    day = datetime.now(UTC).date()
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    ms = mirror_config.model_copy(update={"poll_interval_s": 0.01})
    follower = Follower(mirror_env, ms, es, retry=FAST)
    indexed = 0
    stop = threading.Event()

    def compactor() -> None:
        while not stop.is_set():
            compact_partition(url, day, policy=EAGER, grace=timedelta(minutes=5))
            time.sleep(0.01)

    thread = threading.Thread(target=compactor)
    thread.start()
    try:
        for i in range(60):
            write_events(url, make_events(n=5, start=start + timedelta(seconds=i)), name=f"b{i}")
            if i % 3 == 0:
                indexed += follower.run_once().indexed
    finally:
        stop.set()
        thread.join()
    for _ in range(3):
        indexed += follower.run_once().indexed
    assert indexed == 300  # every event sent once: none lost, none sent again
    assert _es_ids(es, f"{mirror_config.index_prefix}*") == _lake_ids(mirror_env)
    assert len(_lake_ids(mirror_env)) == 300
