"""Fault: bytes flipped inside a data page of a committed lake file, footer intact.

Without page checksums such a file still decodes: polars returns other rows'
values (an event vanishes from search, another appears twice). Every file the
lake writes carries page checksums; the reader verifies them once per file and
quarantines a damaged file; ``workbench verify`` lists damaged files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from ingest_api.app import _install_error_handlers
from ingest_api.routes import query
from tests.factories import T0, write_events
from workbench import api, clock
from workbench.cli import main
from workbench.config import Settings
from workbench.lake import compaction
from workbench.lake.schema import QUARANTINE_DIR


def _rows(service: str, n: int, start_minutes: int = 0) -> list[dict[str, object]]:
    return [
        {
            "timestamp": T0 - timedelta(minutes=start_minutes + i),
            "service": service,
            "level": "error",
            "message": f"{service} event {i}",
        }
        for i in range(n)
    ]


def damage_silently(path: Path, column: str = "message") -> None:
    """Flip one byte inside a data page of ``column`` such that a reader that does not
    verify checksums still decodes the file, but to other values (the footer is intact)."""
    data = path.read_bytes()
    meta = pq.ParquetFile(path).metadata
    chunk = meta.row_group(0).column(meta.schema.names.index(column))
    start = chunk.data_page_offset
    stop = (
        min(x for x in (chunk.dictionary_page_offset, chunk.data_page_offset) if x is not None)
        + chunk.total_compressed_size
    )
    original = pq.read_table(path)
    for offset in range(start + 1, stop):
        damaged = bytearray(data)
        damaged[offset] ^= 0x01
        path.write_bytes(bytes(damaged))
        try:
            decoded = pq.read_table(path)  # no checksum verification: what polars does
        except Exception:
            continue
        if not decoded.equals(original):
            return
    path.write_bytes(data)
    raise AssertionError(f"no silent one-byte damage found in {column} of {path}")


def _pairs(frame_rows: Iterator[tuple[str, str]]) -> set[tuple[str, str]]:
    return set(frame_rows)


@pytest.fixture
def damaged_lake(settings: Settings) -> tuple[Settings, Path, set[tuple[str, str]]]:
    """A lake of a good file and a victim file whose message data page is silently damaged;
    returns the settings, the damaged file and every original ``(id, message)`` pair."""
    write_events(settings.lake_url, _rows("good", 20))
    [victim] = write_events(settings.lake_url, _rows("victim", 40, start_minutes=30))
    table = pq.read_table(Path(settings.lake_url), columns=["id", "message"])
    pairs = set(zip(table["id"].to_pylist(), table["message"].to_pylist(), strict=True))
    damage_silently(Path(victim))
    return settings, Path(victim), pairs


def test_verify_lists_the_damaged_file_and_exits_non_zero(
    damaged_lake: tuple[Settings, Path, set[tuple[str, str]]],
) -> None:
    settings, victim, _ = damaged_lake
    result = CliRunner().invoke(main, ["verify", "--lake", settings.lake_url])
    assert result.exit_code != 0, result.output
    assert victim.name in result.output and "damaged" in result.output
    victim.unlink()
    clean = CliRunner().invoke(main, ["verify", "--lake", settings.lake_url])
    assert clean.exit_code == 0, clean.output
    assert "1 file(s) checked, 0 damaged" in clean.output


def test_search_and_analyst_api_never_return_wrong_rows(
    damaged_lake: tuple[Settings, Path, set[tuple[str, str]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Injects: one flipped byte in the message data page of a committed file.

    Proves: the analyst API, the search API and ``reader.scan`` return only
    rows whose values are the ones written; the damaged file is quarantined
    with a warning naming it; the good file's rows are all there.
    """
    settings, victim, pairs = damaged_lake
    with caplog.at_level(logging.WARNING, logger="workbench.lake.reader"):
        frame = api.logs(settings=settings).collect()
    got = _pairs(frame.select("id", "message").iter_rows())
    assert got <= pairs, f"wrong rows: {sorted(got - pairs)[:5]}"
    assert frame.height == len(got), "a row appeared twice"
    assert {m for _, m in got} >= {f"good event {i}" for i in range(20)}
    assert not victim.exists()
    assert (
        Path(settings.lake_url) / QUARANTINE_DIR / victim.parent.name / victim.name
    ).exists()
    assert any(
        "quarantine" in r.getMessage() and victim.name in r.getMessage() for r in caplog.records
    )

    app = FastAPI()
    app.state.settings = settings
    _install_error_handlers(app)
    app.include_router(query.router)
    with clock.frozen(T0 + timedelta(seconds=30)), TestClient(app) as client:
        for params in ({"limit": 100}, {"q": "event", "limit": 100}, {"service": "victim"}):
            body = client.get("/api/logs", params=params).json()
            logs = [(log["id"], log["message"]) for log in body["logs"]]
            assert set(logs) <= pairs and len(set(logs)) == len(logs), params
            assert all(m.startswith("good") for _, m in logs), params
    result = api.search(settings=settings, text="victim", limit=100)
    assert result.total == 0 and result.logs == []


def test_flushed_and_compacted_files_carry_page_checksums(settings: Settings) -> None:
    """Proves: files of the writer and of compaction fail pyarrow's checksum verification
    once damaged, so the damage is caught rather than decoded."""
    for i in range(3):
        write_events(settings.lake_url, _rows(f"s{i}", 10))
    [result] = compaction.compact(
        settings.lake_url, now=T0 + timedelta(days=2), older_than=timedelta(hours=1)
    )
    assert result.merged == 3
    files = sorted(Path(settings.lake_url).rglob("compact-*.parquet"))
    assert len(files) == 1
    for path in files + [Path(p) for p in write_events(settings.lake_url, _rows("w", 10, 3000))]:
        damage_silently(path)
        with pytest.raises(OSError, match="CRC checksum verification failed"):
            pq.read_table(path, page_checksum_verification=True)


def test_health_counts_the_quarantined_file(
    damaged_lake: tuple[Settings, Path, set[tuple[str, str]]],
) -> None:
    """Proves: once a reader quarantined a damaged file, ``/health`` says so (``quarantine.files``)."""
    from ingest_api.app import create_app

    settings, victim, _ = damaged_lake
    fast = settings.model_copy(update={"flush_interval_s": 0.05})
    with TestClient(create_app(fast)) as client:
        assert client.get("/health").json()["quarantine"] == {"files": 0}
        api.logs(settings=settings).collect()  # the reader finds the damage
        assert not victim.exists()
        event = {"service": "s", "level": "info", "message": "refresh"}
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert (
                client.post("/api/logs", json=event).status_code == 202
            )  # a flush refreshes stats
            body = client.get("/health").json()
            if body["quarantine"]["files"]:
                break
            time.sleep(0.1)
    assert body["quarantine"] == {"files": 1}
    assert body["status"] == "ok"
