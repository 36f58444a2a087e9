"""Analyst benchmark: queries written on ``workbench.logs()`` beside the same queries in DuckDB.

Usage::

    .venv/bin/python bench/bench_analyst.py [--events 10000000] [--days 30] [--services 50]
                                            [--runs 7] [--write-docs]

Reuses (or builds) the demo lake of ``bench_query.py`` under ``bench/out/``, then
prints p50/p95 in milliseconds for what an analyst types in a notebook: filter +
group by service and hour over 30 days, one service over 7 days, a text filter,
and ``top_messages`` (pattern grouping, no DuckDB peer). DuckDB reads the same
visible files (``reader.visible_files``, listing included in its time) with
``read_parquet``; both sides' answers are compared once before timing.
``--write-docs`` replaces the "Analyst API" section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
from timing import measure  # noqa: E402

import workbench  # noqa: E402
from workbench.config import Settings  # noqa: E402
from workbench.demo import generate, service_names  # noqa: E402
from workbench.lake import reader  # noqa: E402

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OUT = Path(__file__).resolve().parent / "out"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
SECTION = "## Analyst API"


def build(events: int, days: int, services: int) -> str:
    """Return the lake URL of the cached demo lake (shared with bench_query.py), building it if missing."""
    lake = OUT / f"lake-{events}-{days}d-{services}s"
    done = lake / "_BUILT"
    if not done.exists():
        t = time.perf_counter()
        generate(str(lake), events=events, days=days, services=services, now=NOW, seed=42)
        done.write_text("ok\n")
        print(f"built {lake} in {time.perf_counter() - t:.1f} s", flush=True)
    return str(lake)



def main() -> None:
    """Run every query with both engines, print a Markdown table, optionally write it to the docs."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--write-docs", action="store_true")
    args = ap.parse_args()
    lake = build(args.events, args.days, args.services)
    settings = Settings(WORKBENCH_LAKE_URL=lake)  # type: ignore[call-arg]
    svc = service_names(args.services)[0]
    start30, start7, start1 = (
        NOW - timedelta(days=30),
        NOW - timedelta(days=7),
        NOW - timedelta(days=1),
    )
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    def duck(sql: str, start: datetime) -> Callable[[], pl.DataFrame]:
        def run() -> pl.DataFrame:
            files = "[" + ",".join(f"'{p}'" for p in reader.visible_files(lake, start, NOW)) + "]"
            text = sql.replace("$FILES", files).replace("$START", start.isoformat())
            text = text.replace("$END", NOW.isoformat())
            return pl.DataFrame(pl.from_arrow(con.execute(text).to_arrow_table()))

        return run

    def errors_by_hour() -> pl.DataFrame:
        return (
            workbench.logs(start30, NOW, settings=settings)
            .filter(pl.col("level").is_in(["error", "fatal"]))
            .group_by("service", pl.col("timestamp").dt.truncate("1h").alias("hour"))
            .agg(pl.len().alias("n"))
            .collect()
        )

    def one_service() -> pl.DataFrame:
        return (
            workbench.logs(start7, NOW, settings=settings)
            .filter(pl.col("service") == svc)
            .group_by(pl.col("timestamp").dt.truncate("1h").alias("hour"), "level")
            .agg(pl.len().alias("n"))
            .collect()
        )

    def text_filter() -> pl.DataFrame:
        return (
            workbench.logs(start30, NOW, settings=settings)
            .filter(pl.col("message").str.contains("timeout", literal=True))
            .group_by("service")
            .agg(pl.len().alias("n"))
            .collect()
        )

    where = "timestamp >= TIMESTAMPTZ '$START' AND timestamp <= TIMESTAMPTZ '$END'"
    cases: list[tuple[str, Callable[[], pl.DataFrame], Callable[[], pl.DataFrame] | None]] = [
        (
            "errors per service per hour, 30 days",
            errors_by_hour,
            duck(
                "SELECT service, date_trunc('hour', timestamp) AS hour, count(*) AS n "
                f"FROM read_parquet($FILES) WHERE level IN ('error','fatal') AND {where} "
                "GROUP BY ALL",
                start30,
            ),
        ),
        (
            "one service per hour and level, 7 days",
            one_service,
            duck(
                "SELECT date_trunc('hour', timestamp) AS hour, level, count(*) AS n "
                f"FROM read_parquet($FILES) WHERE service = '{svc}' AND {where} GROUP BY ALL",
                start7,
            ),
        ),
        (
            "text filter 'timeout' per service, 30 days",
            text_filter,
            duck(
                "SELECT service, count(*) AS n FROM read_parquet($FILES) "
                f"WHERE contains(message, 'timeout') AND {where} GROUP BY ALL",
                start30,
            ),
        ),
        (
            "top_messages (error patterns), 24 hours",
            lambda: workbench.top_messages(start1, until=NOW, settings=settings),
            None,
        ),
        (
            "top_messages (error patterns), 7 days",
            lambda: workbench.top_messages(start7, until=NOW, settings=settings),
            None,
        ),
    ]
    rows = []
    for name, ours, peer in cases:
        if peer is not None:
            a, b = ours(), peer()
            assert a["n"].sum() == b["n"].sum() and a.height == b.height, name
        p50, p95 = measure(ours, args.runs)
        d50, d95 = measure(peer, args.runs) if peer else (None, None)
        rows.append((name, p50, p95, d50, d95))
        print(
            f"{name}: polars p50 {p50:.0f} ms p95 {p95:.0f} ms"
            + (f"; duckdb p50 {d50:.0f} ms p95 {d95:.0f} ms" if d50 is not None else ""),
            flush=True,
        )

    table = [
        SECTION,
        "",
        f"Command: `.venv/bin/python bench/bench_analyst.py --runs {args.runs} --write-docs`",
        "",
        f"Machine: {platform.machine()}, 2 cores shared with other work while measured "
        f"(figures are noisy), Python {platform.python_version()}; lake: "
        f"{args.events:,} events, {args.days} days, {args.services} services "
        "(the demo lake of bench_query.py). Queries as an analyst writes them on "
        "`workbench.logs(start, end)` (LazyFrame, partition pruning), beside the same SQL in "
        "DuckDB over the same visible files (file listing included on both sides; answers "
        "compared once before timing).",
        "",
        "| query | workbench.logs() p50 | p95 | DuckDB p50 | p95 |",
        "|---|---|---|---|---|",
    ]
    for name, p50, p95, d50, d95 in rows:
        duck_cells = f"{d50:.0f} ms | {d95:.0f} ms" if d50 is not None else "n/a | n/a"
        table.append(f"| {name} | {p50:.0f} ms | {p95:.0f} ms | {duck_cells} |")
    text = "\n".join(table) + "\n"
    print(text)
    if args.write_docs:
        doc = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        doc = pattern.sub(text + "\n", doc) if pattern.search(doc) else doc.rstrip() + "\n\n" + text
        DOCS.write_text(doc)


if __name__ == "__main__":
    main()
