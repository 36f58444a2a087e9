"""Query limits: the widest time span and the deepest offset page one search may ask for.

A search with no time bound, or ``page=5000``, scans and sorts far more than it
returns and holds a worker meanwhile. These checks run before the search; their
errors name the field (``from``/``to``/``page``) and say what to do instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from workbench.errors import ValidationError


def check_search_limits(
    *,
    start: datetime | None,
    end: datetime | None,
    page: int,
    limit: int,
    cursor: str | None,
    now: datetime,
    max_days: int,
    max_page_depth: int,
) -> None:
    """Return if the search is within the limits; ValidationError naming the field otherwise.

    The span is ``end - start``, with a missing ``end`` read as ``now``. A search
    with no ``start`` stays allowed (the original API's default view of the newest
    logs): it reads newest first and stops once the page is full. Paging by offset
    may reach ``max_page_depth`` events; deeper pages follow ``nextCursor`` (a
    request with a cursor ignores ``page``).
    """
    details: dict[str, list[str]] = {}
    if start is not None:
        span = (end or now) - start
        if span > timedelta(days=max_days):
            details["from"] = [
                f"the time range may span at most {max_days} days; narrow from/to"
            ]
    if cursor is None and page >= 1 and limit >= 1 and page * limit > max_page_depth:
        details["page"] = [
            f"page * limit may be at most {max_page_depth}; follow nextCursor to go deeper"
        ]
    if details:
        raise ValidationError("Query over its limits", details)
