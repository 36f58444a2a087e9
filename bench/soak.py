"""Soak test: sustained mixed ingest and queries against ``workbench serve`` with the scheduler.

Starts ``workbench serve`` (127.0.0.1, free port) and ``workbench scheduler`` on a
fresh data directory, with one alert rule (errors of ``soak-0``) and one webhook
channel pointing at a receiver in this process, so every scheduler tick evaluates
the growing lake, opens or updates an incident and sends what is due. Then for
``--seconds`` runs bounded loops (each stops by itself at the deadline):
single-event POSTs, batch POSTs, searches (``GET /api/logs``) and trends
(``GET /api/metrics/errors``). Every event carries a unique client id in its
message. Reports per interval: requests/s per endpoint, the ingest p99 of the
interval, RSS of both processes (with their children: the scheduler's kernel)
and the 1-minute load average; at the end p50/p99 latency per endpoint, the
scheduler's evaluation runs and notifications, and the check that every event
answered 202 is in the lake exactly once (after a graceful stop, which flushes
the WAL).

    .venv/bin/python bench/soak.py --seconds 600
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Stats:
    """Thread-safe latencies and answer counts per endpoint, and accepted client ids."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.codes: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        self.accepted: list[str] = []
        self.errors: dict[str, int] = defaultdict(int)

    def record(self, name: str, seconds: float, code: int) -> None:
        """Record one answer."""
        with self.lock:
            self.latencies[name].append(seconds)
            self.codes[name][code] += 1


def _event(cid: str) -> dict[str, Any]:
    level = "error" if cid[-1] in "01" else "info"
    return {"service": f"soak-{cid[0]}", "level": level, "message": f"soak {cid}"}


def loop(name: str, url: str, deadline: float, stats: Stats, pause: float) -> None:
    """Send one kind of request until ``deadline`` (bounded: stops by itself)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        while time.monotonic() < deadline:
            ids: list[str] = []
            t0 = time.perf_counter()
            try:
                if name == "single":
                    ids = [uuid.uuid4().hex]
                    r = client.post("/api/logs", json=_event(ids[0]))
                elif name == "batch":
                    ids = [uuid.uuid4().hex for _ in range(100)]
                    r = client.post("/api/logs", json=[_event(i) for i in ids])
                elif name == "search":
                    r = client.get("/api/logs", params={"level": "error", "limit": 50})
                else:
                    r = client.get("/api/metrics/errors", params={"range": "1h"})
            except httpx.HTTPError as exc:
                with stats.lock:
                    stats.errors[f"{name}: {type(exc).__name__}"] += 1
                time.sleep(0.5)
                continue
            stats.record(name, time.perf_counter() - t0, r.status_code)
            if r.status_code == 202:
                with stats.lock:
                    stats.accepted.extend(ids)
            if pause:
                time.sleep(pause)


class Hooks:
    """A loopback webhook receiver in a thread; counts the notifications it is sent."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                hooks.received.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop the receiver."""
        self.server.shutdown()
        self.server.server_close()


def seed_catalog(database_url: str, hook_url: str) -> None:
    """Create the catalog with one rule (10 errors of ``soak-0`` in 5 min) and one webhook."""
    from workbench.catalog.db import get_engine, init_db, session_scope
    from workbench.catalog.models import AlertRule, NotificationChannel

    engine = get_engine(database_url)
    init_db(engine)
    with session_scope(engine) as s:
        s.add(
            AlertRule(
                name="soak-0 errors",
                service="soak-0",
                threshold=10,
                window_minutes=5,
                cooldown_minutes=5,
                created_at=datetime.now(UTC) - timedelta(minutes=1),
            )
        )
        s.add(NotificationChannel(name="soak hook", target=hook_url))
    engine.dispose()


def catalog_summary(database_url: str) -> str:
    """Return the scheduler's evaluation runs by status and the incident/delivery counts."""
    import sqlalchemy as sa

    from workbench.catalog.db import get_engine

    engine = get_engine(database_url)
    with engine.connect() as c:
        runs = dict(
            c.execute(sa.text("SELECT status, count(*) FROM evaluation_runs GROUP BY status")).all()
        )
        incidents = c.execute(sa.text("SELECT count(*) FROM alert_incidents")).scalar()
        sent = dict(
            c.execute(
                sa.text("SELECT status, count(*) FROM notification_deliveries GROUP BY status")
            ).all()
        )
    engine.dispose()
    return f"evaluation runs: {runs}; incidents: {incidents}; deliveries: {sent}"


def pct(values: list[float], q: float) -> float:
    """Return the ``q`` quantile of ``values`` in milliseconds (0 when empty)."""
    if not values:
        return 0.0
    s = sorted(values)
    return 1000 * s[min(len(s) - 1, int(q * len(s)))]


def main() -> int:
    """Run the soak and print the report; exit 1 when an accepted event is missing or doubled."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--interval", type=float, default=10, help="report interval in seconds")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--evaluate-every", type=int, default=30, help="scheduler interval in seconds")
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="wb-soak-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database_url = f"sqlite:///{data / 'workbench.db'}"
    hooks = Hooks()
    seed_catalog(database_url, hooks.url)
    env = {
        **os.environ,
        "WORKBENCH_DATA_DIR": str(data),
        "DATABASE_URL": database_url,
        "WORKBENCH_API_URL": url,
        "WORKBENCH_EVALUATE_INTERVAL_SECONDS": str(args.evaluate_every),
        "WORKBENCH_ALLOW_PRIVATE_WEBHOOKS": "true",  # the receiver is on 127.0.0.1
    }
    py = [sys.executable, "-m", "workbench"]
    logs = {n: open(data.parent / f"{data.name}-{n}.log", "wb") for n in ("serve", "scheduler")}  # noqa: SIM115
    serve = subprocess.Popen(
        [*py, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=logs["serve"],
        stderr=subprocess.STDOUT,
    )
    sched = subprocess.Popen(
        [*py, "scheduler"], env=env, cwd=ROOT, stdout=logs["scheduler"], stderr=subprocess.STDOUT
    )
    procs = {"serve": serve, "scheduler": sched}
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("server did not start")
        stats = Stats()
        start = time.monotonic()
        deadline = start + args.seconds
        plan = [("single", 0.0), ("single", 0.0), ("batch", 0.05), ("search", 0.2), ("trend", 0.5)]
        threads = [
            threading.Thread(target=loop, args=(n, url, deadline, stats, p), daemon=True)
            for n, p in plan
        ]
        for t in threads:
            t.start()
        ps = {n: psutil.Process(p.pid) for n, p in procs.items()}
        last = {n: 0 for n in ("single", "batch", "search", "trend")}
        print(f"load average at start: {os.getloadavg()[0]:.2f} ({os.cpu_count()} CPUs)")
        print(
            f"{'t(s)':>6} {'single/s':>9} {'batch/s':>8} {'ev/s':>7} {'p99 ms':>7} {'search/s':>9} "
            f"{'trend/s':>8} {'serve MB':>9} {'sched MB':>9} {'load1':>6}"
        )
        last_t = time.monotonic()
        while any(t.is_alive() for t in threads):
            time.sleep(min(args.interval, max(0.1, deadline - time.monotonic() + 0.5)))
            with stats.lock:
                now_counts = {n: len(stats.latencies[n]) for n in last}
                window = [
                    x
                    for n in ("single", "batch")
                    for x in stats.latencies[n][last[n] : now_counts[n]]
                ]
            elapsed, last_t = time.monotonic() - last_t, time.monotonic()
            if elapsed < 1:  # the loops just ended: no interval to report
                continue
            rate = {n: (now_counts[n] - last[n]) / max(elapsed, 1e-3) for n in last}
            last = now_counts
            rss = {}
            for n, p in ps.items():
                try:
                    rss[n] = (
                        sum(c.memory_info().rss for c in [p, *p.children(recursive=True)]) / 2**20
                    )
                except psutil.NoSuchProcess:
                    rss[n] = float("nan")
            print(
                f"{time.monotonic() - start:6.0f} {rate['single']:9.1f} {rate['batch']:8.1f} "
                f"{rate['single'] + 100 * rate['batch']:7.0f} {pct(window, 0.99):7.1f} "
                f"{rate['search']:9.1f} {rate['trend']:8.1f} "
                f"{rss['serve']:9.1f} {rss['scheduler']:9.1f} {os.getloadavg()[0]:6.2f}",
                flush=True,
            )
        print("\nendpoint  requests  p50 ms  p99 ms  answers")
        for n in last:
            lat = stats.latencies[n]
            print(
                f"{n:8} {len(lat):9} {pct(lat, 0.5):7.1f} {pct(lat, 0.99):7.1f}  {dict(stats.codes[n])}"
            )
        if stats.errors:
            print("transport errors:", dict(stats.errors))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs.values():
            f.close()
        hooks.close()
    print(f"\n{catalog_summary(database_url)}; webhook requests received: {len(hooks.received)}")
    from workbench.lake import reader

    # As readers see the lake: files replaced by compaction stay on disk for a grace
    # period but are hidden, so a glob over *.parquet would count their events twice.
    frame = reader.scan(str(data / "lake")).select("message").collect()
    found = frame["message"].str.strip_prefix("soak ").value_counts()
    counts = dict(zip(found["message"].to_list(), found["count"].to_list(), strict=True))
    missing = [i for i in stats.accepted if i not in counts]
    doubled = [i for i, c in counts.items() if c > 1]
    print(
        f"\naccepted (202) events: {len(stats.accepted)}; in lake: {sum(counts.values())}; missing: {len(missing)}; duplicated: {len(doubled)}"
    )
    if not args.keep:
        shutil.rmtree(data, ignore_errors=True)
        for f in logs.values():
            Path(f.name).unlink(missing_ok=True)
    return 1 if missing or doubled else 0


if __name__ == "__main__":
    raise SystemExit(main())
