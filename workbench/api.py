"""The analyst-facing helpers re-exported by ``workbench``: thin calls into query modules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from workbench.config import Settings, get_settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(value: str | timedelta | datetime | None, now: datetime) -> datetime | None:
    """Return an absolute UTC time for ``"24h"``-style, timedelta or datetime input."""
    if value is None or isinstance(value, datetime):
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value
    if isinstance(value, timedelta):
        return now - value
    text = value.strip().lower()
    if text and text[-1] in _UNITS and text[:-1].isdigit():
        return now - timedelta(seconds=int(text[:-1]) * _UNITS[text[-1]])
    try:
        parsed = datetime.fromisoformat(text.replace("z", "+00:00"))
    except ValueError:
        from workbench.errors import ValidationError

        raise ValidationError(
            f"since: expected like '24h', '7d' or an ISO 8601 time, got {value!r}",
            {"since": ["expected like '24h', '7d' or an ISO 8601 time"]},
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def logs(
    since: str | timedelta | datetime | None = None,
    until: datetime | None = None,
    *,
    settings: Settings | None = None,
) -> pl.LazyFrame:
    """Return every log event as a ``polars.LazyFrame`` (optionally only ``since``..``until``).

    Date partitions outside the range are not read at all.
    """
    from workbench.lake import reader

    settings = settings or get_settings()
    now = datetime.now(UTC)
    start = parse_since(since, now)
    lf = reader.scan(settings.lake_url, start, until)
    if start is not None:
        lf = lf.filter(pl.col("timestamp") >= start)
    if until is not None:
        lf = lf.filter(pl.col("timestamp") <= until)
    return lf


def search(*, settings: Settings | None = None, since: str | None = None, **filters: Any) -> Any:
    """Return one page of matching events, newest first (see ``workbench.query.search``)."""
    from workbench.query.search import search as _search

    settings = settings or get_settings()
    if since is not None:
        filters.setdefault("start", parse_since(since, datetime.now(UTC)))
    return _search(settings.lake_url, **filters)


def error_trend(
    service: str | None = None, range: str = "24h", *, settings: Settings | None = None
) -> Any:
    """Return error+fatal counts per bucket for ``range`` ending now, empty buckets as zero."""
    from workbench.query.trends import error_trend as _trend

    settings = settings or get_settings()
    return _trend(settings.lake_url, service=service, range=range, now=datetime.now(UTC))
