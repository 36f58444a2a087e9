"""The evidence a firing notification carries: top patterns, newest events, links.

For each incident that pages at a tick, :func:`gather_evidence` reads the
incident's window once (one bounded read of the lake: the rule's service, levels
and message filter, or a match rule's ``match`` text, in ``(now - window, now]``, five columns, at most
:data:`MAX_ROWS` newest rows) and returns ``evidence`` for the payload:

* ``topPatterns``: up to :data:`TOP_PATTERNS` message patterns
  (:func:`workbench.patterns.top_messages`) of those rows: ``pattern``, ``count``,
  ``example`` (one concrete message);
* ``sample``: up to :data:`SAMPLE_SIZE` newest matching events: ``timestamp``,
  ``level``, ``message`` (at most :data:`MESSAGE_CHARS` characters), ``meta`` (the
  JSON text, at most :data:`META_CHARS` characters; longer values end with ``…``);
* ``logsUrl``: the dashboard's Logs page filtered to the service, levels (and
  message filter) and the window (``from``/``to``);
* ``dashboardUrl`` (the incident's page) is added when the incident id is known
  (:mod:`workbench.alerting.incidents`).

The evaluator calls this once per paging incident per tick, before writing the
decision, and shares the result between all channels. A failed read never stops a
page: the evidence then says ``error``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import polars as pl

from workbench.alerting.decide import RuleState
from workbench.catalog.payload import iso_z
from workbench.lake import reader
from workbench.patterns import top_messages

log = logging.getLogger(__name__)

TOP_PATTERNS = 5
SAMPLE_SIZE = 10
MESSAGE_CHARS = 500
META_CHARS = 1000
PATTERN_CHARS = 500
MAX_ROWS = 50_000


def clip(text: str | None, limit: int) -> str | None:
    """Return ``text`` cut to ``limit`` characters (``…`` marks a cut); None stays None."""
    if text is None or len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


def logs_url(
    dashboard_url: str,
    *,
    service: str,
    levels: tuple[str, ...],
    start: datetime,
    end: datetime,
    text: str | None = None,
) -> str:
    """Return the link to the dashboard's Logs page filtered to ``service``, levels and window."""
    query: dict[str, str] = {"service": service, "level": ",".join(levels)}
    if text:
        query["text"] = text
    query["from"] = iso_z(start)
    query["to"] = iso_z(end)
    return f"{dashboard_url.rstrip('/')}/voila/render/logs.ipynb?{urlencode(query)}"


def window_rows(lake_url: str, rule: RuleState, now: datetime) -> pl.DataFrame:
    """Return the newest (at most :data:`MAX_ROWS`) events the rule counts at ``now``, newest first."""
    start = now - rule.window
    predicate = (
        (pl.col("timestamp") > start)
        & (pl.col("timestamp") <= now)
        & (pl.col("service") == rule.service)
        & pl.col("level").is_in(list(rule.levels))
    )
    if rule.message_contains:
        predicate &= pl.col("message").str.contains(rule.message_contains, literal=True)
    if rule.kind == "match" and rule.match:
        # As the match kind counts: the message contains ``match``, literal, case-insensitive.
        folded = pl.col("message").str.to_lowercase()
        predicate &= folded.str.contains(rule.match.lower(), literal=True)
    return (
        reader.scan(lake_url, start, now)
        .filter(predicate)
        .select("timestamp", "service", "level", "message", "meta")
        .sort("timestamp", descending=True)
        .head(MAX_ROWS)
        .collect()
    )


def summarize(rows: pl.DataFrame) -> dict[str, Any]:
    """Return ``topPatterns`` and ``sample`` of the (newest-first) ``rows``."""
    patterns = top_messages(rows.lazy(), limit=TOP_PATTERNS) if rows.height else None
    top = [
        {
            "pattern": clip(str(p["pattern"]), PATTERN_CHARS),
            "count": int(p["count"]),
            "example": clip(str(p["example"]), MESSAGE_CHARS),
        }
        for p in (patterns.iter_rows(named=True) if patterns is not None else [])
    ]
    sample = [
        {
            "timestamp": iso_z(r["timestamp"].astimezone(UTC)),
            "level": r["level"],
            "message": clip(r["message"], MESSAGE_CHARS),
            "meta": clip(_meta_text(r["meta"]), META_CHARS),
        }
        for r in rows.head(SAMPLE_SIZE).iter_rows(named=True)
    ]
    return {"topPatterns": top, "sample": sample}


def _meta_text(meta: Any) -> str | None:
    if meta is None or meta == "":
        return None
    return meta if isinstance(meta, str) else json.dumps(meta)


def gather_evidence(
    lake_url: str, rule: RuleState, now: datetime, dashboard_url: str
) -> dict[str, Any]:
    """Return the ``evidence`` object of a page of ``rule`` at ``now`` (one read of its window)."""
    links = {
        "logsUrl": logs_url(
            dashboard_url,
            service=rule.service,
            levels=rule.levels,
            start=now - rule.window,
            end=now,
            text=rule.match if rule.kind == "match" else rule.message_contains,
        )
    }
    try:
        found = summarize(window_rows(lake_url, rule, now))
    except Exception as exc:  # noqa: BLE001 - evidence is a bonus; the page must still go out
        log.warning("evidence of rule %s: %s", rule.rule_id, exc)
        return {
            "topPatterns": [],
            "sample": [],
            **links,
            "error": f"{type(exc).__name__}: {exc}"[:300],
        }
    return {**found, **links}
