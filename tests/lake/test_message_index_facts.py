"""The message index kept on disk: a new process's first text total reads no message column."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.factories import T0, write_events
from workbench.lake import facts, message_index, reader
from workbench.query import search as search_module
from workbench.query.types import build_filter

_MESSAGES = ["db timeout after 30s", "TIMEOUT in api", "ok", "", "straße gesperrt: ärger", "a.b["]
_FILTERS: list[dict[str, Any]] = [
    {"text": "timeout"},
    {"text": "TIMEOUT", "service": "db"},
    {"text": "time", "levels": ["error", "fatal"]},
    {"text": "ärger"},
    {"text": "a.b["},
    {"text": "timeout", "start": T0 + timedelta(minutes=30)},  # cuts a file: scanned
]


def _lake(tmp_path: Path) -> str:
    lake = str(tmp_path / "lake")
    for part in range(3):
        rows = [
            {
                "timestamp": T0 + timedelta(hours=part, minutes=i % 60),
                "service": ("api", "db", "web")[(i + part) % 3],
                "level": ("info", "warn", "error", "fatal")[i % 4],
                "message": _MESSAGES[(i * (part + 1)) % len(_MESSAGES)],
            }
            for i in range(120)
        ]
        write_events(lake, rows, name=f"f{part}")
    return lake


def _forget() -> None:
    """Empty the in-memory caches (message index and dictionary too), as a new process has them."""
    message_index.reset_message_index()
    reader._footer_cache.clear()
    reader._key_counts_cache.clear()


def _scanned(lake: str, **filters: Any) -> int:
    flt = build_filter(**filters)
    frame = reader.scan(lake)
    for pred in (flt.time_predicate(), flt.row_predicate()):
        if pred is not None:
            frame = frame.filter(pred)
    return int(frame.select(pl.len()).collect().item())


def _indexed_and_kept(lake: str) -> list[reader.FileStat]:
    """Index every file (as the background indexer does) and return the files."""
    stats = reader.file_stats(lake)
    assert all(message_index.message_index(f) is not None for f in stats)
    return stats


def _kept(lake: str) -> list[Path]:
    return sorted((Path(lake) / facts.FACTS_DIR).rglob(f"*.{message_index.FACT_KIND}-*"))


def _no_file_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any read of the files' message column (index build or row scan) fail the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a lake file was read")

    monkeypatch.setattr(message_index.ds, "dataset", refuse)
    monkeypatch.setattr(search_module.reader, "scan_files", refuse)


def test_a_new_process_counts_text_from_the_kept_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = _lake(tmp_path)
    _forget()
    expected = [_scanned(lake, **f) for f in _FILTERS]
    stats = _indexed_and_kept(lake)
    assert len(_kept(lake)) == len(stats) == 3
    _forget()
    reader.file_stats(lake)  # the footers (kept facts too), as any search reads them first
    _no_file_reads(monkeypatch)
    got = [search_module.count(lake, build_filter(**f)) for f in _FILTERS[:-1]]
    assert got == expected[:-1]
    assert message_index.message_index_stats()["files"] == 3
    monkeypatch.undo()
    # Cut by the time range: scanned, and the same answer.
    assert search_module.count(lake, build_filter(**_FILTERS[-1])) == expected[-1]


@pytest.mark.parametrize("damage", ["garbage", "foreign", "truncated"])
def test_a_damaged_or_foreign_kept_index_is_ignored_and_rebuilt(
    tmp_path: Path, damage: str
) -> None:
    lake = _lake(tmp_path)
    _forget()
    expected = _scanned(lake, text="timeout", service="db")
    _indexed_and_kept(lake)
    first, second, _ = _kept(lake)
    if damage == "garbage":
        first.write_bytes(b"not arrow at all")
    elif damage == "foreign":
        # Another file's index (one row fewer) under this file's name.
        other = pl.read_ipc(second).with_columns(
            pl.col("codes").list.slice(1), pl.col("stops").list.eval(pl.element() - 1)
        )
        other.write_ipc(first)
    else:
        first.write_bytes(first.read_bytes()[:40])
    _forget()
    stats = reader.file_stats(lake)
    assert search_module.count(lake, build_filter(text="timeout", service="db")) == expected
    message_index.wait_for_message_index()  # the ignored one is rebuilt and kept again
    assert all(message_index.message_index(f, wait=False) is not None for f in stats)
    _forget()
    reader.file_stats(lake)
    assert all(message_index.message_index(f, wait=False) is not None for f in stats)
    assert search_module.count(lake, build_filter(text="timeout", service="db")) == expected


def test_kept_indexes_load_within_the_caps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lake = _lake(tmp_path)
    _forget()
    expected = _scanned(lake, text="timeout")
    stats = _indexed_and_kept(lake)
    _forget()
    monkeypatch.setattr(message_index, "MESSAGE_INDEX_MAX_ROWS", 250)  # room for two files
    monkeypatch.setattr(message_index, "_message_pruned_at", -60.0)
    loaded = [message_index.message_index(f, wait=False) for f in stats]
    assert sum(i is not None for i in loaded) == 2
    assert message_index.message_index_stats()["rows"] == 240
    _forget()
    monkeypatch.setattr(message_index, "MESSAGE_INDEX_MAX_ROWS", 10_000)
    monkeypatch.setattr(message_index, "MESSAGE_DICT_MAX", 1)  # fewer than any file's messages
    assert all(message_index.message_index(f, wait=False) is None for f in stats)
    assert message_index.message_index_stats()["distinct_messages"] == 0
    message_index.wait_for_message_index()
    assert search_module.count(lake, build_filter(text="timeout")) == expected
