"""Live demo traffic: a trickle of realistic logs over HTTP, with a periodic error burst.

``workbench up --seed-demo`` runs it beside the API so a newcomer's dashboard
moves: trends grow, and a burst every ``burst_every`` seconds trips the seeded
alert rule of the first demo service, so an incident opens, deduplicates and,
once the burst stops, can be resolved. It goes through ``POST /api/logs`` like
any service would, so it also exercises the real ingestion path.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime

import httpx
import orjson

from workbench.demo import service_names

_INFO = [
    "GET /api/orders/{n} 200 in {ms} ms",
    "user {n} signed in",
    "cache hit for key 'cart:{n}'",
    "payment {n} authorised",
    "scheduled job 'reindex' finished in {ms} ms",
]
_WARN = ["slow query on orders ({ms} ms)", "retrying upstream call, attempt {a}"]
_ERROR = [
    "timeout after {ms} ms calling payments-gateway",
    "Failed to authenticate user {n}",
    "database connection refused (pool exhausted, {a} waiting)",
]


def _event(rng: random.Random, service: str, level: str) -> dict[str, object]:
    pool = {"warn": _WARN, "error": _ERROR, "fatal": _ERROR}.get(level, _INFO)
    message = rng.choice(pool).format(n=rng.randint(1, 99999), ms=rng.randint(3, 4000),
                                      a=rng.randint(1, 5))
    return {
        "service": service,
        "level": level,
        "message": message,
        "timestamp": datetime.now(UTC).isoformat(),
        "meta": {"requestId": f"{rng.getrandbits(48):012x}", "latencyMs": rng.randint(1, 900)},
    }


def run(
    url: str,
    *,
    services: int = 8,
    rate: float = 5.0,
    burst_every: float = 600.0,
    first_burst_after: float = 20.0,
    stop: threading.Event | None = None,
    seed: int | None = None,
) -> int:
    """Post demo events to ``url`` until ``stop`` is set; return how many were accepted."""
    stop = stop or threading.Event()
    rng = random.Random(seed)
    names = service_names(services)
    burst_service = names[0]
    accepted = 0
    started = time.monotonic()
    next_burst = started + first_burst_after
    burst_left = 0
    with httpx.Client(base_url=url, timeout=5.0) as client:
        while not stop.is_set():
            batch = []
            for _ in range(max(1, int(rng.expovariate(1.0 / rate)))):
                level = rng.choices(["debug", "info", "warn", "error"], [20, 70, 8, 2])[0]
                batch.append(_event(rng, rng.choice(names), level))
            now = time.monotonic()
            if burst_left == 0 and now >= next_burst:
                burst_left, next_burst = 60, now + burst_every
            if burst_left:  # about 30 errors a minute on one service for two minutes
                batch.append(_event(rng, burst_service, rng.choice(["error", "error", "fatal"])))
                burst_left -= 1
            body = b"\n".join(orjson.dumps(e) for e in batch)
            try:
                resp = client.post(
                    "/api/logs", content=body, headers={"Content-Type": "application/x-ndjson"}
                )
                if resp.status_code == 202:
                    accepted += int(resp.json().get("accepted", len(batch)))
            except httpx.HTTPError:
                pass  # the API may be restarting; the next tick tries again
            stop.wait(2.0 if burst_left else 1.0)
    return accepted
