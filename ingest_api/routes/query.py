"""Routes of the query area: ``GET /api/logs`` (search) and ``GET /api/metrics/errors`` (trend).

Thin: parse the query string, call ``workbench.explorer`` (search) and
``workbench.query`` (trend), render camelCase JSON. Bad input raises
``workbench.errors.ValidationError`` naming the field; the app turns it into
``400 {"error", "details"}``. Handlers are sync so FastAPI runs the lake reads
in its thread pool.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from workbench import clock, times
from workbench.errors import ValidationError
from workbench.explorer import search_logs
from workbench.query.trends import error_trend
from workbench.query.types import LogRecord, SearchQuery
from workbench.security.limits import check_search_limits

router = APIRouter(tags=["query"])


def parse_time(value: str | None, field: str) -> datetime | None:
    """Return the aware UTC instant of ``from``/``to`` (``workbench.times``); None when absent."""
    if value is None or value == "":
        return None
    return times.parse_instant(value, field, message="Invalid query")


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _meta_pairs(values: list[str] | None) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in values or []:
        key, sep, value = raw.partition(":")
        if not sep or not key.strip():
            raise ValidationError("Invalid query", {"meta": [f"expected key:value, got {raw!r}"]})
        pairs[key.strip()] = value
    return pairs


def _render(log: LogRecord) -> dict[str, Any]:
    return {
        "id": log.id,
        "service": log.service,
        "level": log.level,
        "message": log.message,
        "timestamp": times.isoformat_z(log.timestamp),
        "meta": log.meta,
    }


@router.get("/api/logs")
def get_logs(
    request: Request,
    service: str | None = None,
    level: Annotated[list[str] | None, Query()] = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
    q: str | None = None,
    meta: Annotated[list[str] | None, Query()] = None,
    page: int = 1,
    limit: int = 20,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Search logs newest first: ``{"total", "logs", "nextCursor"}``.

    ``level`` repeats or takes commas (``level=error,fatal``); ``meta=key:value``
    repeats; ``q`` is a case-insensitive substring of the message. The span
    ``from``..``to`` and the offset depth ``page * limit`` are bounded
    (``WORKBENCH_MAX_QUERY_DAYS``, ``WORKBENCH_MAX_PAGE_DEPTH``); deeper pages follow
    ``nextCursor``. Text searches use Elasticsearch when the mirror covers the range.
    """
    settings = request.app.state.settings
    start, end = parse_time(from_, "from"), parse_time(to, "to")
    check_search_limits(
        start=start,
        end=end,
        page=page,
        limit=limit,
        cursor=cursor or None,
        now=clock.now(),
        max_days=settings.max_query_days,
        max_page_depth=settings.max_page_depth,
    )
    query = SearchQuery(
        service=service or None,
        levels=_split(level) or None,
        start=start,
        end=end,
        text=q or None,
        meta=_meta_pairs(meta) or None,
        page=page,
        limit=limit,
        cursor=cursor or None,
    )
    result, _source = search_logs(settings, query)
    return {
        "total": result.total,
        "logs": [_render(log) for log in result.logs],
        "nextCursor": result.next_cursor,
    }


@router.get("/api/metrics/errors")
def get_error_trend(
    request: Request, service: str | None = None, range: str = "24h"
) -> list[dict[str, Any]]:
    """Error+fatal counts per bucket for ``range``: ``[{"time", "count"}]``, empty buckets as 0."""
    points = error_trend(
        request.app.state.settings.lake_url,
        service=service or None,
        range=range,
        now=clock.now(),
    )
    return [{"time": times.isoformat_z(p.time), "count": p.count} for p in points]
