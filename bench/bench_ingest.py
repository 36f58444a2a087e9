"""Measure ingestion: single-event POSTs (wrk), fixed-rate latency, NDJSON into Parquet, RSS.

Run from the repository root:

    scripts/bootstrap --bench   # once: Debian's wrk
    .venv/bin/python bench/bench_ingest.py [--duration 10] [--write-docs]

It starts ``workbench serve`` in a subprocess on a free loopback port with its
own temporary data directory, drives it, stops it, and prints a Markdown
section (without wrk installed, or with ``--no-wrk``, the wrk column is ``n/a``
and every other phase runs); ``--write-docs`` also replaces the ``## Ingestion`` section of
``docs/benchmarks.md`` with it. Load generators run on the same machine and
take CPU from the server: the figures are a floor, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import polars as pl
import psutil
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from workbench.events import (  # noqa: E402
    Limits,
    ndjson_lines,
    parse_lines,
    validate_batch,
)
from workbench.events_arrow import decode_plain_lines  # noqa: E402
from workbench.ids import IdGenerator  # noqa: E402
from workbench.lake.reader import scan  # noqa: E402
from workbench.lake.records import (  # noqa: E402
    columns_to_ipc,
    events_to_ipc,
    records_to_table,
    to_us,
)
from workbench.lake.writer import write_batch  # noqa: E402

README_EVENT = {
    "service": "auth-service",
    "level": "error",
    "message": "Failed to authenticate user",
    "meta": {"userId": "123", "ip": "192.168.1.1"},
}
NDJSON_SERVICE = "ndjson-bench"  # tells these events apart from the single-event phases
LUA = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{body}'
"""


@dataclass
class Run:
    """Figures of one server configuration."""

    workers: int
    wrk: dict[str, Any] | None
    rate: dict[str, float]
    e2e: float
    e2e_per_cpu: float
    acked: float
    rss_single: int
    rss_batch: int


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RssSampler:
    """Samples the resident memory of a process tree in a thread; keeps the peak."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """Return the CPU time (user + system) used so far by the process tree."""
        total = 0.0
        for proc in [self.root, *self.root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
        return total

    def reset(self) -> None:
        """Forget the peak so far (start a new phase)."""
        self.peak = 0

    def stop(self) -> int:
        """Stop sampling; return the peak RSS in bytes."""
        self._stop.set()
        self._thread.join()
        return self.peak


@contextmanager
def server(data_dir: Path, *, workers: int = 1) -> Iterator[tuple[str, int]]:
    """Run ``workbench serve`` on a free port for the block; yield its base URL and pid."""
    port = free_port()
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "workbench", "serve", "--port", str(port)]
    cmd += ["--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("server did not start") from None
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_wrk(url: str, duration: int, connections: int, workdir: Path) -> dict[str, Any]:
    """Return requests/s, p50 and p99 (ms) of single-event POSTs driven by wrk."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: run scripts/bootstrap --bench (Debian's wrk)")
    lua = workdir / "post.lua"
    lua.write_text(LUA.format(body=orjson.dumps(README_EVENT).decode()))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua)]
    cmd.append(f"{url}/api/logs")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)\b", out)
        assert m, out
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {
        "rps": rps,
        "p50": pct("50"),
        "p99": pct("99"),
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "command": " ".join(shlex.quote(c) for c in cmd),
    }


async def _fixed_rate(
    host: str, port: int, rate: int, duration: float, conns: int, warmup: float = 0.0
) -> tuple[list[float], float]:
    """Send single-event POSTs at ``rate``/s (open loop); return latencies (ms) and span (s).

    A latency counts from the request's scheduled time, not from when a free
    connection picked it up, so a stalled server cannot hide its queueing
    (the "coordinated omission" wrk2 corrects). The first ``warmup`` seconds are sent
    at the same rate but not counted (connections opening, first requests).
    """
    body = orjson.dumps(README_EVENT)
    request = (
        f"POST /api/logs HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    skip = int(rate * warmup)
    total = skip + int(rate * duration)
    latencies: list[float] = []
    counter = iter(range(total))
    clock = time.perf_counter  # uvloop's loop.time() has only millisecond resolution
    start = clock() + 0.2

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for k in counter:
            scheduled = start + k / rate
            delay = scheduled - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            m = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(m.group(1)) if m else 0)
            if not head.startswith(b"HTTP/1.1 202"):
                raise RuntimeError(head.decode(errors="replace"))
            if k >= skip:
                latencies.append((clock() - scheduled) * 1000)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(conns)))
    return latencies, clock() - start - warmup


def wait_idle(url: str, timeout: float = 60.0) -> None:
    """Return once the server's WAL backlog is empty (the previous run's events are flushed)."""
    deadline = time.monotonic() + timeout
    quiet = 0  # consecutive answers with nothing pending (with 2 workers, either may answer)
    while time.monotonic() < deadline and quiet < 4:
        wal = httpx.get(f"{url}/health", timeout=5).json()["wal"]
        quiet = quiet + 1 if wal["events"] == 0 else 0
        time.sleep(0.2)


def fixed_rate(
    url: str, rate: int, duration: float, conns: int = 64, warmup: float = 2.0
) -> dict[str, float]:
    """Return achieved rate, p50, p99 and max latency (ms) at a fixed offered rate.

    Starts once the server is idle (the wrk run's events flushed) and leaves the
    first ``warmup`` seconds out of the figures.
    """
    host, port = url.removeprefix("http://").split(":")
    wait_idle(url)
    # uvloop: the generator must not be the bottleneck on a busy 2-core machine.
    latencies, span = uvloop.run(_fixed_rate(host, int(port), rate, duration, conns, warmup))
    lat = sorted(latencies)
    return {
        "achieved": len(lat) / span,
        "p50": lat[len(lat) // 2],
        "p99": lat[int(len(lat) * 0.99)],
        "max": lat[-1],
    }


def ndjson_bodies(batches: int, size: int) -> list[bytes]:
    """Return ``batches`` NDJSON bodies of ``size`` events, as a log shipper sends them.

    Every event has its own message, a client timestamp (milliseconds, ``Z``) and
    a meta whose values vary from event to event, so neither the messages nor
    the metas repeat within a batch.
    """
    start = datetime.now(UTC)
    bodies = []
    for b in range(batches):
        lines = []
        for i in range(size):
            at = start + timedelta(microseconds=(b * size + i) * 10)
            event = {
                "timestamp": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "service": NDJSON_SERVICE,
                "level": ("info", "info", "warn", "error")[i % 4],
                "message": f"Failed to authenticate user {b}-{i}",
                "meta": {"userId": str(b * size + i), "ip": f"10.0.{b % 256}.{i % 256}"},
            }
            lines.append(orjson.dumps(event))
        bodies.append(b"\n".join(lines))
    return bodies


async def _post_all(host: str, port: int, bodies: list[bytes], clients: int) -> None:
    """POST every NDJSON body over ``clients`` keep-alive connections; retry 503s."""
    queue = iter(bodies)

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        for body in queue:
            request = (
                f"POST /api/logs HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            while True:
                writer.write(request)
                writer.write(body)
                head = await reader.readuntil(b"\r\n\r\n")
                m = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
                answer = await reader.readexactly(int(m.group(1)) if m else 0)
                if head.startswith(b"HTTP/1.1 202"):
                    break
                if not head.startswith(b"HTTP/1.1 503"):
                    raise RuntimeError((head + answer).decode(errors="replace"))
                retry = re.search(rb"retry-after: (\d+)", head, re.IGNORECASE)
                await asyncio.sleep(float(retry.group(1)) if retry else 1.0)
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))


def ndjson_end_to_end(
    url: str, bodies: list[bytes], lake_url: str, clients: int = 4
) -> tuple[float, float]:
    """Post the bodies concurrently; return events/s until every event is in Parquet, and
    events/s until the last 202 (every event durable in the WAL).

    The client is raw HTTP/1.1 on uvloop, like the fixed-rate generator: it shares
    the 2 cores with the server, and httpx spent about a third of the server's CPU
    time per event (2 ms per 1,000-event POST).
    """
    expected = sum(body.count(b"\n") + 1 for body in bodies)
    host, port = url.removeprefix("http://").split(":")
    t0 = time.perf_counter()
    uvloop.run(_post_all(host, int(port), bodies, clients))
    acked = time.perf_counter() - t0
    # Poll the lake itself: with several workers, /health shows only the
    # answering worker's WAL backlog.
    deadline = time.monotonic() + 120
    while (got := _lake_count(lake_url)) < expected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"lake holds {got} events, expected {expected}")
        time.sleep(0.05)
    elapsed = time.perf_counter() - t0
    if got != expected:
        raise RuntimeError(f"lake holds {got} events, expected {expected} (duplicates?)")
    return expected / elapsed, expected / acked


def _lake_count(lake_url: str) -> int:
    """Return the number of NDJSON-phase events in committed Parquet files."""
    frame = scan(lake_url).filter(pl.col("service") == NDJSON_SERVICE).select(pl.len())
    count: int = frame.collect().item()
    return count


def in_process_ceiling(
    bodies: list[bytes], lake_url: str, per_file: int = 100
) -> tuple[float, float]:
    """Return events per second and per CPU-second of parse + validate + Arrow + Parquet write.

    The same steps as the server's, minus HTTP and the WAL: each body takes the
    Arrow lane (``decode_plain_lines``, the general path when it declines) and
    becomes one Arrow record as the ingestor frames it, and the records of
    ``per_file`` bodies one table and one Parquet file, as a flush does.
    """
    limits = Limits()
    ids = IdGenerator()
    events = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    for start in range(0, len(bodies), per_file):
        records = []
        for body in bodies[start : start + per_file]:
            now = datetime.now(UTC)
            now_us = to_us(now)
            lines = ndjson_lines(body)
            columns = decode_plain_lines(lines, now=now, limits=limits)
            if columns is not None:
                n = columns.num_rows
                records.append(columns_to_ipc(columns, ids.new_id_array(n, now_us // 1000), now_us))
            else:
                result = validate_batch(parse_lines(lines), now=now, limits=limits)
                n = len(result.accepted)
                records.append(
                    events_to_ipc(result.accepted, ids.new_ids(n, now_us // 1000), now_us)
                )
            events += n
        write_batch(records_to_table(records), lake_url=lake_url, name=f"bench-{start:06d}")
    return events / (time.perf_counter() - t0), events / (time.process_time() - c0)


def main() -> None:
    """Run every measurement and print (and optionally record) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk/rate run")
    parser.add_argument("--batches", type=int, default=2000, help="NDJSON batches of 1,000")
    parser.add_argument("--rate", type=int, default=2000, help="fixed offered rate, req/s")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--no-wrk", action="store_true", help="skip the wrk phase (implied when wrk is missing)"
    )
    args = parser.parse_args()
    use_wrk = not args.no_wrk and shutil.which("wrk") is not None
    if not use_wrk:
        print("wrk phase skipped (--no-wrk, or wrk not installed): its column reads n/a")

    rows: list[str] = []
    load_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        work = Path(tmp)
        bodies = ndjson_bodies(args.batches, 1000)

        ceiling, ceiling_per_cpu = in_process_ceiling(bodies, str(work / "ceiling-lake"))
        print(f"in-process ceiling: {ceiling:,.0f} events/s ({ceiling_per_cpu:,.0f}/CPU-s)")

        results: list[Run] = []
        for workers in (1, 2):
            data = work / f"data-{workers}"
            with server(data, workers=workers) as (url, pid):
                sampler = RssSampler(pid)
                wrk: dict[str, Any] | None = None
                if use_wrk:
                    cpu0 = sampler.cpu_seconds()
                    wrk = run_wrk(url, args.duration, 32, work)
                    # Requests per second of server CPU: comparable across machine load.
                    wrk["per_cpu_s"] = wrk["rps"] * args.duration / (sampler.cpu_seconds() - cpu0)
                    print(f"[{workers}w] wrk: {wrk}", flush=True)
                rate = fixed_rate(url, args.rate, args.duration)
                print(f"[{workers}w] fixed rate: {rate}", flush=True)
                rss_single = sampler.peak
                sampler.reset()
                cpu0 = sampler.cpu_seconds()
                e2e, acked = ndjson_end_to_end(url, bodies, str(data / "lake"))
                e2e_per_cpu = len(bodies) * 1000 / (sampler.cpu_seconds() - cpu0)
                print(
                    f"[{workers}w] ndjson end to end: {e2e:,.0f} events/s "
                    f"(last 202 at {acked:,.0f} events/s)",
                    flush=True,
                )
                rss_batch = sampler.stop()
                results.append(
                    Run(workers, wrk, rate, e2e, e2e_per_cpu, acked, rss_single, rss_batch)
                )

    mib = 1024 * 1024
    for r in results:
        wrk, rate = r.wrk, r.rate
        wrk_cells = (
            f"| {wrk['rps']:,.0f} ({wrk['per_cpu_s']:,.0f}) | {wrk['p50']:.1f} / {wrk['p99']:.1f} "
            if wrk
            else "| n/a | n/a "
        )
        rows.append(
            f"| {r.workers} {wrk_cells}"
            f"| {rate['achieved']:,.0f}: {rate['p50']:.1f} / {rate['p99']:.1f} / {rate['max']:.0f} "
            f"| {r.e2e:,.0f} ({r.e2e_per_cpu:,.0f}); last 202 at {r.acked:,.0f} "
            f"| {ceiling:,.0f} ({ceiling_per_cpu:,.0f}) "
            f"| {r.e2e / ceiling:.2f} ({r.e2e_per_cpu / ceiling_per_cpu:.2f}) "
            f"| {r.rss_single / mib:.0f} / {r.rss_batch / mib:.0f} |"
        )
    first_wrk = results[0].wrk
    wrk_cmd = first_wrk["command"] if first_wrk else "not run: wrk missing or --no-wrk"
    cpu = psutil.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    section = "\n".join(
        [
            "## Ingestion",
            "",
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {cpu} cores "
            f"({platform.python_implementation()} {platform.python_version()}), load "
            "generators on the same machine (they take CPU from the server); load average "
            f"{load_start} at the start, {load} at the end (1/5/15 min; the machine is "
            "shared with other engineers' jobs, so figures vary between runs).",
            "",
            "Command: `.venv/bin/python bench/bench_ingest.py --write-docs` "
            "(`scripts/bootstrap --bench` installs wrk)",
            f"(wrk run inside: `{wrk_cmd}` with a Lua script that POSTs the README event).",
            "",
            "| workers | single-event POST req/s (per server CPU-s), wrk 32 conns | p50 / p99 ms "
            f"| fixed {args.rate:,} req/s open loop: achieved, p50 / p99 / max ms "
            "| NDJSON 1,000/batch into Parquet, events/s (per server CPU-s); rate at the last 202 "
            "| in-process ceiling events/s (per CPU-s) "
            "| end to end / ceiling (per CPU-s) "
            "| peak RSS MiB single / NDJSON |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "- A 202 is sent only after the event is fsynced in the WAL (group commit).",
            "- (per server CPU-s): the same work divided by the CPU time the server processes "
            "used, a figure that other jobs on the machine disturb much less than wall-clock "
            "rates; about what one dedicated core would sustain.",
            "- NDJSON end to end: 4 keep-alive connections (raw HTTP/1.1 on uvloop, "
            f"`_post_all`) post {args.batches} batches of 1,000 events; the clock stops "
            "when the lake holds every event in committed Parquet files (counted; no "
            "duplicates), so it includes the last flush after the last 202 (started as soon "
            "as the backlog is idle, for 10,000 events or more).",
            "- In-process ceiling: the server's steps without HTTP and the WAL, in one thread: "
            "`ndjson_lines` + `decode_plain_lines` (the Arrow lane; `parse_lines` + "
            "`validate_batch` where it declines) + ids + `columns_to_ipc` (the ingestor's WAL "
            "record of a batch) + `records_to_table` + `write_batch` of the same bodies, 100 "
            "batches per file. The ratio "
            "column is end to end over ceiling; per CPU-s it says how much the server spends "
            "beyond the ceiling's work (HTTP, WAL, fsync, threads), wall clock it also counts "
            "the flush interval and the load generator's share of the 2 cores.",
            "- Fixed-rate latencies count from each request's scheduled send time "
            "(no coordinated omission); generator: `_fixed_rate` in the script (asyncio, raw "
            "HTTP/1.1). The run starts once the server's WAL backlog is empty (wrk's events "
            "flushed); its first 2 s (64 connections opening) are sent but not counted.",
            "",
        ]
    )
    print()
    print(section)
    if args.write_docs:
        write_section(ROOT / "docs" / "benchmarks.md", section)


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the ``## Ingestion`` section of ``path``, leaving others as they are."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(r"^## Ingestion\n.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


if __name__ == "__main__":
    main()
