"""Retention: whole partitions older than N days go, newer ones stay, dry run touches nothing."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from tests.factories import T0, make_events, write_events
from workbench.errors import ValidationError
from workbench.lake import reader
from workbench.lake.retention import apply_retention

NOW = T0  # 2026-11-20 12:00 UTC


@pytest.fixture
def lake_url(tmp_path: Path) -> str:
    url = str(tmp_path / "lake")
    for d in range(6):
        write_events(url, make_events(n=2, start=NOW - timedelta(days=d)))
    return url


def _days(url: str) -> list[str]:
    return [d.isoformat() for d, _ in reader.partitions(url)]


def test_dry_run_lists_without_deleting(lake_url: str) -> None:
    removed = apply_retention(lake_url, days=3, now=NOW, dry_run=True)
    assert [r.day.isoformat() for r in removed] == ["2026-11-15", "2026-11-16"]
    assert all(r.files == 1 for r in removed)
    assert len(_days(lake_url)) == 6


def test_deletes_whole_old_partitions_only(lake_url: str) -> None:
    removed = apply_retention(lake_url, days=3, now=NOW)
    assert [r.day.isoformat() for r in removed] == ["2026-11-15", "2026-11-16"]
    assert _days(lake_url) == ["2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20"]
    assert reader.scan(lake_url).collect().height == 8
    assert not [n for n in os.listdir(Path(lake_url) / "logs") if n.startswith(".")]
    assert apply_retention(lake_url, days=3, now=NOW) == []


def test_leftover_of_crashed_run_is_invisible_then_cleaned(lake_url: str) -> None:
    logs = Path(lake_url) / "logs"
    (logs / "date=2026-11-15").rename(logs / ".deleting-date=2026-11-15-abc")
    assert "2026-11-15" not in _days(lake_url)
    apply_retention(lake_url, days=30, now=NOW)
    assert not (logs / ".deleting-date=2026-11-15-abc").exists()


def test_days_must_be_positive(lake_url: str) -> None:
    with pytest.raises(ValidationError) as err:
        apply_retention(lake_url, days=0, now=NOW)
    assert "days" in err.value.details
