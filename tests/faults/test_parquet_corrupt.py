"""Fault: a corrupt or truncated Parquet file in the lake."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from tests.factories import write_events
from workbench.lake import reader

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _rows(n: int, service: str) -> list[dict[str, object]]:
    return [
        {
            "timestamp": T0 + timedelta(seconds=i),
            "service": service,
            "level": "info",
            "message": f"m{i}",
        }
        for i in range(n)
    ]


@pytest.mark.parametrize("damage", ["truncated", "garbage_footer", "empty"])
def test_bad_file_is_quarantined_rest_readable(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Injects: one committed lake file truncated / with its footer overwritten / emptied.

    Proves: listing and scanning the lake keep working, the other files' rows are
    all returned, the bad file is moved to ``<lake>/_quarantine/`` with a warning
    naming it, and later reads are unaffected.
    """
    lake = tmp_path / "lake"
    lake_url = str(lake)
    write_events(lake_url, _rows(10, "good"))
    write_events(lake_url, _rows(5, "bad"))
    files = sorted(lake.rglob("*.parquet"))
    assert len(files) == 2
    bad = next(f for f in files if pl.read_parquet(f)["service"][0] == "bad")
    data = bad.read_bytes()
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "garbage_footer":
        bad.write_bytes(data[:-12] + b"\x00" * 12)
    else:
        bad.write_bytes(b"")

    with caplog.at_level(logging.WARNING, logger="workbench.lake.reader"):
        frame = reader.scan(lake_url).collect()
    assert frame.height == 10 and set(frame["service"]) == {"good"}
    assert not bad.exists()
    quarantined = list((lake / "_quarantine").rglob("*"))
    assert any(q.name == bad.name for q in quarantined)
    assert any(
        "quarantine" in r.getMessage() and bad.name in r.getMessage() for r in caplog.records
    )
    # A second read neither fails nor logs again.
    caplog.clear()
    assert reader.scan(lake_url).collect().height == 10
    assert not caplog.records
