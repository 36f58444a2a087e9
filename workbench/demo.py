"""Synthetic but realistic logs written straight into the lake, for demos, notebooks and benchmarks.

What it looks like: steady diurnal traffic (quiet nights, busy afternoons UTC),
a Zipf-like spread over services (two of them nearly silent), mostly
``info``/``debug``, some ``warn``, a trickle of ``error``/``fatal`` and error
bursts of 15-45 minutes on a few flaky services. Messages come from per-level
template pools with numbers, ids and quoted values; ``meta`` carries
``userId``, ``requestId``, ``latencyMs``, ``route`` and ``status``.

How it is fast: timestamps for all events are drawn with numpy, sorted, then
written block by block (six hours of one day per file, as an ingestor flushing
into a partition would leave a handful of files): per block every column is
built vectorised (messages are drawn from pre-rendered pools, meta JSON by
column concatenation, ids by hex arithmetic), then ``write_batch`` commits it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pyarrow as pa

from workbench.lake.schema import SCHEMA
from workbench.lake.writer import write_batch

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US_PER_HOUR = 3_600_000_000
_BLOCK_HOURS = 6
LEVELS = np.array(["debug", "info", "warn", "error", "fatal"])
_LEVEL_P = np.array([0.22, 0.66, 0.08, 0.035, 0.005])
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)

_PREFIXES = [
    "auth",
    "billing",
    "checkout",
    "payments",
    "orders",
    "inventory",
    "search",
    "catalog",
    "shipping",
    "notifications",
    "users",
    "sessions",
    "gateway",
    "pricing",
    "reviews",
    "recommendations",
    "media",
    "reports",
    "ledger",
    "fraud",
    "email",
    "sms",
    "cart",
    "accounts",
    "profiles",
]
_SUFFIXES = ["service", "api", "worker", "cron", "consumer", "proxy"]
_ROUTES = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/cart",
    "/login",
    "/health",
    "/api/v2/search",
    "/api/v1/payments",
    "/api/v1/items",
]

_TEMPLATES: dict[str, list[str]] = {
    "debug": [
        "cache hit for key 'user:{u}:profile' ({n} bytes)",
        "SQL select took {ms}ms rows={n}",
        "resolved route {route} to handler #{k}",
        "retry budget {k}/10 remaining for request {rid}",
    ],
    "info": [
        "GET {route} 200 {ms}ms",
        "POST {route} 201 {ms}ms",
        "user u{u} logged in from 10.0.{k}.{n2}",
        "order {rid} created with {k} items total={n}.{n2} EUR",
        "job 'nightly-{k}' finished in {ms}ms",
        "published event 'order.updated' id={rid}",
    ],
    "warn": [
        "slow query took {ms}ms on table 'orders'",
        "retrying request {rid} (attempt {k}/5)",
        "rate limit near for user u{u}: {n2}/100",
        "deprecated header 'X-Api-Version' from client {k}",
    ],
    "error": [
        "Connection timeout after {ms}ms to db-{k}.internal:5432",
        "payment {rid} declined: 'insufficient_funds'",
        "Unhandled exception in handler {route}: KeyError('user_{u}')",
        "upstream returned 503 for request {rid}",
        "failed to publish message {rid} after {k} attempts",
    ],
    "fatal": [
        "out of memory: killed worker {k} (rss={n}MB)",
        "cannot open database 'main': disk full ({n2}% used)",
        "panic: nil pointer dereference in goroutine {n}",
    ],
}


def service_names(count: int) -> list[str]:
    """Return ``count`` distinct, realistic service names (deterministic)."""
    names = [f"{p}-{s}" for s in _SUFFIXES for p in _PREFIXES]
    if count <= len(names):
        return names[:count]
    return names + [f"svc-{i}" for i in range(count - len(names))]


def _message_pools(rng: np.random.Generator, per_level: int) -> dict[str, np.ndarray]:
    """Return, per level, ``per_level`` messages rendered from the templates with random values."""
    pools = {}
    for level, templates in _TEMPLATES.items():
        out = []
        for i in range(per_level):
            out.append(
                templates[i % len(templates)].format(
                    u=int(rng.integers(1, 50_000)),
                    n=int(rng.integers(1, 100_000)),
                    n2=int(rng.integers(0, 100)),
                    k=int(rng.integers(1, 10)),
                    ms=int(rng.lognormal(4, 1)),
                    rid=f"{int(rng.integers(0, 2**40)):010x}",
                    route=_ROUTES[int(rng.integers(0, len(_ROUTES)))],
                )
            )
        pools[level] = np.array(out, dtype=object)
    return pools


def _hex(values: np.ndarray, width: int) -> np.ndarray:
    """Return fixed-width lower-case hex (as ``S{width}`` bytes) of non-negative integers."""
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    digits = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(0xF)
    return np.ascontiguousarray(_HEX[digits]).view(f"S{width}").ravel()


def _draw_timestamps(
    rng: np.random.Generator, events: int, start_us: int, end_us: int
) -> np.ndarray:
    """Return ``events`` sorted timestamps (µs) in ``[start_us, end_us)`` with a diurnal shape."""
    hours = (end_us - start_us) // _US_PER_HOUR + 1
    hour_starts = start_us + np.arange(hours, dtype=np.int64) * _US_PER_HOUR
    hod = (hour_starts // _US_PER_HOUR) % 24
    weight = 1.0 + 0.8 * np.sin((hod - 8) / 24 * 2 * np.pi)  # busiest around 14:00 UTC
    per_hour = rng.choice(hours, size=events, p=weight / weight.sum())
    ts = hour_starts[per_hour] + rng.integers(0, _US_PER_HOUR, size=events)
    ts = np.clip(ts, start_us, end_us - 1)
    ts.sort()
    return ts


def generate(
    lake_url: str,
    *,
    events: int,
    days: int,
    services: int,
    now: datetime,
    seed: int = 0,
) -> int:
    """Write ``events`` synthetic events spread over the ``days`` before ``now``; return the count."""
    if events <= 0 or days <= 0 or services <= 0:
        return 0
    rng = np.random.default_rng(seed)
    names = np.array(service_names(services), dtype=object)
    # Zipf-like traffic; the last two services are nearly silent.
    weight = 1.0 / np.arange(1, services + 1) ** 0.8
    if services > 4:
        weight[-2:] = weight.sum() * 2e-5
    svc_p = weight / weight.sum()
    flaky = rng.choice(services, size=min(3, services), replace=False)
    end_us = (now.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    start_us = end_us - days * 24 * _US_PER_HOUR
    bursts = [
        (int(s), b0, b0 + int(rng.integers(15, 46)) * 60_000_000)
        for s in flaky
        for b0 in rng.integers(start_us, end_us, size=max(1, days // 2)).tolist()
    ]
    pools = _message_pools(rng, 5_000)
    node = int(rng.integers(0, 2**32))
    ts_all = _draw_timestamps(rng, events, start_us, end_us)
    block_us = _BLOCK_HOURS * _US_PER_HOUR
    edges = np.arange((start_us // block_us) * block_us, end_us + block_us, block_us)
    cuts = np.searchsorted(ts_all, edges)
    written = 0
    seq = 0
    for i in range(len(edges) - 1):
        ts = ts_all[cuts[i] : cuts[i + 1]]
        n = len(ts)
        if n == 0:
            continue
        svc = rng.choice(services, size=n, p=svc_p)
        lvl = rng.choice(len(LEVELS), size=n, p=_LEVEL_P)
        for s, b0, b1 in bursts:
            hit = (svc == s) & (ts >= b0) & (ts < b1)
            lvl[hit & (rng.random(n) < 0.6)] = 3
            lvl[hit & (rng.random(n) < 0.03)] = 4
        messages = np.empty(n, dtype=object)
        for li, level in enumerate(LEVELS):
            mask = lvl == li
            pool = pools[str(level)]
            messages[mask] = pool[rng.integers(0, len(pool), size=int(mask.sum()))]
        received = ts + rng.integers(0, 2_000_000, size=n)
        ids = np.char.add(
            np.char.add(_hex(received // 1000, 12), _hex(np.full(n, node), 8)),
            _hex(seq + np.argsort(np.argsort(received, kind="stable")), 12),
        )
        seq += n
        frame = pl.DataFrame(
            {
                "id": ids.astype("U32"),
                "timestamp": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
                "received_at": pl.Series(received).cast(pl.Datetime("us", "UTC")),
                "service": names[svc].astype(str),
                "level": LEVELS[lvl],
                "message": messages.astype(str),
                "user": rng.integers(1, 50_000, size=n),
                "req": _hex(rng.integers(0, 2**48, size=n, dtype=np.int64), 12).astype("U12"),
                "lat": np.round(rng.lognormal(3.5, 1.0, size=n)).astype(np.int64),
                "route": np.array(_ROUTES)[rng.integers(0, len(_ROUTES), size=n)],
                "status": np.where(lvl >= 3, 500, np.where(lvl == 2, 429, 200)),
                "no_meta": rng.random(n) < 0.1,
            }
        )
        frame = frame.with_columns(
            pl.when(pl.col("no_meta"))
            .then(None)
            .otherwise(
                pl.concat_str(
                    pl.lit('{"userId":"u'),
                    pl.col("user"),
                    pl.lit('","requestId":"'),
                    pl.col("req"),
                    pl.lit('","latencyMs":'),
                    pl.col("lat"),
                    pl.lit(',"route":"'),
                    pl.col("route"),
                    pl.lit('","status":'),
                    pl.col("status"),
                    pl.lit("}"),
                )
            )
            .alias("meta")
        )
        day = datetime.fromtimestamp(int(edges[i]) / 1e6, UTC)
        name = f"demo-{seed}-{day:%Y%m%dT%H}"
        write_batch(_table(frame), lake_url=lake_url, name=name)
        written += n
    return written


def _table(frame: pl.DataFrame) -> pa.Table:
    """Return a polars frame as a lake-schema Arrow table."""
    return frame.select(SCHEMA.names).to_arrow().cast(SCHEMA)


def demo_rule_names() -> list[str]:
    """Return the names of the alert rules :func:`seed_rules` creates (first: the demo burst's)."""
    return [f"{service} error burst" for service in service_names(8)[:4]]


def seed_rules(database_url: str, now: datetime) -> bool:
    """Create the demo's alert rules (one per busy demo service) unless rules exist; return if done."""
    from sqlmodel import select

    from workbench.catalog.db import catalog_engine, session_scope
    from workbench.catalog.models import AlertRule

    engine = catalog_engine(database_url)
    # The services demo.generate and demo_traffic use; the first gets demo_traffic's bursts.
    names = service_names(8)[:4]
    with session_scope(engine) as session:
        if session.exec(select(AlertRule)).first() is not None:
            return False
        for i, (service, name) in enumerate(zip(names, demo_rule_names(), strict=True)):
            session.add(
                AlertRule(
                    name=name,
                    service=service,
                    threshold=5 + 5 * i,
                    window_minutes=5,
                    cooldown_minutes=15,
                    severity="critical" if i == 0 else "warning",
                    created_at=now,
                    updated_at=now,
                )
            )
    return True
