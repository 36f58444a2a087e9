"""Search: filters, newest-first order, offset pages, cursor pages, totals, validation."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from tests.factories import T0, make_events, write_events
from workbench.errors import ValidationError
from workbench.lake import message_index, reader
from workbench.query.search import newest_bound, search
from workbench.query.types import (
    SearchQuery,
    build_filter,
    decode_cursor,
    encode_cursor,
    epoch_us,
)


def test_empty_lake_gives_empty_page(lake_url: str) -> None:
    result = search(lake_url, SearchQuery())
    assert (result.total, result.logs, result.next_cursor) == (0, [], None)


def test_newest_first_with_total(small_lake: str) -> None:
    result = search(small_lake, SearchQuery(limit=10))
    assert result.total == 432 + 72 + 1
    times = [log.timestamp for log in result.logs]
    assert times == sorted(times, reverse=True)
    assert len(result.logs) == 10
    assert result.next_cursor is not None


def test_ties_broken_by_id_descending(lake_url: str) -> None:
    rows = [{"timestamp": T0, "id": f"id{i:02d}"} for i in range(5)]
    write_events(lake_url, rows)
    assert [log.id for log in search(lake_url, SearchQuery()).logs] == [
        "id04",
        "id03",
        "id02",
        "id01",
        "id00",
    ]


def test_filters_service_levels_range(small_lake: str) -> None:
    assert search(small_lake, SearchQuery(service="db")).total == 73
    assert search(small_lake, SearchQuery(levels=["error", "FATAL"])).total == 73
    assert (
        search(small_lake, SearchQuery(service="db", levels=["fatal"])).logs[0].message
        == "disk full"
    )
    hour = search(small_lake, SearchQuery(start=T0, end=T0 + timedelta(hours=1)))
    # api every 10 min inclusive both ends (7), db hourly (2), the fatal (1)
    assert hour.total == 10
    assert all(T0 <= log.timestamp <= T0 + timedelta(hours=1) for log in hour.logs)


def test_levels_as_shippers_spell_them_filter_as_stored(small_lake: str) -> None:
    """``warning``/``critical``/``err`` are accepted on ingest, so a search by them finds those events."""
    assert search(small_lake, SearchQuery(levels=["critical", "Err"])).total == 73
    assert (
        search(small_lake, SearchQuery(levels=["WARNING"])).total
        == search(small_lake, SearchQuery(levels=["warn"])).total
    )
    with pytest.raises(ValidationError) as err:
        build_filter(levels=["warning", "loud"])
    assert "unknown level(s) ['loud']" in err.value.details["level"][0]


def test_text_is_case_insensitive_substring(small_lake: str) -> None:
    assert search(small_lake, SearchQuery(text="timeout")).total == 72
    assert search(small_lake, SearchQuery(text="users/42 TOOK")).total == 432
    assert search(small_lake, SearchQuery(text="a.b[")).total == 0  # regex characters are literal


def test_meta_exact_match_string_number_nested(small_lake: str) -> None:
    assert search(small_lake, SearchQuery(meta={"userId": "u1"})).total == 432
    assert search(small_lake, SearchQuery(meta={"latencyMs": 12})).total == 432
    assert search(small_lake, SearchQuery(meta={"latencyMs": "12"})).total == 432
    assert search(small_lake, SearchQuery(meta={"latencyMs": 1})).total == 0
    assert search(small_lake, SearchQuery(meta={"host.name": "db-1"})).logs[0].meta == {
        "host": {"name": "db-1"},
        "requestId": "r-9",
    }


def test_offset_pages_and_cursor_pages_agree(small_lake: str) -> None:
    by_page = [
        log.id for p in range(1, 4) for log in search(small_lake, SearchQuery(page=p, limit=7)).logs
    ]
    by_cursor: list[str] = []
    cursor = None
    for _ in range(3):
        result = search(small_lake, SearchQuery(limit=7, cursor=cursor))
        by_cursor += [log.id for log in result.logs]
        cursor = result.next_cursor
    assert by_page == by_cursor
    assert len(set(by_page)) == 21


def test_cursor_walks_whole_filtered_result_across_partitions(small_lake: str) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        result = search(small_lake, SearchQuery(service="db", limit=20, cursor=cursor))
        seen += [log.id for log in result.logs]
        cursor = result.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 73


def test_last_page_has_no_cursor_and_past_end_is_empty(small_lake: str) -> None:
    last = search(small_lake, SearchQuery(service="db", page=4, limit=20))
    assert len(last.logs) == 13 and last.next_cursor is None
    assert search(small_lake, SearchQuery(service="db", page=9, limit=20)).logs == []


def test_cursor_roundtrip() -> None:
    assert decode_cursor(encode_cursor(T0, "abc")) == (T0, "abc")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"page": 0}, "page"),
        ({"levels": ["loud"]}, "level"),
        ({"cursor": "nope!"}, "cursor"),
        ({"meta": {"a b": "x"}}, "meta"),
        ({"start": T0, "end": T0 - timedelta(seconds=1)}, "from"),
        ({"start": T0.replace(tzinfo=None)}, "from"),
    ],
)
def test_invalid_input_names_the_field(lake_url: str, kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        search(lake_url, SearchQuery(**kwargs))
    assert field in err.value.details


def test_late_file_in_older_partition_is_found(lake_url: str) -> None:
    write_events(lake_url, make_events(n=3, start=T0, service="new"))
    write_events(lake_url, make_events(n=2, start=T0 - timedelta(days=5), service="late"))
    result = search(lake_url, SearchQuery(limit=5))
    assert [log.service for log in result.logs] == ["new"] * 3 + ["late"] * 2


def test_services_lists_distinct_names(small_lake: str, lake_url: str) -> None:
    from workbench.query.services import services

    assert services(small_lake) == ["api", "db"]
    write_events(lake_url, make_events(n=1, service="zeta"))
    assert services(lake_url) == ["api", "db", "zeta"]


_MESSAGES = [
    "Connection TIMEOUT after 30s",
    "upstream timeout (retry 2)",
    "GET /users/42 took 12ms",
    "Straße gesperrt: ÄRGER",
    "cache miss for a.b[",
    "TimeOut",
]


def _varied_lake(lake_url: str) -> list[str]:
    """Write two days of varied messages, services and levels; one file in 5-row row groups."""
    rows = [
        {
            "timestamp": T0 - timedelta(days=1) + i * timedelta(minutes=17),
            "service": ("api", "db", "web")[i % 3],
            "level": ("info", "warn", "error", "fatal")[i % 4],
            "message": _MESSAGES[i % len(_MESSAGES)] + ("" if i % 5 else " #7"),
        }
        for i in range(240)
    ]
    paths = write_events(lake_url, rows[:120], name="a") + write_events(
        lake_url, rows[120:], name="b"
    )
    # Several row groups: each has a Parquet dictionary of its own.
    pq.write_table(pq.read_table(paths[0]), paths[0], row_group_size=5)
    return paths


def _scanned_total(lake_url: str, **filters: Any) -> int:
    """Return the total by the plain row scan (what the message index must agree with)."""
    flt = build_filter(**filters)
    frame = reader.scan(lake_url)
    for pred in (flt.time_predicate(), flt.row_predicate()):
        if pred is not None:
            frame = frame.filter(pred)
    return int(frame.select(pl.len()).collect().item())


@pytest.mark.parametrize(
    "filters",
    [
        {"text": "timeout"},
        {"text": "TIMEOUT", "service": "db"},
        {"text": "time", "levels": ["error", "fatal"]},
        {"text": "straße gesperrt: ärger"},
        {"text": "a.b["},
        {"text": "#7", "service": "web", "levels": ["warn"]},
        {"text": "nowhere"},
        {"text": "timeout", "start": T0 - timedelta(hours=20), "end": T0 + timedelta(hours=3)},
    ],
)
def test_text_totals_from_message_index_equal_a_scan(lake_url: str, filters: Any) -> None:
    _varied_lake(lake_url)
    scanned = search(
        lake_url, SearchQuery(**filters)
    ).total  # not indexed yet: queued for the indexer
    message_index.wait_for_message_index()
    assert (
        search(lake_url, SearchQuery(**filters)).total
        == scanned
        == _scanned_total(lake_url, **filters)
    )
    # At most 12 distinct messages: every file of 24 rows or more is indexed (not scanned).
    big = [f for f in reader.file_stats(lake_url) if f.num_rows >= 24]
    assert len(big) >= 3 and all(message_index.message_index(f) is not None for f in big)


def test_mostly_distinct_messages_are_scanned_not_indexed(lake_url: str) -> None:
    rows = [
        {"timestamp": T0 + i * timedelta(seconds=1), "message": f"req {i} timeout"}
        for i in range(1500)
    ]
    write_events(lake_url, rows)
    (stat,) = reader.file_stats(lake_url)
    assert message_index.message_index(stat) is None
    assert search(lake_url, SearchQuery(text="5 TIMEOUT")).total == 150


def test_files_beyond_the_index_cap_are_scanned(
    lake_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_index.wait_for_message_index()
    monkeypatch.setattr(message_index, "MESSAGE_INDEX_MAX_ROWS", 0)
    monkeypatch.setattr(message_index, "_message_pruned_at", -60.0)
    _varied_lake(lake_url)
    assert search(lake_url, SearchQuery(text="timeout")).total == _scanned_total(
        lake_url, text="timeout"
    )
    assert all(message_index.message_index(f) is None for f in reader.file_stats(lake_url))


def test_deleted_files_leave_the_index_when_the_cap_is_reached(
    lake_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    message_index.wait_for_message_index()
    _varied_lake(lake_url)
    old, new = sorted(reader.file_stats(lake_url), key=lambda f: f.num_rows, reverse=True)[:2]
    assert message_index.message_index(old) is not None
    Path(old.path).unlink()  # as compaction or retention would
    # Full: the new file fits only once the deleted one's rows are given back.
    full = message_index.message_index_stats()["rows"]
    monkeypatch.setattr(message_index, "MESSAGE_INDEX_MAX_ROWS", full)
    monkeypatch.setattr(message_index, "_message_pruned_at", -60.0)
    assert message_index.message_index(new) is not None
    assert (old.path, old.min_ts_us, old.num_rows) not in message_index._message_index


def test_text_search_indexes_files_in_the_background(lake_url: str) -> None:
    _varied_lake(lake_url)
    # Files whose writer kept no index (another tool, an older version): none on disk.
    for kept in Path(lake_url).rglob(f"_facts/*/*.{message_index.FACT_KIND}-*"):
        kept.unlink()
    big = [f for f in reader.file_stats(lake_url) if f.num_rows >= 24]
    assert all(message_index.message_index(f, wait=False) is None for f in big)
    message_index.wait_for_message_index()
    assert all(message_index.message_index(f, wait=False) is not None for f in big)


def _write_row_groups(lake_url: str, table: Any, name: str, rows_per_group: int) -> str:
    """Write ``table`` (one day) as a committed lake file with small row groups; return its path."""
    day = table["timestamp"][0].as_py().date()
    folder = Path(lake_url) / "logs" / f"date={day:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{name}.parquet"
    pq.write_table(table, path, row_group_size=rows_per_group, write_page_checksum=True)
    return str(path)


def test_footer_keeps_each_row_groups_time_bounds_and_rows(lake_url: str) -> None:
    events = make_events(n=25, start=T0, step=timedelta(minutes=1))
    path = _write_row_groups(lake_url, events, "rg", 10)
    (stat,) = reader.file_stats(lake_url)
    assert stat.path == path
    t0 = epoch_us(T0)
    minute = 60_000_000
    assert stat.row_groups == (
        (t0, t0 + 9 * minute, 10),
        (t0 + 10 * minute, t0 + 19 * minute, 10),
        (t0 + 20 * minute, t0 + 24 * minute, 5),
    )


@pytest.mark.parametrize(
    "query",
    [
        SearchQuery(limit=5),
        SearchQuery(limit=5, page=3),
        SearchQuery(limit=20, service="rare"),
        SearchQuery(limit=5, levels=["error"]),
        SearchQuery(limit=5, end=T0 + timedelta(minutes=95)),
        SearchQuery(limit=7, text="slow"),
    ],
)
def test_pages_read_from_the_newest_row_groups_equal_a_full_sort(
    lake_url: str, query: SearchQuery
) -> None:
    """The page reads only the newest row groups when they hold enough rows; same answers."""
    busy = make_events(n=120, start=T0, step=timedelta(minutes=1), service="api")
    rare = make_events(n=3, start=T0 + timedelta(seconds=30), service="rare", level="error")
    ties = make_events(
        [
            {"timestamp": T0 + timedelta(minutes=100), "id": f"zz{i}", "message": "slow"}
            for i in range(4)
        ]
    )
    _write_row_groups(lake_url, busy, "busy", 8)
    _write_row_groups(lake_url, rare, "rare", 8)
    _write_row_groups(lake_url, ties, "ties", 2)
    frame = reader.scan(lake_url).collect()
    flt = query.plan().filter
    for pred in (flt.time_predicate(), flt.row_predicate()):
        if pred is not None:
            frame = frame.filter(pred)
    want = frame.sort(["timestamp", "id"], descending=True)["id"].to_list()
    plan = query.plan()
    result = search(lake_url, query)
    assert [log.id for log in result.logs] == want[plan.offset : plan.offset + plan.limit]
    assert result.total == len(want)
    assert (result.next_cursor is not None) == (len(want) > plan.offset + plan.limit)
    if result.next_cursor:
        after = search(lake_url, replace(query, cursor=result.next_cursor))
        start = plan.offset + plan.limit
        assert [log.id for log in after.logs] == want[start : start + plan.limit]


def test_newest_bound_covers_enough_rows_below_the_upper_end() -> None:
    def stat(*groups: tuple[int, int, int]) -> reader.FileStat:
        rows = sum(g[2] for g in groups) or 3
        return reader.FileStat("f", T0.date(), rows, None, None, frozenset(), groups)

    a = stat((0, 9, 10), (10, 19, 10), (20, 29, 10))
    b = stat((5, 25, 10))
    assert newest_bound([a], 5, None) == 20
    assert newest_bound([a], 11, None) == 10
    assert newest_bound([a, b], 21, None) == 5  # groups by their oldest row: 20, 10, 5
    assert newest_bound([a], 31, None) is None  # not enough rows: no bound
    assert newest_bound([a], 5, 25) == 10  # the group past the upper end may hold no match
    assert newest_bound([a, stat()], 5, None) is None  # a file without statistics
