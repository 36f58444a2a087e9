"""Window counts: one pass for many rules, exact (now - window, now] boundaries."""

from __future__ import annotations

from datetime import timedelta

from tests.factories import T0, write_events
from workbench.query.window import WindowSpec, window_counts

NOW = T0


def test_boundaries_exclusive_start_inclusive_end(lake_url: str) -> None:
    rows = [
        {"timestamp": NOW - timedelta(minutes=5), "level": "error"},  # exactly start: out
        {"timestamp": NOW - timedelta(minutes=5) + timedelta(microseconds=1), "level": "error"},
        {"timestamp": NOW, "level": "error"},  # exactly now: in
        {"timestamp": NOW + timedelta(microseconds=1), "level": "error"},  # future: out
    ]
    write_events(lake_url, rows)
    assert window_counts(lake_url, [WindowSpec("r", "api", timedelta(minutes=5))], NOW) == {"r": 2}


def test_many_rules_each_with_own_window_levels_and_text(lake_url: str) -> None:
    rows = [
        {"timestamp": NOW - timedelta(minutes=m), "level": lv, "service": svc, "message": msg}
        for m, lv, svc, msg in [
            (1, "error", "api", "db timeout"),
            (2, "fatal", "api", "panic"),
            (10, "error", "api", "db timeout"),
            (3, "warn", "api", "slow"),
            (1, "error", "db", "Timeout"),
        ]
    ]
    write_events(lake_url, rows)
    specs = [
        WindowSpec("short", "api", timedelta(minutes=5)),
        WindowSpec("long", "api", timedelta(minutes=15)),
        WindowSpec("text", "api", timedelta(minutes=15), message_contains="timeout"),
        WindowSpec("warn", "api", timedelta(minutes=15), levels=("warn",)),
        WindowSpec("case", "db", timedelta(minutes=15), message_contains="timeout"),
        WindowSpec("none", "ghost", timedelta(minutes=15)),
    ]
    assert window_counts(lake_url, specs, NOW) == {
        "short": 2,
        "long": 3,
        "text": 2,
        "warn": 1,
        "case": 0,
        "none": 0,
    }


def test_window_crossing_midnight_reads_both_partitions(lake_url: str) -> None:
    midnight = T0.replace(hour=0)
    rows = [
        {"timestamp": midnight - timedelta(minutes=1), "level": "error"},
        {"timestamp": midnight + timedelta(minutes=1), "level": "error"},
    ]
    write_events(lake_url, rows)
    spec = WindowSpec("r", "api", timedelta(minutes=10))
    assert window_counts(lake_url, [spec], midnight + timedelta(minutes=2)) == {"r": 2}


def test_thousand_rules_in_one_call(lake_url: str) -> None:
    rows = [
        {"timestamp": NOW - timedelta(seconds=s), "level": "error", "service": f"s{s % 50}"}
        for s in range(1, 3001)
    ]
    write_events(lake_url, rows)
    specs = [WindowSpec(f"k{i}", f"s{i % 50}", timedelta(minutes=1 + i % 60)) for i in range(1000)]
    counts = window_counts(lake_url, specs, NOW)
    assert len(counts) == 1000
    for i in (0, 17, 999):
        w = (1 + i % 60) * 60
        assert counts[f"k{i}"] == sum(1 for s in range(1, 3001) if s % 50 == i % 50 and s < w)


def test_no_specs_no_read(lake_url: str) -> None:
    assert window_counts(lake_url, [], NOW) == {}
