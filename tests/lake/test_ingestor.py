"""The ingestor: WAL -> Parquet, exactly once across replays, backpressure, health figures."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest

from tests.lake.conftest import NOW, make_events
from tests.waiting import CountingEvent, wait_until
from workbench.config import Settings
from workbench.errors import Overloaded
from workbench.lake import ingestor as ingestor_module
from workbench.lake.ingestor import Ingestor, flush_segment
from workbench.lake.reader import scan
from workbench.lake.wal import WalFolder, WriteAheadLog, encode_record, read_records


def _lake(settings: Settings) -> pl.DataFrame:
    return scan(settings.lake_url).collect()


def test_accepted_events_reach_the_lake_with_ids_and_meta(
    ingestor: Ingestor, settings: Settings
) -> None:
    ids = ingestor.accept_sync(make_events(5), NOW)
    assert len(set(ids)) == 5 and ids == sorted(ids)
    assert ingestor.stats()["wal"]["events"] == 5
    assert ingestor.flush() == 5
    frame = _lake(settings).sort("id")
    assert frame["id"].to_list() == ids
    assert frame["meta"].to_list()[0] == '{"i":0}'
    assert frame["received_at"].to_list()[0] == NOW
    stats = ingestor.stats()
    assert stats["wal"]["events"] == 0 and stats["lastFlushAt"] == "2026-11-26T12:00:00Z"


def test_async_accept_group_commits_concurrent_requests(
    ingestor: Ingestor, settings: Settings
) -> None:
    async def many() -> list[list[str]]:
        return await asyncio.gather(*(ingestor.accept(make_events(2), NOW) for _ in range(50)))

    results = asyncio.run(many())
    [segment] = [s for s in ingestor._require_folder().segments()]
    # 50 requests, far fewer fsync'ed groups: all records are there, framed one per request.
    assert len(list(read_records(segment.path))) == 50
    ingestor.flush()
    assert _lake(settings)["id"].n_unique() == 100 == sum(len(r) for r in results)


def test_replaying_a_flushed_segment_does_not_duplicate(settings: Settings) -> None:
    folder = WalFolder.create(settings.wal_dir)
    wal = WriteAheadLog(folder, rotate_events=1000)
    ing = Ingestor(settings)
    ing.start(background=False)
    record, _ = ing._record(make_events(7), NOW)
    wal.append_group([record], 7)
    wal.rotate()
    [segment] = wal.sealed()
    # Crash after the Parquet rename but before the segment was deleted:
    assert flush_segment(segment, lake_url=settings.lake_url) == 7
    folder.release(remove=False)  # the "dead" process lets go of its lock
    assert ing.adopt_orphans() == 7  # replayed into the same file names
    assert not folder.path.exists()
    frame = _lake(settings)
    assert frame.height == 7 and frame["id"].n_unique() == 7
    ing.stop()


def test_orphan_with_torn_tail_replays_complete_records(settings: Settings) -> None:
    folder = WalFolder.create(settings.wal_dir)
    wal = WriteAheadLog(folder, rotate_events=1000)
    helper = Ingestor(settings)
    helper.start(background=False)
    record, ids = helper._record(make_events(3), NOW)
    wal.append_group([record], 3)
    with open(folder.segments()[0].path, "ab") as torn:
        torn.write(encode_record(b'{"id": ["never acknowledged"]}')[:-4])
    folder.release(remove=False)
    assert helper.adopt_orphans() == 3
    assert sorted(_lake(settings)["id"].to_list()) == sorted(ids)
    helper.stop()


def test_segments_rotate_at_flush_max_events(settings: Settings) -> None:
    ing = Ingestor(settings.model_copy(update={"flush_max_events": 10}), clock=lambda: NOW)
    ing.start(background=False)
    for _ in range(6):
        ing.accept_sync(make_events(4), NOW)
    assert len(ing._require_wal().sealed()) == 2  # rotated at 12 and 12 events
    ing.flush()
    assert _lake(settings).height == 24
    ing.stop()


def test_backlog_over_limit_pushes_back(settings: Settings) -> None:
    ing = Ingestor(settings.model_copy(update={"max_wal_backlog_bytes": 2000}), clock=lambda: NOW)
    ing.start(background=False)
    with pytest.raises(Overloaded) as info:
        for _ in range(100):
            ing.accept_sync(make_events(5), NOW)
    assert info.value.retry_after >= 1 and "max_wal_backlog_bytes" in str(info.value)
    ing.flush()  # the flusher drains the backlog, then events are welcome again
    ing.accept_sync(make_events(5), NOW)
    ing.stop()


def test_stop_flushes_and_removes_the_wal_folder(settings: Settings) -> None:
    ing = Ingestor(settings, clock=lambda: NOW)
    ing.start()  # with the background flusher
    folder: Path = ing._require_folder().path
    ing.accept_sync(make_events(3), NOW)
    ing.stop()
    assert not folder.exists()
    assert _lake(settings).height == 3


def test_background_flusher_writes_within_the_interval(settings: Settings) -> None:
    ing = Ingestor(settings.model_copy(update={"flush_interval_s": 0.05}), clock=lambda: NOW)
    ing.start()
    ing.accept_sync(make_events(4), NOW)
    wait_until(lambda: ing.flushed_events == 4, what="the flusher wrote the 4 events")
    assert _lake(settings).height == 4
    ing.stop()


def test_a_large_idle_backlog_is_flushed_without_waiting_for_the_interval(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The end of a burst becomes queryable at once; a trickle waits for the interval.
    monkeypatch.setattr(ingestor_module, "_IDLE_FLUSH_EVENTS", 20)
    ing = Ingestor(settings.model_copy(update={"flush_interval_s": 300}), clock=lambda: NOW)
    wake = ing._wake = CountingEvent()  # counts the flusher's idle checks
    ing.start()
    try:
        # The first round (orphans, an empty flush) is over once it stamps last_flush_at.
        wait_until(lambda: ing.last_flush_at is not None, what="the flusher's first round")
        ing.accept_sync(make_events(5), NOW)
        # Three idle checks later (each after _IDLE_S without appends): still nothing.
        checks = wake.waits
        wait_until(lambda: wake.waits >= checks + 3, what="three idle checks")
        assert ing.flushed_events == 0  # under the idle threshold: waits for the interval
        ing.accept_sync(make_events(20), NOW)
        # Long before the 300 s interval (wait_until gives up after 30 s).
        wait_until(lambda: ing.flushed_events == 25, what="the idle backlog flushed")
        assert _lake(settings).height == 25
    finally:
        ing.stop()


def test_large_batches_travel_as_arrow_and_replay_identically(
    ingestor: Ingestor, settings: Settings
) -> None:
    ids = ingestor.accept_sync(make_events(40), NOW)  # over the Arrow IPC threshold
    ids += ingestor.accept_sync(make_events(3), NOW)  # JSON
    [segment] = ingestor._require_folder().segments()
    assert [r[:1] == b"{" for r in read_records(segment.path)] == [False, True]
    ingestor.flush()
    frame = _lake(settings).sort("id")
    assert frame["id"].to_list() == sorted(ids)
    assert frame.filter(pl.col("message") == "m39")["meta"].to_list() == ['{"i":39}']
