"""The writer keeps each file's facts as it commits it: the lake's first reader reads no file.

Issue 13, item 6: a new process's first query on a 100M-event lake took 5-9 s when it was the
lake's first reader, because it read every file whole once (page CRCs, counts, rollups). The
process that commits a file holds its rows already, so it keeps those facts then.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.factories import T0, make_events, write_events
from tests.lake.test_message_index_facts import _FILTERS, _lake, _scanned
from tests.lake.test_message_index_facts import _no_file_reads as _no_message_reads
from workbench.lake import committed, compaction, facts, integrity, message_index, reader
from workbench.query import search as search_module
from workbench.query import trends
from workbench.query.search import search
from workbench.query.types import SearchQuery, build_filter


def _forget() -> None:
    """Empty the in-memory caches, as a newly started process has them."""
    for cache in (reader._footer_cache, reader._key_counts_cache, trends._rollups):
        cache.clear()


def _events(n: int = 40, offset: int = 0) -> list[dict[str, object]]:
    return [
        {
            "timestamp": T0 + timedelta(minutes=offset + i),
            "service": ("api", "db", "web")[i % 3],
            "level": ("error", "info", "fatal", "warn")[i % 4],
        }
        for i in range(n)
    ]


def _kept(lake: Path) -> dict[str, bytes]:
    """Return every kept fact (by name) under the lake's facts folder."""
    return {p.name: p.read_bytes() for p in (lake / facts.FACTS_DIR).rglob("*") if p.is_file()}


def _no_file_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record any read of a lake file for its facts from here on (page CRCs, counts, rollups)."""
    reads: list[str] = []

    def refuse(what: str) -> object:
        def call(*args: object, **kwargs: object) -> None:
            reads.append(what)
            raise AssertionError(f"a lake file was read for its {what}")

        return call

    monkeypatch.setattr(integrity, "crc_damage", refuse("page CRCs"))
    monkeypatch.setattr(committed, "key_counts_of", refuse("row counts"))
    monkeypatch.setattr(committed, "error_minutes_of", refuse("error rollup"))
    return reads


def test_a_committed_file_has_its_facts_before_anyone_reads_it(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    (path,) = write_events(str(lake), _events(), name="a")
    names = sorted(n.split(".parquet.", 1)[1].split("-", 1)[0] for n in _kept(lake))
    assert names == ["errmin", "keys", "msgidx", "stat"]
    assert all(n.startswith(Path(path).name) for n in _kept(lake))


def test_the_lakes_first_reader_answers_without_reading_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = str(tmp_path / "lake")
    write_events(lake, _events(), name="a")
    write_events(lake, _events(25, offset=100), name="b")
    _forget()
    reads = _no_file_reads(monkeypatch)
    now = T0 + timedelta(hours=3)
    result = search(lake, SearchQuery(service="db", levels=["error"], limit=1))
    trend = trends.error_trend(lake, range="24h", now=now)
    assert reads == []
    assert result.total == sum(
        1 for e in _events() + _events(25) if e["service"] == "db" and e["level"] == "error"
    )
    expected = sum(1 for e in _events() + _events(25) if e["level"] in ("error", "fatal"))
    assert sum(p.count for p in trend) == expected


def test_kept_facts_equal_what_a_first_reader_computes(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_events(str(lake), _events(97), name="a")
    write_events(str(lake), _events(13, offset=2000), name="b")  # another day too
    # The message index is compared by what it holds (the order of messages may differ):
    # test_the_message_index_kept_at_commit_is_the_one_a_reader_would_keep.
    at_commit = {n: v for n, v in _kept(lake).items() if ".msgidx-" not in n}
    for p in (lake / facts.FACTS_DIR).rglob("*"):
        if p.is_file():
            p.unlink()
    _forget()
    now = T0 + timedelta(days=3)
    for stat in reader.file_stats(str(lake)):
        reader.key_counts(stat)
    trends.error_trend(str(lake), range="7d", now=now)
    by_reader = _kept(lake)
    assert by_reader.keys() == at_commit.keys()
    for name, data in at_commit.items():
        if ".errmin-" in name:  # Arrow IPC: compare the frames, not the bytes
            kept = pl.read_ipc(data).sort("service", "minute")
            computed = pl.read_ipc(by_reader[name]).sort("service", "minute")
            assert kept.equals(computed), name
        else:
            assert json.loads(data) == json.loads(by_reader[name]) or (
                sorted(json.loads(data)) == sorted(json.loads(by_reader[name]))
            ), name


def test_compaction_keeps_the_facts_of_the_file_it_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = str(tmp_path / "lake")
    write_events(lake, _events(), name="a")
    write_events(lake, _events(30, offset=40), name="b")
    [result] = compaction.compact(lake, now=T0 + timedelta(days=2), grace=timedelta(0))
    assert result.compacted_file is not None
    kept = _kept(tmp_path / "lake")
    assert {n.split(".parquet.", 1)[0] for n in kept} == {Path(result.compacted_file).stem}
    _forget()
    reads = _no_file_reads(monkeypatch)
    assert search(lake, SearchQuery(service="api")).total == 14 + 10
    assert reads == []


def test_a_file_changed_after_its_commit_is_checked_again(tmp_path: Path) -> None:
    """Facts are tied to the committed file's size and modification time: a hand edit is read."""
    lake = str(tmp_path / "lake")
    (path,) = write_events(lake, _events(), name="a")
    data = bytearray(Path(path).read_bytes())
    data[4:12] = b"\0" * 8  # inside the first page: its CRC fails
    before = os.stat(path).st_mtime_ns
    Path(path).write_bytes(bytes(data))
    assert os.stat(path).st_mtime_ns != before
    _forget()
    assert reader.file_stats(lake) == []  # quarantined, as any damaged file
    assert list((tmp_path / "lake").rglob("_quarantine/*/*.parquet"))


def _groups(frame: pl.DataFrame) -> dict[tuple[str, str], Counter[str]]:
    """Return each ``(service, level)`` group's messages (with repeats) of a kept index."""
    messages = frame["messages"][0].to_list()
    codes = frame["codes"][0].to_list()
    out: dict[tuple[str, str], Counter[str]] = {}
    start = 0
    for svc, lv, stop in zip(
        *(frame[c][0].to_list() for c in ("services", "levels", "stops")), strict=True
    ):
        out[(svc, lv)] = Counter(messages[c] for c in codes[start:stop])
        start = stop
    return out


def test_the_message_index_kept_at_commit_is_the_one_a_reader_would_keep(tmp_path: Path) -> None:
    lake = _lake(tmp_path)
    kept = sorted((Path(lake) / facts.FACTS_DIR).rglob(f"*.{committed.MSGIDX_KIND}-*"))
    assert len(kept) == 3
    at_commit = {p.name: _groups(pl.read_ipc(p)) for p in kept}
    for p in kept:
        p.unlink()
    message_index.reset_message_index()
    _forget()
    for stat in reader.file_stats(lake):
        assert message_index.message_index(stat) is not None  # built from the file, kept
    by_reader = {
        p.name: _groups(pl.read_ipc(p))
        for p in (Path(lake) / facts.FACTS_DIR).rglob(f"*.{committed.MSGIDX_KIND}-*")
    }
    assert by_reader == at_commit


def test_the_lakes_first_text_search_counts_from_the_index_kept_at_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    # The index tests' filters, less the one cutting a file (that one is scanned), plus "".
    filters = [*_FILTERS[:-1], {"text": ""}]
    expected = [_scanned(lake, **f) for f in filters]
    message_index.reset_message_index()
    _forget()
    _no_message_reads(monkeypatch)
    assert [search_module.count(lake, build_filter(**f)) for f in filters] == expected
    assert message_index.message_index_stats()["files"] == 3


def test_mostly_distinct_messages_keep_no_index_at_commit(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    write_events(lake, [{**e, "message": f"unique {i}"} for i, e in enumerate(_events())])
    assert not list((Path(lake) / facts.FACTS_DIR).rglob(f"*.{committed.MSGIDX_KIND}-*"))
    assert committed.message_index_of(make_events([])) is None


def test_a_file_of_over_65536_messages_keeps_32_bit_codes_at_commit(tmp_path: Path) -> None:
    """More distinct messages than 16 bits number: the index kept at commit uses 32-bit codes,
    and text totals counted from it equal a scan."""
    n = 140_000
    table = make_events(
        [
            {
                "timestamp": T0 + timedelta(milliseconds=i),
                "service": ("api", "db")[i % 2],
                "level": ("info", "error")[(i // 2) % 2],
                "message": f"message {i % 66_000}" + (" timeout" if i % 66_000 % 7 else ""),
            }
            for i in range(n)
        ]
    )
    frame = committed.message_index_of(table)
    assert frame is not None and frame["codes"][0].dtype == pl.UInt32
    lake = str(tmp_path / "lake")
    write_events(lake, table, name="big")
    rows = pl.from_arrow(table)
    assert isinstance(rows, pl.DataFrame)
    expected = rows.filter(
        pl.col("message").str.contains("timeout", literal=True), pl.col("service") == "db"
    ).height
    message_index.reset_message_index()
    _forget()
    assert search_module.count(lake, build_filter(text="timeout", service="db")) == expected
    assert message_index.message_index_stats()["files"] == 1


def test_a_file_committed_while_compaction_prunes_keeps_its_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hot compaction runs while ingest commits: a file committed after compaction listed the
    partition must keep the facts its writer kept (only facts of files gone are pruned)."""
    lake = str(tmp_path / "lake")
    write_events(lake, _events(), name="a")
    write_events(lake, _events(30, offset=40), name="b")
    real = compaction.lakefs.list_dir
    late: list[str] = []

    def list_then_commit(filesystem: Any, path: str) -> Any:
        listed = real(filesystem, path)
        if not late and "/logs/date=" in path:
            late.extend(write_events(lake, _events(5, offset=70), name="late"))
        return listed

    monkeypatch.setattr(compaction.lakefs, "list_dir", list_then_commit)
    [result] = compaction.compact(lake, now=T0 + timedelta(days=2), grace=timedelta(0))
    monkeypatch.undo()
    assert result.deleted == 2 and late
    names = {n.split(".parquet.", 1)[0] for n in _kept(tmp_path / "lake")}
    assert names == {Path(result.compacted_file or "").stem, "part-late"}
