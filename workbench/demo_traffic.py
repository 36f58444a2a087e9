"""Live demo traffic: a trickle of realistic logs over HTTP, with a periodic error burst.

``workbench up --seed-demo`` runs it beside the API so a newcomer's dashboard
moves: trends grow, and a burst every ``burst_every`` seconds trips the seeded
alert rule of the first demo service, so an incident opens, deduplicates and,
once the burst stops, can be resolved. It goes through ``POST /api/logs`` like
any service would, so it also exercises the real ingestion path.

Keys: while the API is open (no key created yet) it sends without one. Once it is
refused with 401 it asks ``get_key`` for a key (the CLI passes :func:`ingest_key`,
which creates an ``ingest`` key named ``demo-traffic`` once and keeps it in
``<data dir>/demo-traffic.key``), logs that it did, and resends. Any other refusal
(its key revoked, a 403, no ``get_key``) is logged as one clear error line, and
again only once the answer changes, never once per tick.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

import httpx
import orjson

from workbench import clock
from workbench.demo import DEMO_CASES, TEMPLATES, service_names

if TYPE_CHECKING:
    from workbench.config import Settings

log = logging.getLogger(__name__)

KEY_NAME = "demo-traffic"
KEY_FILE = "demo-traffic.key"

_INFO = [
    "GET /api/orders/{n} 200 in {ms} ms",
    "user {n} signed in",
    "cache hit for key 'cart:{n}'",
    "payment {n} authorised",
    "scheduled job 'reindex' finished in {ms} ms",
]
_ROUTES = ["/api/v1/users", "/api/v1/orders", "/api/v1/cart", "/login", "/api/v2/search"]


def live_services(count: int) -> list[str]:
    """Return the services demo traffic talks for: the demo's, minus the one the demo shows
    going silent (the ``absence`` case of ``workbench.demo.DEMO_CASES``); the first bursts."""
    silent = DEMO_CASES["absence"]["service"]
    return [name for name in service_names(count) if name != silent]


def _event(rng: random.Random, service: str, level: str) -> dict[str, object]:
    # warn/error/fatal use the demo lake's templates, so live errors are no "new pattern"
    pool = TEMPLATES.get(level, _INFO) if level != "debug" else _INFO
    message = rng.choice(pool).format(
        n=rng.randint(1, 99999),
        ms=rng.randint(3, 4000),
        a=rng.randint(1, 5),
        u=rng.randint(1, 49999),
        n2=rng.randint(0, 99),
        k=rng.randint(1, 9),
        rid=f"{rng.getrandbits(40):010x}",
        route=rng.choice(_ROUTES),
    )
    return {
        "service": service,
        "level": level,
        "message": message,
        "timestamp": clock.now().isoformat(),
        "meta": {"requestId": f"{rng.getrandbits(48):012x}", "latencyMs": rng.randint(1, 900)},
    }


def ingest_key(settings: Settings, *, now: datetime) -> str:
    """Return the demo traffic's ingest key: the one stored in the data directory, or a new one.

    A new key is stored (mode 0600) before it is returned, so a restarted demo
    traffic reuses it instead of creating another.
    """
    from workbench.catalog.db import catalog_engine, session_scope
    from workbench.security.keys import create_key

    path = settings.data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    engine = catalog_engine(settings.database_url)
    with session_scope(engine) as session:
        _, token = create_key(session=session, name=KEY_NAME, scopes=["ingest"], now=now)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return token


def _refusal(resp: httpx.Response, key: str | None) -> str:
    try:
        error = str(resp.json().get("error", ""))
    except ValueError:
        error = resp.text[:200]
    if key is None:
        hint = "no key to send: run it with a key, or via `workbench up --seed-demo`"
    else:
        hint = (
            f"its key {key[:11]}… was refused (revoked?); delete the data directory's "
            f"{KEY_FILE} to let it create a new one"
        )
    return f"demo-traffic: the API refused the demo traffic: {resp.status_code} {error}; {hint}"


def run(
    url: str,
    *,
    services: int = 8,
    rate: float = 5.0,
    burst_every: float = 600.0,
    first_burst_after: float = 20.0,
    stop: threading.Event | None = None,
    seed: int | None = None,
    api_key: str | None = None,
    get_key: Callable[[], str] | None = None,
    on_response: Callable[[int], None] | None = None,
) -> int:
    """Post demo events to ``url`` until ``stop`` is set; return how many were accepted.

    ``api_key`` is sent from the start; ``get_key`` is asked for one on the first
    401 (see the module docstring); ``on_response`` sees every answer's status.
    """
    stop = stop or threading.Event()
    rng = random.Random(seed)
    names = live_services(services)
    burst_service = names[0]
    accepted = 0
    started = time.monotonic()
    next_burst = started + first_burst_after
    burst_left = 0
    key = api_key
    refused: int | None = None  # the refusal last logged, so it is logged once
    new_key = False  # a key was just obtained: say when it is first accepted
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
            for _attempt in range(2):  # a second time only with a key just obtained
                headers = {"Content-Type": "application/x-ndjson"}
                if key is not None:
                    headers["Authorization"] = f"Bearer {key}"
                try:
                    resp = client.post("/api/logs", content=body, headers=headers)
                except httpx.HTTPError:
                    break  # the API may be restarting; the next tick tries again
                if on_response is not None:
                    on_response(resp.status_code)
                if resp.status_code == 202:
                    accepted += int(resp.json().get("accepted", len(batch)))
                    if refused is not None or new_key:
                        log.info("demo-traffic: events accepted%s", " with its key" if key else "")
                    refused, new_key = None, False
                    break
                if resp.status_code == 401 and key is None and get_key is not None:
                    key, new_key = get_key(), True
                    log.warning(
                        "demo-traffic: the API requires keys: created ingest key %s… (%s) "
                        "and sends with it from now on",
                        key[:11],
                        KEY_NAME,
                    )
                    continue
                if resp.status_code in (401, 403) and refused != resp.status_code:
                    log.error(_refusal(resp, key))
                    refused = resp.status_code
                break
            stop.wait(2.0 if burst_left else 1.0)
    return accepted
