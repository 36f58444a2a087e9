"""What keeping a file's facts at commit costs a flush (``workbench.lake.committed``).

Usage::

    .venv/bin/python bench/bench_commit_facts.py [--events 50000] [--runs 7] [--rounds 3]

Writes the same batch of demo-like events with ``writer.write_batch`` into fresh local lakes,
alternately with the facts kept at commit (``reader.keep_committed``: footer read back with
its page CRCs checked, counts, error rollup, message index) and without, and prints the median
time of each per round, beside the load average. The lake's first reader then reads no file for
its facts (``docs/lake.md``, "Per-file facts"); this is what the writer pays for it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.factories import T0, make_events  # noqa: E402
from workbench.lake import reader, writer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    levels = ("info", "error", "warn", "debug")
    table = make_events(
        [
            {
                "timestamp": T0 + timedelta(milliseconds=i),
                "service": f"svc{i % 50}",
                "level": levels[i % 4],
                "message": f"request {i % 300} done",
            }
            for i in range(args.events)
        ]
    )
    keep = reader.keep_committed
    for _ in range(args.rounds):
        for label, fn in (("facts kept at commit", keep), ("no facts kept", None)):
            writer.reader.keep_committed = fn or (lambda *a, **k: None)  # type: ignore[assignment]
            times = []
            with tempfile.TemporaryDirectory() as lake:
                for i in range(args.runs):
                    t = time.perf_counter()
                    writer.write_batch(table, lake_url=lake, name=f"b{i}")
                    times.append(time.perf_counter() - t)
            print(
                f"{args.events:,} events, {label}: {statistics.median(times) * 1000:.1f} ms "
                f"median of {args.runs} flushes, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    writer.reader.keep_committed = keep  # type: ignore[assignment]


if __name__ == "__main__":
    main()
