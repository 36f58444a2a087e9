"""Housekeeping benchmark: today's partition after N minutes of one file a second, with and
without the scheduler's hot compaction.

Usage::

    .venv/bin/python bench/bench_housekeeping.py [--minutes 10] [--rows 200] [--every 60]

Simulates the ingestor's flushes without waiting: one ``part-*`` file per simulated second
(``--rows`` events each, commit time = mtime set to that second). The "hot" lake also runs
one housekeeping compaction (``compact_partition`` with the default ``SmallFilePolicy``:
files under 8 MB and 1M rows, older than 60 s, at least 10) every ``--every`` simulated
seconds, with grace 0 so replaced files go at once (the real default, 5 min, only delays
their deletion; readers never list them). Then prints, per lake: visible files, files on
disk, and p50/p95 milliseconds of searches (first page, no filter / service / text) in a
fresh process state (footer caches cleared first, then warm runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
from timing import measure  # noqa: E402

from workbench.lake import message_index, reader  # noqa: E402
from workbench.lake.compaction import SmallFilePolicy, compact_partition  # noqa: E402
from workbench.lake.schema import SCHEMA  # noqa: E402
from workbench.lake.writer import write_batch  # noqa: E402
from workbench.query.search import search  # noqa: E402
from workbench.query.types import SearchQuery  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
SERVICES = [f"svc-{i:02d}" for i in range(12)]
MESSAGES = [f"request {w} handled" for w in ("GET", "POST", "PUT")] + ["upstream timeout"]


def batch(second: datetime, rows: int, seq: int) -> pa.Table:
    """Return one flush's worth of events, all within ``second``."""
    rng = np.random.default_rng(seq)
    us = int(second.timestamp() * 1e6) + np.sort(rng.integers(0, 1_000_000, rows))
    ts = pa.array(us, pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "id": [f"{u:014x}{seq:06x}{i:04x}" for i, u in enumerate(us)],
            "timestamp": ts,
            "received_at": ts,
            "service": [SERVICES[i] for i in rng.integers(0, len(SERVICES), rows)],
            "level": ["error" if x < 0.05 else "info" for x in rng.random(rows)],
            "message": [MESSAGES[i] for i in rng.integers(0, len(MESSAGES), rows)],
            "meta": ["{}"] * rows,
        },
        schema=SCHEMA,
    )


def build(lake: str, start: datetime, seconds: int, rows: int, every: int | None) -> float:
    """Write ``seconds`` one-a-second files; compact every ``every`` s; return compaction time."""
    shutil.rmtree(lake, ignore_errors=True)
    policy = SmallFilePolicy()
    spent = 0.0
    for s in range(seconds):
        at = start + timedelta(seconds=s)
        for path in write_batch(batch(at, rows, s), lake_url=lake, name=f"{s:06d}"):
            os.utime(path, (at.timestamp(), at.timestamp()))
        if every and s and s % every == 0:
            t = time.perf_counter()
            compact_partition(lake, start.date(), policy=policy, now=at, grace=timedelta(0))
            spent += time.perf_counter() - t
    return spent



def main() -> None:
    """Build both lakes and print file counts and search latencies."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--rows", type=int, default=200, help="events per file (per flush)")
    parser.add_argument("--every", type=int, default=60, help="simulated s between passes")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = args.minutes * 60
    print(f"{args.minutes} min at 1 file/s, {args.rows} events/file, {seconds * args.rows} events")
    for label, every in (("no hot compaction", None), (f"hot, every {args.every} s", args.every)):
        lake = str(OUT / f"housekeeping-{'hot' if every else 'cold'}")
        t = time.perf_counter()
        spent = build(lake, start, seconds, args.rows, every)
        built = time.perf_counter() - t
        folder = Path(lake) / "logs" / f"date={start.date().isoformat()}"
        on_disk = len(list(folder.glob("*.parquet")))
        message_index.reset_message_index()
        reader._footer_cache.clear()  # first search pays the footer reads, as a fresh process
        t = time.perf_counter()
        search(lake, SearchQuery())
        cold = (time.perf_counter() - t) * 1000
        rows = [
            ("search page 1, no filter", lambda lake=lake: search(lake, SearchQuery())),
            (
                "search page 1, service",
                lambda lake=lake: search(lake, SearchQuery(service="svc-03")),
            ),
            ("search page 1, text", lambda lake=lake: search(lake, SearchQuery(text="timeout"))),
        ]
        print(
            f"\n{label}: {len(reader.visible_files(lake))} visible files, {on_disk} on disk; "
            f"built in {built:.1f} s (compaction {spent:.1f} s); first search {cold:.0f} ms"
        )
        for name, fn in rows:
            p50, p95 = measure(fn, args.runs)
            print(f"  {name:<28} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms")


if __name__ == "__main__":
    main()
