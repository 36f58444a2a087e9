"""Factories for tests: build lake-schema event tables and write them into a lake."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from workbench.lake.schema import SCHEMA
from workbench.lake.writer import write_batch

_seq = itertools.count()
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _id_for(ts: datetime) -> str:
    # Time-ordered like the real ids: µs since epoch in fixed-width hex, then a counter.
    us = (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"{us:014x}{next(_seq):010x}"


def make_events(
    rows: Iterable[Mapping[str, Any]] | None = None,
    *,
    n: int = 0,
    start: datetime = T0,
    step: timedelta = timedelta(seconds=1),
    service: str = "api",
    level: str = "info",
    message: str = "request handled",
    meta: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Return a lake-schema table from ``rows`` (dicts) or ``n`` generated events spaced by ``step``.

    A row may give ``service, level, message, timestamp, meta (dict or None), id,
    received_at``; missing keys take the keyword defaults.
    """
    if rows is None:
        rows = [{"timestamp": start + i * step} for i in range(n)]
    records = []
    for r in rows:
        ts: datetime = r.get("timestamp", start)
        m = r.get("meta", meta)
        records.append(
            {
                "id": r.get("id") or _id_for(ts),
                "timestamp": ts,
                "received_at": r.get("received_at", ts),
                "service": r.get("service", service),
                "level": r.get("level", level),
                "message": r.get("message", message),
                "meta": None if m is None else json.dumps(m),
            }
        )
    return pa.Table.from_pylist(records, schema=SCHEMA)


def write_events(
    lake_url: str, rows: pa.Table | Iterable[Mapping[str, Any]], *, name: str | None = None
) -> list[str]:
    """Write events (a table or dicts for :func:`make_events`) as one batch; return the files."""
    table = rows if isinstance(rows, pa.Table) else make_events(rows)
    return write_batch(table, lake_url=lake_url, name=name or uuid.uuid4().hex[:12])
