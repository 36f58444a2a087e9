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
from typing import Any

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

#: The message templates of each level (also used by ``demo_traffic``, so live errors are known).
TEMPLATES: dict[str, list[str]] = {
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
    for level, templates in TEMPLATES.items():
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
    cases: bool = False,
) -> int:
    """Write ``events`` synthetic events spread over the ``days`` before ``now``; return the count.

    ``cases=True`` (the demo of ``workbench up``; needs 6 services) also stages one case
    per rule kind just before ``now`` (see :data:`DEMO_CASES`): the silent service's last
    :data:`SILENT_MINUTES` are left out and :func:`plant_cases` adds the rest. Without it
    the lake is exactly what it always was for the seed (the benchmarks rely on that).
    """
    if events <= 0 or days <= 0 or services <= 0:
        return 0
    if cases and services < len(DEMO_CASES):
        raise ValueError(f"cases=True needs at least {len(DEMO_CASES)} services")
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
        if cases:  # the silent service says nothing in its last SILENT_MINUTES
            silent = service_names(services).index(DEMO_CASES["absence"]["service"])
            frame = frame.filter(pl.Series(~((svc == silent) & (ts > end_us - _SILENT_US))))
            n = frame.height
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
    if cases:
        written += plant_cases(lake_url, now=now, seed=seed)
    return written


#: Minutes before ``now`` in which the demo's silent service (the ``absence`` case) logs nothing.
SILENT_MINUTES = 45
_SILENT_US = SILENT_MINUTES * 60_000_000
_CASE_MINUTES = 10  # the planted events fall in the last ten minutes before ``now``

#: One case per rule kind in the demo (``generate(cases=True)``) and the rule that catches it
#: (``seed_rules``): its service, the rule's fields, and what is planted just before ``now``:
#: ``events`` events of ``level`` with ``message`` (a template of the usual pools when None)
#: over the last ``minutes`` minutes. The services are the busiest six of ``service_names``;
#: the first is the one ``demo_traffic`` bursts on.
DEMO_CASES: dict[str, dict[str, Any]] = {
    "threshold": {
        "service": "auth-service",
        "name": "auth-service error burst",
        "threshold": 5,
        "window_minutes": 5,
        "severity": "critical",
        "plant": {"events": 15, "minutes": 4, "level": "error", "message": None},
    },
    "match": {
        "service": "billing-service",
        "name": "billing-service circuit breaker open",
        "match": "circuit breaker open",
        "threshold": 3,
        "window_minutes": 15,
        "plant": {
            "events": 8,
            "minutes": _CASE_MINUTES,
            "level": "error",
            "message": "circuit breaker OPEN for 'stripe-api' after {k} failures",
        },
    },
    "new_pattern": {
        "service": "checkout-service",
        "name": "checkout-service new error message",
        "threshold": 5,
        "window_minutes": 15,
        "baseline_days": 7,
        "plant": {
            "events": 12,
            "minutes": _CASE_MINUTES,
            "level": "error",
            "message": "TLS handshake failed: certificate expired for "
            "tax-api.internal (attempt {k}/3)",
        },
    },
    "anomaly": {
        "service": "payments-service",
        "name": "payments-service errors unusual for the hour",
        "threshold": 20,
        "window_minutes": 60,
        "baseline_days": 7,
        "sensitivity": 3.0,
        "plant": {"events": 45, "minutes": 30, "level": "error", "message": None},
    },
    "ratio": {
        "service": "orders-service",
        "name": "orders-service error rate above 25%",
        "threshold": 25,
        "window_minutes": 10,
        "min_events": 40,
        "plant": {"events": 60, "minutes": _CASE_MINUTES, "level": "error", "message": None},
    },
    "absence": {
        "service": "inventory-service",
        "name": "inventory-service went silent",
        "threshold": 1,
        "window_minutes": 30,
        "plant": None,
    },
}


def plant_cases(lake_url: str, *, now: datetime, seed: int = 0) -> int:
    """Write the planted events of :data:`DEMO_CASES` into the lake (one file); return how many.

    Each case's events are spread evenly over its last minutes before ``now``
    (``now`` itself excluded), so every demo rule sees its case at ``now`` and
    for a few ticks after. The ``absence`` case is an omission, made by ``generate``.
    """
    rng = np.random.default_rng([seed, 14])  # its own stream: the plain lake is untouched
    pools = _message_pools(rng, 50)
    end_us = (now.astimezone(UTC) - _EPOCH) // timedelta(microseconds=1)
    rows: dict[str, list[Any]] = {"ts": [], "service": [], "level": [], "message": []}
    for case in DEMO_CASES.values():
        plant = case["plant"]
        if not plant:
            continue
        count, span_us = int(plant["events"]), int(plant["minutes"]) * 60_000_000
        for j in range(count):
            rows["ts"].append(end_us - span_us + (j * span_us) // count + 1)
            rows["service"].append(case["service"])
            rows["level"].append(plant["level"])
            template = plant["message"]
            rows["message"].append(
                str(pools[plant["level"]][int(rng.integers(0, 50))])
                if template is None
                else template.format(
                    k=int(rng.integers(2, 10)), rid=f"{int(rng.integers(0, 2**40)):010x}"
                )
            )
    n = len(rows["ts"])
    ts = np.array(rows["ts"], dtype=np.int64)
    received = ts + 500_000
    ids = np.char.add(
        np.char.add(_hex(received // 1000, 12), _hex(np.full(n, int(rng.integers(0, 2**32))), 8)),
        _hex(np.arange(n, dtype=np.int64), 12),
    )
    frame = pl.DataFrame(
        {
            "id": ids.astype("U32"),
            "timestamp": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "received_at": pl.Series(received).cast(pl.Datetime("us", "UTC")),
            "service": rows["service"],
            "level": rows["level"],
            "message": rows["message"],
            "meta": pl.Series([None] * n, dtype=pl.String),
        }
    )
    write_batch(_table(frame), lake_url=lake_url, name=f"demo-{seed}-cases-{now:%Y%m%dT%H%M}")
    return n


def _table(frame: pl.DataFrame) -> pa.Table:
    """Return a polars frame as a lake-schema Arrow table."""
    return frame.select(SCHEMA.names).to_arrow().cast(SCHEMA)


def demo_rule_names() -> list[str]:
    """Return the names of the alert rules :func:`seed_rules` creates (first: the demo burst's)."""
    return [case["name"] for case in DEMO_CASES.values()]


def demo_rules() -> list[dict[str, Any]]:
    """Return the demo's rules as ``RuleCreate`` bodies (snake_case), one per kind."""
    out = []
    for kind, case in DEMO_CASES.items():
        body = {k: v for k, v in case.items() if k != "plant"}
        out.append({"kind": kind, "cooldown_minutes": 15, "severity": "warning", **body})
    return out


def seed_rules(database_url: str, now: datetime) -> bool:
    """Create the demo's alert rules (one per rule kind) unless rules exist; return if done."""
    from sqlmodel import select

    from workbench.catalog.db import catalog_engine, session_scope
    from workbench.catalog.models import AlertRule
    from workbench.catalog.schemas import RuleCreate

    engine = catalog_engine(database_url)
    with session_scope(engine) as session:
        if session.exec(select(AlertRule)).first() is not None:
            return False
        for body in demo_rules():
            data = RuleCreate.model_validate(body)
            session.add(
                AlertRule(
                    **data.model_dump(exclude={"levels"}),
                    levels=list(data.levels),
                    created_at=now,
                    updated_at=now,
                )
            )
    return True
