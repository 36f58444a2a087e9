"""Error trends: the pure bucket grid, zero-filled buckets, alignment, validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import T0, write_events
from workbench.errors import ValidationError
from workbench.query.trends import RANGES, bucket_grid, error_trend, floor_to

NOW = datetime(2026, 11, 26, 10, 17, 42, tzinfo=UTC)


@pytest.mark.parametrize(
    ("range_", "size", "n"),
    [
        ("1h", "1m", 61),
        ("24h", "5m", 289),
        ("7d", "1h", 169),
        ("30d", "6h", 121),
        ("3m", "1d", 91),
        ("6m", "1d", 181),
        ("1y", "1w", 53),
    ],
)
def test_grid_sizes_and_counts(range_: str, size: str, n: int) -> None:
    grid = bucket_grid(NOW, range_)
    assert grid.size == RANGES[range_][1]
    assert grid.n in (n, n + 1)  # one more when the span does not start on a boundary
    times = grid.times()
    assert times[0] <= NOW - RANGES[range_][0] < times[0] + grid.size
    assert times[-1] <= NOW < times[-1] + grid.size
    assert all(b - a == grid.size for a, b in zip(times, times[1:], strict=False))


def test_grid_aligned_to_utc_boundaries() -> None:
    assert bucket_grid(NOW, "24h").times()[-1] == datetime(2026, 11, 26, 10, 15, tzinfo=UTC)
    assert bucket_grid(NOW, "30d").times()[-1] == datetime(2026, 11, 26, 6, tzinfo=UTC)
    assert bucket_grid(NOW, "3m").times()[-1] == datetime(2026, 11, 26, tzinfo=UTC)
    week = bucket_grid(NOW, "1y").times()[-1]
    assert week == datetime(2026, 11, 23, tzinfo=UTC) and week.weekday() == 0


def test_floor_to_accepts_other_offsets() -> None:
    from datetime import timezone

    t = datetime(2026, 11, 26, 3, 30, tzinfo=timezone(timedelta(hours=5)))
    assert floor_to(t, timedelta(days=1)) == datetime(2026, 11, 25, tzinfo=UTC)


def test_unknown_range_names_field_and_allowed_values() -> None:
    with pytest.raises(ValidationError) as err:
        bucket_grid(NOW, "2h")
    assert "1h" in err.value.details["range"][0] and "1y" in err.value.details["range"][0]


def test_every_bucket_present_empty_ones_zero(lake_url: str) -> None:
    points = error_trend(lake_url, range="1h", now=NOW)
    assert len(points) == 61 and all(p.count == 0 for p in points)
    assert all(p.time.tzinfo is not None for p in points)


def test_counts_error_and_fatal_per_bucket_and_service(lake_url: str) -> None:
    now = T0 + timedelta(minutes=30)
    rows = [
        {"timestamp": T0 + timedelta(minutes=1, seconds=5), "level": "error"},
        {"timestamp": T0 + timedelta(minutes=1, seconds=59), "level": "fatal"},
        {"timestamp": T0 + timedelta(minutes=1, seconds=30), "level": "warn"},
        {"timestamp": T0 + timedelta(minutes=7), "level": "error", "service": "db"},
        {"timestamp": now, "level": "error"},  # exactly now: inside (now - span, now]
        {"timestamp": now - timedelta(hours=1), "level": "error"},  # exactly the start: outside
        {"timestamp": now + timedelta(seconds=1), "level": "error"},  # future: outside
    ]
    write_events(lake_url, rows)
    points = {p.time: p.count for p in error_trend(lake_url, range="1h", now=now)}
    assert points[T0 + timedelta(minutes=1)] == 2
    assert points[T0 + timedelta(minutes=7)] == 1
    assert points[now] == 1
    assert sum(points.values()) == 4
    only_api = error_trend(lake_url, service="api", range="1h", now=now)
    assert sum(p.count for p in only_api) == 3


def test_rollup_and_row_paths_agree_with_brute_force(lake_url: str) -> None:
    import random

    rnd = random.Random(3)
    now = T0 + timedelta(hours=7, minutes=13, seconds=5)
    rows: list[dict[str, Any]] = [
        {
            "timestamp": now - timedelta(seconds=rnd.randrange(0, 3 * 86400)),
            "level": rnd.choice(["info", "error", "fatal"]),
            "service": rnd.choice(["a", "b"]),
        }
        for _ in range(3000)
    ]
    rows.sort(key=lambda r: r["timestamp"])
    # Several files: some wholly inside the 24h range (rollup path), some straddling it.
    for i in range(0, 3000, 250):
        write_events(lake_url, rows[i : i + 250])
    for range_, service in (("24h", None), ("24h", "a"), ("7d", "b"), ("1h", None)):
        grid = bucket_grid(now, range_)
        expected = [0] * grid.n
        for r in rows:
            ts = r["timestamp"]
            if (
                r["level"] != "info"
                and grid.start < ts <= grid.end
                and (service is None or r["service"] == service)
            ):
                expected[(ts - grid.origin) // grid.size] += 1
        got = [p.count for p in error_trend(lake_url, service=service, range=range_, now=now)]
        assert got == expected, range_
        # A second call answers from the cached rollups: same result.
        again = [p.count for p in error_trend(lake_url, service=service, range=range_, now=now)]
        assert again == expected
