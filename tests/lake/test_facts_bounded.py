"""Facts on disk stay bounded: they go when their lake file goes (compaction, retention).

``workbench/lake/facts.py`` keeps a few kilobytes per lake file under ``<lake>/_facts``.
Today's partition is compacted every housekeeping pass, so facts of deleted files would
otherwise pile up for as long as the lake lives.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.factories import T0, write_events
from workbench.lake import facts, reader
from workbench.lake.compaction import compact_partition
from workbench.lake.retention import apply_retention
from workbench.query.search import search
from workbench.query.types import SearchQuery


def _kept(lake: Path) -> list[Path]:
    return sorted(p for p in (lake / facts.FACTS_DIR).rglob("*") if p.is_file())


def _events(n: int) -> list[dict[str, object]]:
    return [
        {"timestamp": T0 + timedelta(seconds=i), "service": "api", "level": "error"}
        for i in range(n)
    ]


def _learn(lake: str) -> None:
    """Make the reader learn (and keep) the facts of every visible file."""
    reader.file_stats(lake)
    search(lake, SearchQuery(limit=10))


def test_compaction_deletes_the_facts_of_the_files_it_deletes(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for name in ("a", "b", "c"):
        write_events(str(lake), _events(5), name=name)
    _learn(str(lake))
    before = {p.name.split(".")[0] for p in _kept(lake)}
    assert before == {"part-a", "part-b", "part-c"}, before

    result = compact_partition(str(lake), T0.date(), grace=timedelta(0))
    assert result.deleted == 3
    _learn(str(lake))

    sources = [p for p in _kept(lake) if not p.name.startswith("compact-")]
    assert sources == [], f"facts of deleted files left behind: {[p.name for p in sources]}"
    assert [p for p in _kept(lake) if p.name.startswith("compact-")], "the new file's facts"


def test_retention_deletes_the_facts_of_the_days_it_drops(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    write_events(str(lake), _events(5), name="old")
    _learn(str(lake))
    assert _kept(lake), "facts were kept for the day"

    apply_retention(
        str(lake),
        days=1,
        now=datetime.combine(T0.date(), datetime.min.time(), UTC) + timedelta(days=5),
    )

    assert _kept(lake) == []
    assert not (lake / facts.FACTS_DIR / f"date={T0.date().isoformat()}").exists()
