"""Query benchmark: our polars queries beside DuckDB on the same Parquet files, same run.

Usage::

    .venv/bin/python bench/bench_query.py [--events 10000000] [--days 30] [--services 50] [--runs 15]

Builds (once; cached under ``bench/out/``) a demo lake, then prints p50/p95 in
milliseconds for: search first page (no filter, service filter, text filter),
30-day error trend (one service, all), 1,000-rule window counts.
DuckDB reads the same visible files (``reader.visible_files``) with ``read_parquet``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb  # noqa: E402
from timing import measure  # noqa: E402

from workbench.demo import generate, service_names  # noqa: E402
from workbench.lake import facts, message_index, reader  # noqa: E402
from workbench.query.search import search  # noqa: E402
from workbench.query.trends import bucket_grid, error_trend  # noqa: E402
from workbench.query.types import SearchQuery  # noqa: E402
from workbench.query.window import WindowSpec, window_counts  # noqa: E402

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
OUT = Path(__file__).resolve().parent / "out"


def build(events: int, days: int, services: int) -> str:
    """Return the lake URL of the cached demo lake, generating it when missing."""
    lake = OUT / f"lake-{events}-{days}d-{services}s"
    done = lake / "_BUILT"
    if not done.exists():
        t = time.perf_counter()
        generate(str(lake), events=events, days=days, services=services, now=NOW, seed=42)
        # The facts as the writer kept them at commit (workbench.lake.committed), before any
        # reader adds its own: bench_scale times the lake's first reader with these.
        shutil.rmtree(commit_facts(str(lake)), ignore_errors=True)
        shutil.copytree(lake / facts.FACTS_DIR, commit_facts(str(lake)))
        done.write_text("ok\n")
        print(f"built {lake} in {time.perf_counter() - t:.1f} s", flush=True)
    return str(lake)


def commit_facts(lake: str) -> Path:
    """Return where the facts the writer kept for the cached ``lake`` are saved."""
    return Path(f"{lake}.facts-at-commit")


def check_same_answers(
    lake: str,
    con: duckdb.DuckDBPyConnection,
    sql: Callable[[str], str],
    svc: str,
    specs: list[WindowSpec],
    duck_trend: Callable[[str], str],
    duck_window: str,
    duck_page: Callable[[str], str],
    now: datetime = NOW,
) -> None:
    """Fail loudly unless both engines give the same answers (so the timings compare like with like).

    ``sql`` turns a template into DuckDB SQL (``$SRC`` becomes the visible files).
    """
    for query, where in (
        (SearchQuery(), ""),
        (SearchQuery(service=svc), f"WHERE service = '{svc}'"),
        (SearchQuery(text="timeout"), "WHERE message ILIKE '%timeout%'"),
    ):
        search(lake, query)
        message_index.wait_for_message_index()  # so a text total is checked as the index counts it
        ours = search(lake, query)
        theirs = con.execute(sql(duck_page(where))).fetchall()
        assert [log.id for log in ours.logs] == [r[0] for r in theirs], query
        assert ours.total == theirs[0][-1], query
    for service, where in ((svc, f"AND service = '{svc}'"), (None, "")):
        trend = [p.count for p in error_trend(lake, service=service, range="30d", now=now)]
        duck_counts = [r[1] for r in con.execute(sql(duck_trend(where))).fetchall()]
        assert trend == duck_counts, service
    ours_w = window_counts(lake, specs, now)
    theirs_w = dict(con.execute(sql(duck_window)).fetchall())
    assert ours_w == theirs_w
    print("answers identical in both engines (pages, totals, trends, window counts)")


Case = tuple[str, Callable[[], object], Callable[[], object]]


def read_parquet_source(lake: str) -> Callable[[duckdb.DuckDBPyConnection], str]:
    """Return what DuckDB reads: ``read_parquet`` over the reader's visible files, listed afresh."""

    def source(con: duckdb.DuckDBPyConnection) -> str:
        return "read_parquet([" + ",".join(f"'{p}'" for p in reader.visible_files(lake)) + "])"

    return source


def query_cases(
    lake: str,
    services: int,
    con: duckdb.DuckDBPyConnection,
    source: Callable[[duckdb.DuckDBPyConnection], str] | None = None,
    now: datetime = NOW,
) -> tuple[list[Case], Callable[[], None]]:
    """Return the timed cases (ours beside DuckDB's) and a check that both answer the same.

    ``source(con)`` gives DuckDB's FROM expression for the visible files (called per query,
    so listing is in DuckDB's time as in ours); by default ``read_parquet`` of local paths.
    """
    src = source or read_parquet_source(lake)
    svc = service_names(services)[0]

    def sql(template: str) -> str:
        return template.replace("$SRC", src(con))

    def duck(template: str) -> Callable[[], object]:
        return lambda: con.execute(sql(template)).fetchall()

    page_cols = "id, service, level, message, timestamp, meta"
    grid = bucket_grid(now, "30d")
    start = grid.start.isoformat()
    end = grid.end.isoformat()
    origin = grid.origin.isoformat()

    def duck_trend(where: str) -> str:
        return (
            "WITH c AS (SELECT time_bucket(INTERVAL 6 HOUR, timestamp, TIMESTAMPTZ '"
            + origin
            + "') AS b, count(*) AS n FROM $SRC WHERE level IN ('error','fatal') "
            + f"AND timestamp > TIMESTAMPTZ '{start}' AND timestamp <= TIMESTAMPTZ '{end}' {where} "
            + "GROUP BY 1) SELECT g.b, coalesce(c.n, 0) FROM (SELECT unnest(generate_series("
            + f"TIMESTAMPTZ '{origin}', TIMESTAMPTZ '{end}', INTERVAL 6 HOUR)) AS b) g "
            + "LEFT JOIN c USING (b) ORDER BY 1"
        )

    specs = [
        WindowSpec(
            f"r{i}",
            service_names(services)[i % services],
            timedelta(minutes=5 + 5 * (i % 12)),
        )
        for i in range(1000)
    ]
    spec_rows = ",".join(
        f"('{s.key}','{s.service}',{s.window // timedelta(microseconds=1)})" for s in specs
    )
    max_w = max(s.window for s in specs)
    duck_window = (
        f"WITH specs(k, service, w) AS (VALUES {spec_rows}), "
        "recent AS (SELECT service, epoch_us(timestamp) AS t FROM $SRC "
        f"WHERE timestamp > TIMESTAMPTZ '{(now - max_w).isoformat()}' "
        f"AND timestamp <= TIMESTAMPTZ '{now.isoformat()}' AND level IN ('error','fatal')) "
        f"SELECT s.k, count(r.t) FROM specs s LEFT JOIN recent r ON r.service = s.service "
        f"AND r.t > {(now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)} - s.w "
        "GROUP BY s.k"
    )

    def duck_page(where: str) -> str:
        # Same answer as search(): the page and the total.
        return (
            f"SELECT {page_cols}, (SELECT count(*) FROM $SRC {where}) "
            f"FROM $SRC {where} ORDER BY timestamp DESC, id DESC LIMIT 20"
        )

    cases: list[Case] = [
        ("search page 1, no filter", lambda: search(lake, SearchQuery()), duck(duck_page(""))),
        (
            "search page 1, service",
            lambda: search(lake, SearchQuery(service=svc)),
            duck(duck_page(f"WHERE service = '{svc}'")),
        ),
        (
            "search page 1, text 'timeout'",
            lambda: search(lake, SearchQuery(text="timeout")),
            duck(duck_page("WHERE message ILIKE '%timeout%'")),
        ),
        (
            "error trend 30d, one service",
            lambda: error_trend(lake, service=svc, range="30d", now=now),
            duck(duck_trend(f"AND service = '{svc}'")),
        ),
        (
            "error trend 30d, all services",
            lambda: error_trend(lake, range="30d", now=now),
            duck(duck_trend("")),
        ),
        ("window counts, 1,000 rules", lambda: window_counts(lake, specs, now), duck(duck_window)),
    ]

    def check() -> None:
        check_same_answers(lake, con, sql, svc, specs, duck_trend, duck_window, duck_page, now)

    return cases, check


def main() -> None:
    """Build or reuse the lake, run every query with both engines, print a Markdown table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    lake = build(args.events, args.days, args.services)
    svc = service_names(args.services)[0]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cases, check = query_cases(lake, args.services, con)
    check()
    print(
        f"lake: {args.events:,} events, {args.days} days, {args.services} services, "
        f"{len(reader.visible_files(lake))} files; runs={args.runs}"
    )
    print("| query | workbench p50 ms | p95 ms | DuckDB p50 ms | p95 ms |")
    print("|---|---:|---:|---:|---:|")
    for name, ours, theirs in cases:
        a50, a95 = measure(ours, args.runs)
        b50, b95 = measure(theirs, args.runs)
        print(f"| {name} | {a50:.1f} | {a95:.1f} | {b50:.1f} | {b95:.1f} |", flush=True)
    # Cold process: the per-file caches (footers, key counts, error rollups) are empty.
    from workbench.query import trends

    index = message_index.message_index_stats()
    print(
        f"message index: {index['files']} files, {index['rows']:,} rows, "
        f"{index['distinct_messages']:,} distinct messages, "
        f"arrays {index['array_bytes'] / 1e6:.1f} MB"
    )
    for cache in (reader._footer_cache, reader._key_counts_cache, trends._rollups):
        cache.clear()
    shutil.rmtree(Path(lake) / facts.FACTS_DIR, ignore_errors=True)  # as the lake's first reader
    message_index.reset_message_index()
    t = time.perf_counter()
    search(lake, SearchQuery(service=svc))
    error_trend(lake, range="30d", now=NOW)
    cold = (time.perf_counter() - t) * 1000
    print(f"cold caches: first service search + first 30d trend together {cold:.0f} ms")
    # What a file costs on first sight: its footer and the check of its page CRCs.
    reader._footer_cache.clear()
    shutil.rmtree(Path(lake) / facts.FACTS_DIR, ignore_errors=True)
    t = time.perf_counter()
    listed = len(reader.file_stats(lake))
    listing = (time.perf_counter() - t) * 1000
    print(f"cold listing: footers and page CRCs of {listed} files {listing:.0f} ms")
    t = time.perf_counter()
    search(lake, SearchQuery(text="timeout"))
    first = (time.perf_counter() - t) * 1000
    message_index.wait_for_message_index()
    built = (time.perf_counter() - t) * 1000
    print(
        f"cold message index: first text search {first:.0f} ms (scans); "
        f"background index built {built:.0f} ms after it started"
    )


if __name__ == "__main__":
    main()
