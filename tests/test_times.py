"""The one time parser (workbench.times) and the one clock (workbench.clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from workbench import clock
from workbench.errors import ValidationError
from workbench.times import isoformat_z, parse_bound, parse_duration, parse_instant, parse_time

NOW = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T10:00:00Z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:00:00z", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T12:00:00+02:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        ("2026-12-01T10:00:00", datetime(2026, 12, 1, 10, tzinfo=UTC)),
        (" 2026-12-01T10:00:00Z ", datetime(2026, 12, 1, 10, tzinfo=UTC)),
    ],
)
def test_instants_are_aware_utc(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected
    assert parse_instant(text).tzinfo is UTC


def test_a_datetime_is_converted_and_a_naive_one_is_utc() -> None:
    plus2 = datetime(2026, 12, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert parse_instant(plus2) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_instant(datetime(2026, 12, 1, 10)) == datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45s", 45), ("30m", 1800), ("6h", 21600), ("7d", 604800), ("2w", 1209600), ("6H", 21600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_relative_and_absolute_times() -> None:
    assert parse_time("24h", NOW) == NOW - timedelta(hours=24)
    assert parse_time(timedelta(minutes=5), NOW) == NOW - timedelta(minutes=5)
    assert parse_time("2026-12-01T10:00:00Z", NOW) == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert parse_time(None, NOW) is None
    assert parse_time("", NOW) is None


def test_bounds_take_whole_days() -> None:
    assert parse_bound("2026-12-01", "from", end=False) == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_bound("2026-12-01", "to", end=True) == datetime(2026, 12, 2, tzinfo=UTC)
    assert parse_bound(date(2026, 12, 1), "to", end=True) == datetime(2026, 12, 2, tzinfo=UTC)
    assert parse_bound("2026-12-01T06:00:00Z", "to", end=True) == datetime(
        2026, 12, 1, 6, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("yesterday", "not an ISO 8601 timestamp"),
        ("0001-01-01T00:00:00+14:00", "out of range"),
        ("9999-12-31T23:00:00-14:00", "out of range"),
        ("99999999999d", "out of range"),
        ("1000000w", "out of range"),
    ],
)
def test_errors_name_the_field_and_the_reason(value: str, reason: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_time(value, NOW, "until")
    assert list(info.value.details) == ["until"]
    assert reason in info.value.details["until"][0]
    assert str(info.value).startswith("until: ")


def test_a_caller_keeps_its_own_headline() -> None:
    with pytest.raises(ValidationError) as info:
        parse_instant("nope", "start", message="Invalid query")
    assert str(info.value) == "Invalid query"
    assert info.value.details == {"start": ["not an ISO 8601 timestamp: 'nope'"]}


def test_bad_durations_and_dates() -> None:
    with pytest.raises(ValidationError, match="not a duration"):
        parse_duration("5 minutes", "window")
    with pytest.raises(ValidationError, match="not an ISO 8601 date"):
        parse_bound("2026-13-01", "from", end=False)


def test_isoformat_z_keeps_milliseconds_or_microseconds() -> None:
    assert (
        isoformat_z(datetime(2026, 12, 1, 10, 0, 0, 5000, tzinfo=UTC)) == "2026-12-01T10:00:00.005Z"
    )
    assert (
        isoformat_z(datetime(2026, 12, 1, 10, 0, 0, 5, tzinfo=UTC)) == "2026-12-01T10:00:00.000005Z"
    )


def test_the_clock_can_be_frozen_and_comes_back() -> None:
    with clock.frozen(NOW):
        assert clock.now() == NOW
        assert clock.minute() == NOW
    assert abs(clock.now() - datetime.now(UTC)) < timedelta(seconds=5)
    ticks = iter([NOW, NOW + timedelta(seconds=61)])
    with clock.frozen(lambda: next(ticks)):
        assert clock.now() == NOW
        assert clock.minute() == NOW + timedelta(minutes=1)
    with pytest.raises(ValueError, match="aware"), clock.frozen(datetime(2026, 1, 1)):
        pass
