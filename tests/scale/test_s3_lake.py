"""The lake on object storage (issue 13 item 1), against moto's S3 server as a stand-in.

Each test gets a fresh ``s3://bucket/lake`` (``tests/s3_helpers.py``; a real S3/MinIO when
``WORKBENCH_TEST_S3_URL`` is set) and the AWS variables in the environment, as a deployment
sets them: the writer, the reader, ``workbench.logs()``, error counts, compaction,
retention and ``verify`` all address the lake through them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from tests.s3_helpers import s3_lake
from workbench import error_counts, logs
from workbench.config import Settings
from workbench.lake import fs as lakefs
from workbench.lake import reader
from workbench.lake.compaction import compact_partition
from workbench.lake.integrity import committed_files, verify_lake
from workbench.lake.retention import apply_retention
from workbench.lake.schema import SCHEMA
from workbench.lake.writer import write_batch

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
DAY1 = NOW - timedelta(days=2)


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """A fresh S3 lake URL, the AWS variables set, and Settings over it."""
    with s3_lake() as (url, env):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        settings = Settings(WORKBENCH_DATA_DIR=tmp_path, WORKBENCH_LAKE_URL=url)  # type: ignore[call-arg]
        yield url, settings


def _table(n: int, at: datetime, *, service: str = "api", start: int = 0) -> pa.Table:
    ts = [at + timedelta(milliseconds=i) for i in range(n)]
    return pa.table(
        {
            "id": [f"{at:%Y%m%d}-{start + i:09d}" for i in range(n)],
            "timestamp": ts,
            "received_at": ts,
            "service": [service] * n,
            "level": ["error" if i % 4 == 0 else "info" for i in range(n)],
            "message": [f"m{start + i}" for i in range(n)],
            "meta": [None] * n,
        },
        schema=SCHEMA,
    )


def _error_total(settings: Settings) -> int:
    frame = error_counts(DAY1 - timedelta(days=1), NOW, every="1d", settings=settings)
    return int(frame["count"].sum())


def test_s3_standin_writer_and_readers_see_the_same_rows(lake: tuple[str, Settings]) -> None:
    url, settings = lake
    write_batch(_table(400, DAY1), lake_url=url, name="w1-000001")
    write_batch(_table(200, NOW - timedelta(hours=1), start=400), lake_url=url, name="w1-000002")
    write_batch(_table(100, NOW - timedelta(hours=1), start=600), lake_url=url, name="w1-000003")

    assert [d for d, _ in reader.partitions(url)] == [DAY1.date(), NOW.date()]
    assert reader.scan(url).select(pl.len()).collect().item() == 700
    frame = logs(DAY1 - timedelta(days=1), NOW, settings=settings).collect()
    assert frame.height == 700 and frame["id"].n_unique() == 700
    assert _error_total(settings) == 100 + 50 + 25
    # Nothing was written through a temporary name.
    names = [p.rsplit("/", 1)[-1] for p in committed_files(url)]
    assert sorted(names) == [
        "part-w1-000001.parquet",
        "part-w1-000002.parquet",
        "part-w1-000003.parquet",
    ]
    # The same name and rows again (a WAL replay): overwritten, not doubled.
    write_batch(_table(400, DAY1), lake_url=url, name="w1-000001")
    assert reader.scan(url).select(pl.len()).collect().item() == 700


def test_s3_standin_a_concurrent_lister_never_sees_an_incomplete_file(
    lake: tuple[str, Settings],
) -> None:
    url, _ = lake
    filesystem, root = lakefs.resolve(url)
    folder = f"{root}/logs/date={NOW.date().isoformat()}"
    seen: set[str] = set()
    stop = threading.Event()

    def lister() -> None:
        while not stop.is_set():
            for entry in lakefs.list_dir(filesystem, folder):
                seen.add(entry.base_name)
                if entry.size != -1 and not entry.base_name.startswith((".", "_")):
                    # Whatever a reader may pick up must be whole: its footer reads.
                    reader.read_stat(filesystem, entry, NOW.date())

    thread = threading.Thread(target=lister)
    thread.start()
    try:
        # Large enough for a multipart upload (several parts of pyarrow's S3 output stream).
        big = _table(400_000, NOW - timedelta(hours=2))
        big = big.set_column(5, "message", pa.array([f"{i:x}" * 8 for i in range(big.num_rows)]))
        write_batch(big, lake_url=url, name="w1-big")
    finally:
        stop.set()
        thread.join()
    assert not [n for n in seen if ".tmp" in n], seen
    assert reader.scan(url).select(pl.len()).collect().item() == 400_000


def test_s3_standin_compaction_retention_and_verify(lake: tuple[str, Settings]) -> None:
    url, settings = lake
    for i in range(4):
        write_batch(_table(50, DAY1, start=50 * i), lake_url=url, name=f"w1-{i:06d}")
    for i in range(3):
        at = NOW - timedelta(hours=1)
        write_batch(_table(40, at, start=1000 + 40 * i), lake_url=url, name=f"w2-{i:06d}")
    before = _error_total(settings)

    result = compact_partition(url, DAY1.date())
    assert result.merged == 4 and result.rows == 200 and result.compacted_file
    assert result.deleted == 4
    assert _error_total(settings) == before
    assert reader.scan(url).select(pl.len()).collect().item() == 320
    names = [p.rsplit("/", 1)[-1] for p in committed_files(url)]
    assert len(names) == 4 and sum(n.startswith("compact-") for n in names) == 1

    report = verify_lake(url)
    assert report.checked == 4 and report.damaged == []

    removed = apply_retention(url, days=1, now=NOW)
    assert [r.day for r in removed] == [DAY1.date()]
    assert [d for d, _ in reader.partitions(url)] == [NOW.date()]
    assert reader.scan(url).select(pl.len()).collect().item() == 120
    assert verify_lake(url).checked == 3


def test_polars_gets_the_aws_variables_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    for name in ("AWS_REGION", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert lakefs.storage_options("s3://b/lake/x.parquet") == {
        "aws_endpoint_url": "http://127.0.0.1:9000",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
        "aws_region": "eu-west-1",
        "aws_allow_http": "true",
    }
    assert lakefs.storage_options("/srv/lake/x.parquet") is None


def test_s3_standin_a_damaged_file_is_reported_by_verify_and_quarantined_by_readers(
    lake: tuple[str, Settings],
) -> None:
    url, _ = lake
    (path,) = write_batch(_table(300, DAY1), lake_url=url, name="w1-000001")
    write_batch(_table(100, DAY1, start=300), lake_url=url, name="w1-000002")
    filesystem, _ = lakefs.resolve(url)
    with filesystem.open_input_file(path) as handle:
        data = bytearray(handle.read())
    data[200] ^= 0xFF  # inside the first data page; the footer stays intact
    # A file's version on object storage is its size and listed modification time, which
    # S3 gives to the second: bytes of the same size put within the second of the commit
    # would keep the facts the writer kept (docs/lake.md, "Integrity"). Damage comes later.
    info = filesystem.get_file_info(path)
    while filesystem.get_file_info(path).mtime_ns == info.mtime_ns:
        time.sleep(0.2)
        with filesystem.open_output_stream(f"{path}.clock"):  # the store's clock, not ours
            pass
        info = filesystem.get_file_info(f"{path}.clock")
    filesystem.delete_file(f"{path}.clock")
    with filesystem.open_output_stream(path) as sink:
        sink.write(bytes(data))

    report = verify_lake(url)
    assert report.checked == 2 and [p for p, _ in report.damaged] == [path]
    assert reader.scan(url).select(pl.len()).collect().item() == 100
    assert [q.rsplit("/", 1)[-1] for q in verify_lake(url).quarantined] == [
        "part-w1-000001.parquet"
    ]


def test_s3_standin_the_lakes_first_reader_reads_facts_not_files(
    lake: tuple[str, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer keeps each file's facts as objects under ``<lake>/_facts/`` (issue 13 item 6):
    a new process on object storage answers totals and error counts without reading a file
    for them; compaction and retention take the facts of the files they remove with them."""
    from workbench.lake import committed, facts, integrity
    from workbench.query import trends
    from workbench.query.search import search
    from workbench.query.types import SearchQuery

    url, settings = lake
    write_batch(_table(400, DAY1), lake_url=url, name="w1-000001")
    write_batch(_table(200, DAY1, start=400), lake_url=url, name="w1-000002")
    write_batch(_table(100, NOW - timedelta(hours=1), start=600), lake_url=url, name="w1-000003")
    filesystem, root = lakefs.resolve(url)
    kept = [e.base_name for e in _facts_under(filesystem, f"{root}/{facts.FACTS_DIR}")]
    assert sorted({n.split(".parquet.", 1)[1].split("-", 1)[0] for n in kept}) == [
        "errmin",
        "keys",
        "stat",
    ]
    assert len(kept) == 9

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a lake file was read for its facts")

    for cache in (reader._footer_cache, reader._key_counts_cache, trends._rollups):
        cache.clear()
    with monkeypatch.context() as patched:
        patched.setattr(integrity, "crc_damage", refuse)
        patched.setattr(committed, "key_counts_of", refuse)
        patched.setattr(committed, "error_minutes_of", refuse)
        assert search(url, SearchQuery(service="api")).total == 700
        assert _error_total(settings) == 100 + 50 + 25
        trend = trends.error_trend(url, service="api", range="7d", now=NOW)
        assert sum(p.count for p in trend) == 100 + 50 + 25

    compact_partition(url, DAY1.date())
    day1 = [
        e.base_name
        for e in _facts_under(filesystem, f"{root}/{facts.FACTS_DIR}/date={DAY1:%Y-%m-%d}")
    ]
    assert day1 and all(n.startswith("compact-") for n in day1)
    apply_retention(url, days=1, now=NOW)
    assert _facts_under(filesystem, f"{root}/{facts.FACTS_DIR}/date={DAY1:%Y-%m-%d}") == []


def _facts_under(filesystem: object, prefix: str) -> list[lakefs.Entry]:
    """Return the fact objects under ``prefix`` (recursively)."""
    import pyarrow.fs as pafs

    assert isinstance(filesystem, pafs.FileSystem)
    infos = filesystem.get_file_info(
        pafs.FileSelector(prefix, recursive=True, allow_not_found=True)
    )
    return [
        lakefs.Entry(i.path, i.base_name, i.size or 0, i.mtime_ns or 0)
        for i in infos
        if i.type == pafs.FileType.File
    ]


def test_s3_standin_text_search_builds_the_message_index_of_a_file_without_one(
    lake: tuple[str, Settings],
) -> None:
    """A file whose writer kept no message index (another tool wrote it) is indexed in the
    background on object storage too, through the lake's filesystem, and kept there."""
    from workbench.lake import committed, message_index
    from workbench.query.search import search
    from workbench.query.types import SearchQuery

    url, _ = lake
    table = _table(300, DAY1)
    repeated = pa.array([("db timeout", "ok", "slow query")[i % 3] for i in range(300)])
    table = table.set_column(table.schema.get_field_index("message"), "message", repeated)
    write_batch(table, lake_url=url, name="w1-000001")
    filesystem, root = lakefs.resolve(url)
    kept = [
        e
        for e in _facts_under(filesystem, f"{root}/_facts")
        if f".{committed.MSGIDX_KIND}-" in e.base_name
    ]
    assert len(kept) == 1
    filesystem.delete_file(kept[0].path)
    message_index.reset_message_index()
    reader._footer_cache.clear()
    assert search(url, SearchQuery(text="TIMEOUT")).total == 100  # scanned this time
    message_index.wait_for_message_index()
    assert message_index.message_index_stats()["files"] == 1
    assert [e.base_name for e in _facts_under(filesystem, f"{root}/_facts")].count(
        kept[0].base_name
    ) == 1
    assert search(url, SearchQuery(text="TIMEOUT")).total == 100
