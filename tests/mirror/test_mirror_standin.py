"""The Elasticsearch mirror against ``ELASTIC_URL`` (the stand-in unless a real cluster is given).

Tests that need Elasticsearch to fail on purpose use the stand-in's knobs and
are skipped on a real server; every other test runs unchanged against both.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from elasticsearch import Elasticsearch

from tests.factories import T0, make_events, write_events
from tests.mirror.es_standin import ElasticStandin
from workbench.cli.mirror import group
from workbench.config import Settings, get_settings
from workbench.errors import ConfigError
from workbench.events import Limits, validate_event
from workbench.lake import reader
from workbench.lake.ingestor import Ingestor
from workbench.mirror.backfill import backfill
from workbench.mirror.bulk import MirrorUnavailable, Retry
from workbench.mirror.elastic import MirrorSettings, make_client
from workbench.mirror.follower import Follower, MirrorBusy, run_follower
from workbench.mirror.state import MirrorState, state_path
from workbench.mirror.status import consistency, mirror_health, mirror_status

FAST = Retry(
    item_retries=2,
    item_backoff_s=0.01,
    item_max_backoff_s=0.02,
    initial_backoff_s=0.02,
    max_backoff_s=0.1,
)
DAY1 = T0
DAY2 = T0 + timedelta(days=1)


def _follower(settings: Settings, ms: MirrorSettings, es: Elasticsearch) -> Follower:
    return Follower(settings, ms, es, retry=FAST)


def _count(es: Elasticsearch, index: str, query: dict[str, Any] | None = None) -> int:
    """Return the document count after a refresh (a real cluster shows new documents only then)."""
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    kwargs: dict[str, Any] = {"query": query} if query else {}
    return int(es.count(index=index, ignore_unavailable=True, **kwargs)["count"])


def _es_ids(es: Elasticsearch, index: str) -> list[str]:
    """Return every document id (paged with search_after on the ``id`` keyword field)."""
    es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
    ids: list[str] = []
    after: list[Any] | None = None
    while True:
        kwargs: dict[str, Any] = {"search_after": after} if after else {}
        # The stand-in sorts every document for each page in Python: under a loaded
        # machine a page of a large index takes longer than the client's default 5 s.
        hits = es.options(request_timeout=120).search(
            index=index, size=5_000, query={"match_all": {}}, sort=[{"id": "asc"}], **kwargs
        )["hits"]["hits"]
        if not hits:
            return sorted(ids)
        ids += [h["_id"] for h in hits]
        after = hits[-1]["sort"]


def _lake_ids(settings: Settings) -> list[str]:
    return sorted(reader.scan(settings.lake_url).select("id").collect()["id"].to_list())


def _two_day_lake(settings: Settings) -> int:
    write_events(settings.lake_url, make_events(n=30, start=DAY1, service="api"))
    write_events(
        settings.lake_url,
        make_events(n=20, start=DAY1, service="billing", level="error", message="payment declined"),
    )
    write_events(settings.lake_url, make_events(n=25, start=DAY2, service="api"))
    return 75


def test_standin_indexes_events_into_daily_indices_by_event_id(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    total = _two_day_lake(mirror_env)
    result = _follower(mirror_env, mirror_config, es).run_once()
    assert (result.indexed, result.failed, result.pending_events) == (total, 0, 0)
    p = mirror_config.index_prefix
    assert _count(es, f"{p}{DAY1.date().isoformat()}") == 50
    assert _count(es, f"{p}{DAY2.date().isoformat()}") == 25
    assert _count(es, f"{p}*", {"term": {"service": "billing"}}) == 20
    assert _count(es, f"{p}*", {"match": {"message": "declined"}}) == 20
    assert _es_ids(es, f"{p}*") == _lake_ids(mirror_env)
    # The template was installed first, so fields have the promised types.
    tpl = es.indices.get_index_template(name=mirror_config.template_name)
    props = tpl["index_templates"][0]["index_template"]["template"]["mappings"]["properties"]
    assert props["service"]["type"] == "keyword" and props["level"]["type"] == "keyword"
    assert props["message"]["fields"]["keyword"]["type"] == "keyword"
    assert props["timestamp"]["type"] == "date_nanos"
    hit = es.search(index=f"{p}*", query={"term": {"service": "billing"}}, size=1)["hits"]["hits"][
        0
    ]
    assert hit["_source"]["level"] == "error" and hit["_source"]["timestamp"].endswith("Z")


def test_standin_replay_and_backfill_never_duplicate(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    total = _two_day_lake(mirror_env)
    _follower(mirror_env, mirror_config, es).run_once()
    # Lose the cursor entirely: everything is sent again, under the same ids.
    state_path(mirror_env).unlink()
    again = _follower(mirror_env, mirror_config, es).run_once()
    assert again.indexed == total
    r = backfill(
        mirror_env,
        mirror_config,
        es,
        DAY1 - timedelta(days=1),
        DAY2 + timedelta(days=1),
        retry=FAST,
    )
    assert (r.events, r.indexed, r.failed) == (total, total, 0)
    assert _count(es, f"{mirror_config.index_prefix}*") == total
    assert _es_ids(es, f"{mirror_config.index_prefix}*") == _lake_ids(mirror_env)


def test_standin_restart_continues_from_the_cursor(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    write_events(mirror_env.lake_url, make_events(n=10, start=DAY1))
    first = _follower(mirror_env, mirror_config, es)
    assert first.run_once().files_sent == 1
    first.state.close()
    write_events(mirror_env.lake_url, make_events(n=7, start=DAY1 + timedelta(hours=1)))
    second = _follower(mirror_env, mirror_config, es)  # a new process, same state file
    result = second.run_once()
    assert (result.files_sent, result.indexed) == (1, 7)
    assert second.run_once().files_sent == 0
    assert _count(es, f"{mirror_config.index_prefix}*") == 17


@pytest.mark.parametrize("mode", ["refuse", "503"])
def test_standin_down_under_ingest_then_back_every_event_exactly_once(
    mode: str,
    mirror_env: Settings,
    mirror_config: MirrorSettings,
    es: Elasticsearch,
    knobs: ElasticStandin,
) -> None:
    stop_writer, stop_follower = threading.Event(), threading.Event()
    written: list[int] = []

    def ingest() -> None:
        i = 0
        while not stop_writer.is_set():
            start = DAY1 + timedelta(minutes=i)
            write_events(mirror_env.lake_url, make_events(n=20, start=start, service=f"svc{i % 3}"))
            written.append(20)
            i += 1
            time.sleep(0.02)

    follower = _follower(mirror_env, mirror_config, es)
    threads = [
        threading.Thread(target=ingest),
        threading.Thread(target=follower.run, args=(stop_follower,)),
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        knobs.go_down(mode)
        time.sleep(1.0)  # Elasticsearch away while events keep arriving
        down_status = mirror_status(mirror_env)
        knobs.come_back()
        time.sleep(0.3)
        stop_writer.set()
        threads[0].join()
        _wait(lambda: mirror_status(mirror_env).events_behind == 0, timeout=20)
    finally:
        stop_writer.set()
        stop_follower.set()
        for t in threads:
            t.join(timeout=10)
        follower.state.close()
    assert down_status.last_error is not None
    total = sum(written)
    index = f"{mirror_config.index_prefix}*"
    assert _count(es, index) == total == len(_lake_ids(mirror_env))
    assert _es_ids(es, index) == _lake_ids(mirror_env)
    st = mirror_status(mirror_env)
    assert st.failure_count == 0 and st.healthy


def test_standin_poisoned_document_is_recorded_and_does_not_block_the_rest(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    # Runs on a real cluster too: dynamic mapping makes meta.attempt a long first.
    rows = [{"timestamp": DAY1 + timedelta(seconds=i), "meta": {"attempt": i}} for i in range(5)]
    rows.append(
        {
            "timestamp": DAY1 + timedelta(seconds=9),
            "id": "poison-1",
            "meta": {"attempt": "first try"},
        }
    )
    rows += [
        {"timestamp": DAY1 + timedelta(seconds=10 + i), "meta": {"attempt": i}} for i in range(5)
    ]
    write_events(mirror_env.lake_url, make_events(rows))
    # A long is not a meaningful datum here; the order inside one bulk decides the type.
    follower = _follower(mirror_env, mirror_config, es)
    result = follower.run_once()
    assert (result.indexed, result.failed, result.pending_files) == (10, 1, 0)
    [failure] = follower.state.failures()
    assert failure.event_id == "poison-1"
    assert failure.status == 400 and "meta.attempt" in failure.reason
    assert failure.index_name == f"{mirror_config.index_prefix}{DAY1.date().isoformat()}"
    assert failure.file.endswith(".parquet")
    assert _count(es, f"{mirror_config.index_prefix}*") == 10
    assert mirror_status(mirror_env).failure_count == 1
    # Later files are not held back by the recorded failure.
    write_events(
        mirror_env.lake_url, make_events(n=3, start=DAY1 + timedelta(hours=2), meta={"attempt": 1})
    )
    assert follower.run_once().indexed == 3


def test_standin_rejected_by_predicate_recorded_with_reason(
    mirror_env: Settings,
    mirror_config: MirrorSettings,
    es: Elasticsearch,
    knobs: ElasticStandin,
) -> None:
    knobs.reject = lambda index, doc_id, src: (
        "rejected by test predicate" if src.get("service") == "bad" else None
    )
    write_events(mirror_env.lake_url, make_events(n=4, start=DAY1))
    write_events(mirror_env.lake_url, make_events(n=2, start=DAY1, service="bad"))
    follower = _follower(mirror_env, mirror_config, es)
    result = follower.run_once()
    assert (result.indexed, result.failed) == (4, 2)
    assert {f.reason for f in follower.state.failures()} == {"rejected by test predicate"}
    # A backfill after the cause is fixed clears the failures of events that now succeed.
    knobs.reject = None
    backfill(
        mirror_env,
        mirror_config,
        es,
        DAY1 - timedelta(hours=1),
        DAY2,
        retry=FAST,
        state=follower.state,
    )
    assert follower.state.failure_count() == 0
    assert _count(es, f"{mirror_config.index_prefix}*") == 6


def test_standin_retryable_item_errors_are_retried_then_caught_up(
    mirror_env: Settings,
    mirror_config: MirrorSettings,
    es: Elasticsearch,
    knobs: ElasticStandin,
) -> None:
    seen: dict[str, int] = {}

    def flaky(index: str, doc_id: str, src: dict[str, Any]) -> int | None:
        seen[doc_id] = seen.get(doc_id, 0) + 1
        return 429 if seen[doc_id] <= 2 else None  # overloaded twice, then fine

    knobs.item_status = flaky
    write_events(mirror_env.lake_url, make_events(n=8, start=DAY1))
    follower = _follower(mirror_env, mirror_config, es)
    assert follower.run_once().indexed == 8
    # Always 503 per item: retries run out, nothing is recorded as mirrored or failed.
    knobs.item_status = lambda index, doc_id, src: 503
    write_events(mirror_env.lake_url, make_events(n=5, start=DAY1 + timedelta(hours=1)))
    with pytest.raises(MirrorUnavailable, match="503"):
        follower.run_once()
    assert follower.state.failure_count() == 0
    assert mirror_status(mirror_env).events_behind == 5
    knobs.item_status = None
    assert follower.run_once().indexed == 5
    assert _count(es, f"{mirror_config.index_prefix}*") == 13


def test_standin_slow_server_does_not_slow_the_lake_writer(
    mirror_env: Settings,
    mirror_config: MirrorSettings,
    es: Elasticsearch,
    knobs: ElasticStandin,
) -> None:
    knobs.delay_s = 0.3
    stop = threading.Event()
    follower = _follower(mirror_env, mirror_config, es)
    t = threading.Thread(target=follower.run, args=(stop,))
    t.start()
    try:
        t0 = time.perf_counter()
        for i in range(10):
            write_events(mirror_env.lake_url, make_events(n=10, start=DAY1 + timedelta(minutes=i)))
        elapsed = time.perf_counter() - t0
        knobs.delay_s = 0.0
        _wait(lambda: mirror_status(mirror_env).events_behind == 0, timeout=20)
    finally:
        stop.set()
        t.join(timeout=10)
        follower.state.close()
    assert elapsed < 1.5  # ten writes never waited on a 0.3 s server
    assert _count(es, f"{mirror_config.index_prefix}*") == 100


def test_standin_status_reports_lag_and_health(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    no_mirror = Settings(WORKBENCH_DATA_DIR=mirror_env.data_dir, ELASTIC_URL="")  # type: ignore[call-arg]
    assert mirror_health(no_mirror) is None
    assert mirror_health(mirror_env)["status"] == "starting"  # type: ignore[index]
    write_events(mirror_env.lake_url, make_events(n=12, start=DAY1))
    write_events(mirror_env.lake_url, make_events(n=8, start=DAY2))
    st = mirror_status(mirror_env, now=time.time() + 30)
    assert (st.events_behind, st.pending_files) == (20, 2)
    assert st.seconds_behind >= 29
    follower = _follower(mirror_env, mirror_config, es)
    follower.run(max_passes=1)
    st = mirror_status(mirror_env)
    assert (st.events_behind, st.pending_files, st.seconds_behind) == (0, 0, 0.0)
    assert st.follower_running and st.healthy and st.last_error is None
    health = mirror_health(mirror_env)
    assert health is not None
    assert health["status"] == "ok" and health["events_behind"] == 0
    assert health["failure_count"] == 0
    assert mirror_health(mirror_env, now=time.time() + 3600)["status"] == "stopped"  # type: ignore[index]


def test_standin_health_shows_error_while_elasticsearch_is_down(
    mirror_env: Settings,
    mirror_config: MirrorSettings,
    es: Elasticsearch,
    knobs: ElasticStandin,
) -> None:
    write_events(mirror_env.lake_url, make_events(n=5, start=DAY1))
    knobs.go_down("refuse")
    _follower(mirror_env, mirror_config, es).run(max_passes=2)
    health = mirror_health(mirror_env)
    assert health is not None
    assert health["status"] == "error" and health["events_behind"] == 5
    assert "unreachable" in (health["last_error"] or "")


def test_standin_consistency_lists_differences_and_backfill_repairs(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    total = _two_day_lake(mirror_env)
    _follower(mirror_env, mirror_config, es).run_once()
    start, end = DAY1.replace(hour=0), DAY2.replace(hour=0) + timedelta(days=1)
    p = mirror_config.index_prefix
    ok = consistency(mirror_env.lake_url, es, start, end, index_prefix=p, refresh=True)
    assert ok.consistent and ok.lake_total == ok.elastic_total == total
    es.indices.delete(index=f"{p}{DAY1.date().isoformat()}")
    bad = consistency(mirror_env.lake_url, es, start, end, index_prefix=p, refresh=True)
    assert not bad.consistent
    assert {(d.day, d.service, d.lake, d.elastic) for d in bad.differences} == {
        (DAY1.date(), "api", 30, 0),
        (DAY1.date(), "billing", 20, 0),
    }
    r = backfill(
        mirror_env,
        mirror_config,
        es,
        DAY1.replace(hour=0),
        DAY1.replace(hour=0) + timedelta(days=1),
        retry=FAST,
    )
    assert (r.events, r.indexed) == (50, 50)
    assert consistency(mirror_env.lake_url, es, start, end, index_prefix=p, refresh=True).consistent


def test_standin_compacted_file_of_mirrored_events_is_not_resent(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    for i in range(3):
        write_events(
            mirror_env.lake_url, make_events(n=5, start=DAY1 + timedelta(minutes=i)), name=f"s{i}"
        )
    follower = _follower(mirror_env, mirror_config, es)
    assert follower.run_once().files_sent == 3
    folder = Path(mirror_env.lake_url) / "logs" / f"date={DAY1.date().isoformat()}"
    _compact(folder, ["part-s0.parquet", "part-s1.parquet", "part-s2.parquet"], "c1")
    result = follower.run_once()
    assert (result.files_sent, result.files_skipped, result.indexed) == (0, 1, 0)
    # A re-compaction after the first sources are gone is recognised too (transitively).
    write_events(mirror_env.lake_url, make_events(n=4, start=DAY1 + timedelta(hours=1)), name="s3")
    assert follower.run_once().indexed == 4
    _compact(folder, ["compact-c1.parquet", "part-s3.parquet"], "c2")
    result = follower.run_once()
    assert (result.files_sent, result.files_skipped) == (0, 1)
    # A compacted file whose sources were never mirrored is sent (ids make it harmless).
    write_events(mirror_env.lake_url, make_events(n=6, start=DAY1 + timedelta(hours=2)), name="s4")
    _compact(folder, ["compact-c2.parquet", "part-s4.parquet"], "c3")
    result = follower.run_once()
    assert (result.files_sent, result.indexed) == (1, 25)
    assert _count(es, f"{mirror_config.index_prefix}*") == 25
    assert _es_ids(es, f"{mirror_config.index_prefix}*") == _lake_ids(mirror_env)


def _compact(folder: Path, sources: list[str], name: str) -> None:
    """Merge ``sources`` into ``compact-{name}.parquet`` as the compactor does, then delete them."""
    tables = [pq.read_table(folder / s) for s in sources]
    replaced: set[str] = set(sources)
    for s in sources:
        kv = pq.read_metadata(folder / s).metadata or {}
        if reader.REPLACES_KEY in kv:
            replaced |= set(json.loads(kv[reader.REPLACES_KEY]))
    merged = pa.concat_tables(tables)
    merged = merged.replace_schema_metadata(
        {**(merged.schema.metadata or {}), reader.REPLACES_KEY: json.dumps(sorted(replaced))}
    )
    tmp = folder / f".tmp-{uuid.uuid4().hex}.parquet"
    pq.write_table(merged, tmp)
    tmp.rename(folder / f"compact-{name}.parquet")
    for s in sources:
        (folder / s).unlink()


def test_standin_one_follower_per_data_directory(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    stop = threading.Event()
    t = threading.Thread(
        target=run_follower, args=(mirror_env, mirror_config, es, stop), kwargs={"retry": FAST}
    )
    t.start()
    try:
        _wait(
            lambda: MirrorState(state_path(mirror_env)).meta().get("last_pass_at") is not None,
            timeout=10,
        )
        with pytest.raises(MirrorBusy):
            run_follower(mirror_env, mirror_config, es, stop)
    finally:
        stop.set()
        t.join(timeout=10)


def test_standin_cli_status_backfill_and_check(
    mirror_env: Settings,
    mirror_config: MirrorSettings,
    es: Elasticsearch,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(mirror_env.data_dir))
    monkeypatch.setenv("ELASTIC_URL", mirror_config.elastic_url or "")
    monkeypatch.setenv("ELASTIC_INDEX_PREFIX", mirror_config.index_prefix)
    get_settings.cache_clear()
    try:
        write_events(mirror_env.lake_url, make_events(n=6, start=DAY1, service="api"))
        runner = CliRunner()
        out = runner.invoke(group, ["status"])
        assert out.exit_code == 0, out.output
        assert "6 events in 1 files" in out.output
        day = DAY1.date().isoformat()
        out = runner.invoke(group, ["check", "--from", day, "--to", day])
        assert out.exit_code == 1 and "api" in out.output and "6" in out.output
        out = runner.invoke(group, ["backfill", "--from", day, "--to", day])
        assert out.exit_code == 0 and "re-indexed 6 of 6" in out.output, out.output
        out = runner.invoke(group, ["check", "--from", day, "--to", day])
        assert out.exit_code == 0 and "consistent" in out.output, out.output
        out = runner.invoke(group, ["status", "--json"])
        assert json.loads(out.output)["events_behind"] == 6  # backfill does not move the cursor
    finally:
        get_settings.cache_clear()


def _wait(predicate: Callable[[], bool], *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def test_standin_event_dates_use_utc(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    late = datetime(2026, 11, 20, 23, 59, 59, 999999, tzinfo=UTC)
    write_events(
        mirror_env.lake_url,
        make_events(
            [
                {"timestamp": late, "id": "late"},
                {"timestamp": late + timedelta(microseconds=1), "id": "early"},
            ]
        ),
    )
    _follower(mirror_env, mirror_config, es).run_once()
    p = mirror_config.index_prefix
    assert _es_ids(es, f"{p}2026-11-20") == ["late"]
    assert _es_ids(es, f"{p}2026-11-21") == ["early"]


@pytest.mark.slow
def test_standin_down_for_a_minute_under_real_ingest_load(
    data_dir: Path,
    elastic_url: str,
    mirror_config: MirrorSettings,
    es: Elasticsearch,
    knobs: ElasticStandin,
) -> None:
    """The issue's scenario: the real ingestor (WAL -> Parquet) under load, ES away for a minute.

    ``WORKBENCH_TEST_MIRROR_OUTAGE_SECONDS`` shortens the outage for local runs.
    """
    outage = float(os.environ.get("WORKBENCH_TEST_MIRROR_OUTAGE_SECONDS", "60"))
    settings = Settings(
        WORKBENCH_DATA_DIR=data_dir,
        ELASTIC_URL=elastic_url,  # type: ignore[call-arg]
        WORKBENCH_FLUSH_INTERVAL_SECONDS=0.2,
    )
    ingestor = Ingestor(settings)
    ingestor.start()
    stop_load, stop_follower = threading.Event(), threading.Event()
    accepted: list[str] = []
    now = datetime.now(UTC)

    def load() -> None:
        i = 0
        while not stop_load.is_set():
            events = [
                validate_event(
                    {
                        "service": f"svc{j % 4}",
                        "level": "error",
                        "message": f"m{i}-{j}",
                        "meta": {"i": i},
                    },
                    now=now,
                    limits=Limits(),
                )
                for j in range(50)
            ]
            accepted.extend(ingestor.accept_sync(events, datetime.now(UTC)))
            i += 1
            time.sleep(0.05)

    follower = Follower(
        settings,
        mirror_config,
        es,
        retry=Retry(item_retries=1, item_backoff_s=0.05, initial_backoff_s=0.1, max_backoff_s=2.0),
    )
    threads = [
        threading.Thread(target=load),
        threading.Thread(target=follower.run, args=(stop_follower,)),
    ]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        knobs.go_down("refuse")
        time.sleep(outage)
        during = mirror_status(settings)
        knobs.come_back()
        time.sleep(2)
        stop_load.set()
        threads[0].join()
        ingestor.stop()  # flushes the rest of the WAL into the lake
        _wait(lambda: mirror_status(settings).events_behind == 0, timeout=120)
    finally:
        stop_load.set()
        stop_follower.set()
        for t in threads:
            t.join(timeout=30)
        follower.state.close()
    assert during.events_behind > 0 and during.last_error
    index = f"{mirror_config.index_prefix}*"
    assert _count(es, index) == len(accepted) == len(set(accepted))
    assert _es_ids(es, index) == sorted(accepted)


def test_standin_row_that_cannot_become_a_document_is_recorded(
    mirror_env: Settings, mirror_config: MirrorSettings, es: Elasticsearch
) -> None:
    table = make_events(n=3, start=DAY1)
    table = table.set_column(
        table.schema.get_field_index("meta"),
        "meta",
        pa.array([None, "{broken", '{"ok": 1}'], pa.string()),
    )
    write_events(mirror_env.lake_url, table)
    follower = _follower(mirror_env, mirror_config, es)
    result = follower.run_once()
    assert (result.indexed, result.failed) == (2, 1)
    [failure] = follower.state.failures()
    assert failure.event_id == table["id"][1].as_py()
    assert failure.error_type == "invalid_document" and "JSON" in failure.reason


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"ELASTIC_API_KEY": "a2V5OnNlY3JldA=="}, "ApiKey a2V5OnNlY3JldA=="),
        ({"ELASTIC_USERNAME": "elastic", "ELASTIC_PASSWORD": "pw"}, "Basic ZWxhc3RpYzpwdw=="),
    ],
)
def test_standin_client_sends_configured_credentials(
    env: dict[str, str], expected: str, elastic_url: str, knobs: ElasticStandin
) -> None:
    ms = MirrorSettings(ELASTIC_URL=elastic_url, **env)  # type: ignore[arg-type]
    make_client(ms).info()
    assert knobs.last_headers.get("authorization") == expected


def test_username_without_password_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ELASTIC_PASSWORD"):
        make_client(MirrorSettings(ELASTIC_URL="http://127.0.0.1:9", ELASTIC_USERNAME="u"))  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="ELASTIC_URL"):
        make_client(MirrorSettings(ELASTIC_URL=""))  # type: ignore[call-arg]
