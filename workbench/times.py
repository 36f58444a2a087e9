"""The one place where text becomes a time or a duration.

Every entry point (HTTP query parameters, CLI options, ``workbench.logs(since=...)``,
``workbench evaluate --now``) parses through these functions, so the same input means
the same instant everywhere and a bad one gets the same error, naming the field:

- an **instant** is ISO 8601 (``2026-12-01T10:00:00Z``, an offset, or naive meaning UTC;
  ``Z`` and ``z`` both accepted), always answered as an aware UTC ``datetime``;
- a **duration** is a whole number and one unit: ``45s``, ``30m``, ``6h``, ``7d``, ``2w``;
- a **time** (``since``/``until``) is either: a duration means that long before ``now``;
- a **bound** (``--from``/``--to``) also takes a bare date, the start of that day, or for an
  end bound the start of the next day (so ``--to 2026-12-01`` includes that whole day).

Every failure raises :class:`workbench.errors.ValidationError` whose ``details`` name the field.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

from workbench.errors import ValidationError

TimeLike = str | timedelta | datetime

MIN_UTC = "0001-01-01T00:00:00Z"
MAX_UTC = "9999-12-31T23:59:59.999999Z"
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d+)([smhdw])$")


def utc(moment: datetime) -> datetime:
    """Return ``moment`` as aware UTC (a naive datetime is taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _invalid(field: str, reason: str, message: str | None) -> ValidationError:
    return ValidationError(message or f"{field}: {reason}", {field: [reason]})


def parse_instant(
    value: str | datetime, field: str = "time", *, message: str | None = None
) -> datetime:
    """Return the aware UTC instant of an ISO 8601 string or a datetime.

    ``message`` replaces the error's headline (``details`` always name ``field``).
    """
    if isinstance(value, datetime):
        try:
            return utc(value)
        except OverflowError:
            raise _invalid(field, _out_of_range(value), message) from None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        raise _invalid(field, f"not an ISO 8601 timestamp: {value!r}", message) from None
    except OverflowError:
        # e.g. 0001-01-01T00:00:00+14:00: valid ISO 8601, but before year 1 once in UTC.
        raise _invalid(field, _out_of_range(value), message) from None


def _out_of_range(value: object) -> str:
    return f"out of range: {value!r} is not between {MIN_UTC} and {MAX_UTC} in UTC"


def parse_duration(
    value: str | timedelta, field: str = "duration", *, message: str | None = None
) -> timedelta:
    """Return the timedelta of ``45s``, ``30m``, ``6h``, ``7d`` or ``2w`` (or a timedelta)."""
    if isinstance(value, timedelta):
        return value
    match = _DURATION.match(value.strip().lower())
    if not match:
        reason = f"not a duration: {value!r} (use e.g. 30m, 6h, 7d)"
        raise _invalid(field, reason, message)
    try:
        return timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])
    except OverflowError:
        raise _invalid(field, f"out of range: {value!r}", message) from None


def is_duration(value: str) -> bool:
    """Return whether ``value`` is written as a duration (``24h``) rather than an instant."""
    return bool(_DURATION.match(value.strip().lower()))


def parse_time(
    value: TimeLike | None, now: datetime, field: str = "since", *, message: str | None = None
) -> datetime | None:
    """Return the UTC instant of a relative (``"24h"``, a timedelta: that long before ``now``)
    or absolute (ISO 8601, datetime) time; None stays None."""
    if value is None:
        return None
    if isinstance(value, str) and not value.strip():
        return None
    try:
        if isinstance(value, timedelta):
            return utc(now) - value
        if isinstance(value, str) and is_duration(value):
            return utc(now) - parse_duration(value, field, message=message)
    except OverflowError:
        raise _invalid(field, _out_of_range(value), message) from None
    return parse_instant(value, field, message=message)


def parse_bound(
    value: str | datetime | date, field: str, *, end: bool, message: str | None = None
) -> datetime:
    """Return a UTC range bound from a datetime or a bare date.

    A bare date is the start of that day, or with ``end=True`` the start of the next day
    (so an end bound of ``2026-12-01`` includes that whole day).
    """
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and len(value.strip()) == 10:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise _invalid(field, f"not an ISO 8601 date: {value!r}", message) from None
    else:
        return parse_instant(value, field, message=message)
    if end:
        try:
            day = day + timedelta(days=1)
        except OverflowError:  # 9999-12-31 has no next day: a 400 naming the field, not a 500
            raise _invalid(
                field, f"out of range: {value!r} is the last day there is", message
            ) from None
    return datetime.combine(day, time(), UTC)


def isoformat_z(moment: datetime) -> str:
    """Return ``moment`` in UTC as ISO 8601 with ``Z`` (milliseconds unless it has microseconds)."""
    t = moment.astimezone(UTC)
    spec = "milliseconds" if t.microsecond % 1000 == 0 else "microseconds"
    return t.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
