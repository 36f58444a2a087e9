"""Scale benchmark (issue 13 item 6): the query figures at 100,000,000 events, beside DuckDB.

Usage::

    .venv/bin/python bench/bench_scale.py [--events 100000000] [--days 30] [--services 50]
        [--runs 7] [--duck-runs 3] [--s3-events 2000000] [--ingest-batches 2000]
        [--skip-s3] [--s3-url s3://bucket/prefix] [--skip-ingest] [--write-docs]

Builds (once; cached under ``bench/out/`` by ``bench_query.build``) the demo lake, then:

* disk: bytes per event of the visible files;
* warm queries: ``bench_query.query_cases`` (search pages, 30-day trends, 1,000-rule window
  counts), ours and DuckDB's on the same visible files, answers compared first;
* cold process: a fresh Python process per query (``--probe``) times its imports and its
  first and second answer, ours and DuckDB's;
* ingest: NDJSON into one lake through one and then two ``workbench serve`` nodes (each its
  own data directory; ``bench_ingest``'s raw HTTP/1.1 client, no wrk);
* S3: a smaller demo lake on moto's S3 server (``tests/s3_helpers.py``; in memory, in this
  process), the same queries; DuckDB reads the same files through a pyarrow dataset on the
  same S3 filesystem (DuckDB's httpfs is not installed here); with ``--s3-url`` on a real
  S3 or MinIO instead (the AWS variables of the environment; a fresh prefix per run).

The load average is printed beside every figure (the machine is shared).
``--write-docs`` replaces the ``## 100M events`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DOCS = ROOT / "docs" / "benchmarks.md"
SECTION = "## 100M events"
TARGETS = {
    "search page 1, no filter": "<= 100 p50",
    "search page 1, service": "<= 100 p50",
    "search page 1, text 'timeout'": "<= 100 p50",
    "error trend 30d, one service": "<= 150 p50",
    "error trend 30d, all services": "<= 150 p50",
    "window counts, 1,000 rules": "<= 1000 (alerting)",
}
PROBES = ("search", "search-service", "search-text", "trend", "duck-search", "duck-trend")


def load() -> str:
    """Return the 1-minute load average, formatted."""
    return f"{os.getloadavg()[0]:.1f}"


def probe(lake: str, what: str, services: int) -> dict[str, float]:
    """Time, in this (fresh) process, the imports and the first and second answer of one query."""
    t0 = time.perf_counter()
    import duckdb
    from bench_query import NOW, read_parquet_source

    from workbench.demo import service_names
    from workbench.query.search import search
    from workbench.query.trends import error_trend
    from workbench.query.types import SearchQuery

    svc = service_names(services)[0]
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    src = read_parquet_source(lake)
    page = (
        "SELECT *, (SELECT count(*) FROM $SRC) FROM $SRC ORDER BY timestamp DESC, id DESC LIMIT 20"
    )
    trend = (
        "SELECT time_bucket(INTERVAL 6 HOUR, timestamp) AS b, count(*) FROM $SRC "
        "WHERE level IN ('error','fatal') GROUP BY 1"
    )
    runs: dict[str, Callable[[], object]] = {
        "search": lambda: search(lake, SearchQuery()),
        "search-service": lambda: search(lake, SearchQuery(service=svc)),
        "search-text": lambda: search(lake, SearchQuery(text="timeout")),
        "trend": lambda: error_trend(lake, range="30d", now=NOW),
        "duck-search": lambda: con.execute(page.replace("$SRC", src(con))).fetchall(),
        "duck-trend": lambda: con.execute(trend.replace("$SRC", src(con))).fetchall(),
    }
    fn = runs[what]
    imports = time.perf_counter() - t0
    t1 = time.perf_counter()
    fn()
    first = time.perf_counter() - t1
    t2 = time.perf_counter()
    fn()
    second = time.perf_counter() - t2
    return {"imports_ms": imports * 1000, "first_ms": first * 1000, "second_ms": second * 1000}


def cold(lake: str, what: str, services: int) -> dict[str, float]:
    """Run :func:`probe` in a new process; add its wall time from start to exit."""
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--probe", what, "--lake", lake, "--services", str(services)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    figures["process_ms"] = (time.perf_counter() - t) * 1000
    return figures


def add_commit_message_index(lake: str, at_commit: Path) -> None:
    """Add to a lake's facts-at-commit snapshot the message index its writer keeps now.

    A lake generated before the writer kept the message index at commit has none there: it
    is computed here from each file's rows with ``committed.message_index_of``, exactly as
    ``committed.keep`` does when the file is committed.
    """
    import pyarrow.parquet as pq

    from workbench.lake import committed, facts, reader

    t = time.perf_counter()
    for stat in reader.file_stats(lake):
        frame = committed.message_index_of(
            pq.read_table(stat.path, columns=["service", "level", "message"])
        )
        kept = facts.fact_path(stat.path, committed.MSGIDX_KIND, reader.fact_version(stat))
        if frame is not None and kept is not None:
            (at_commit / kept.parent.name).mkdir(parents=True, exist_ok=True)
            frame.write_ipc(at_commit / kept.parent.name / kept.name)
    print(f"message index added to the facts kept at commit in {time.perf_counter() - t:.0f} s")


def disk_bytes(lake: str) -> tuple[int, int]:
    """Return (bytes, files) of the lake's visible files."""
    from workbench.lake import reader

    stats = reader.file_stats(lake)
    return sum(os.path.getsize(s.path) for s in stats), len(stats)


def warm(
    lake: str, services: int, runs: int, duck_runs: int, source: Any = None
) -> list[tuple[str, float, float, float, float, str]]:
    """Return (query, ours p50, p95, DuckDB p50, p95, load) after checking equal answers."""
    import duckdb
    from bench_query import query_cases
    from timing import measure

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cases, check = query_cases(lake, services, con, source)
    check()
    rows = []
    for name, ours, theirs in cases:
        a50, a95 = measure(ours, runs)
        b50, b95 = measure(theirs, duck_runs)
        rows.append((name, a50, a95, b50, b95, load()))
        print(f"{name}: ours {a50:.1f}/{a95:.1f} ms, DuckDB {b50:.1f}/{b95:.1f} ms, load {load()}")
    return rows


def ingest(batches: int) -> list[tuple[int, float, float, str]]:
    """Return (nodes, events/s into Parquet, events/s acknowledged, load) for 1 and 2 nodes.

    Each node is a ``workbench serve`` process with its own data directory (its WAL) and
    the same lake; the bodies are split evenly, 2 keep-alive connections per node.
    """
    import asyncio

    import uvloop
    from bench_ingest import _lake_count, _post_all, ndjson_bodies, server

    bodies = ndjson_bodies(batches, 1000)
    out = []
    for nodes in (1, 2):
        with tempfile.TemporaryDirectory(prefix="wb-scale-") as tmp:
            lake = f"{tmp}/lake"
            os.environ["WORKBENCH_LAKE_URL"] = lake
            try:
                with _servers(server, Path(tmp), nodes) as urls:
                    expected = len(bodies) * 1000
                    t0 = time.perf_counter()

                    async def post_all(urls: list[str] = urls) -> None:
                        parts = []
                        for i, url in enumerate(urls):
                            host, port = url.removeprefix("http://").split(":")
                            parts.append(_post_all(host, int(port), bodies[i :: len(urls)], 2))
                        await asyncio.gather(*parts)

                    uvloop.run(post_all())
                    acked = time.perf_counter() - t0
                    deadline = time.monotonic() + 120
                    while (got := _lake_count(lake)) < expected:
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"lake holds {got}, expected {expected}")
                        time.sleep(0.05)
                    if got != expected:
                        raise RuntimeError(f"lake holds {got}, expected {expected}")
                    elapsed = time.perf_counter() - t0
            finally:
                os.environ.pop("WORKBENCH_LAKE_URL", None)
            out.append((nodes, expected / elapsed, expected / acked, load()))
            print(
                f"ingest, {nodes} node(s): {expected / elapsed:,.0f} events/s into Parquet, "
                f"{expected / acked:,.0f} acknowledged, load {load()}"
            )
    return out


class _servers:
    """Start ``n`` serve nodes (``bench_ingest.server``) on data directories under ``tmp``."""

    def __init__(self, server: Any, tmp: Path, n: int) -> None:
        self.managers = [server(tmp / f"node{i}") for i in range(n)]

    def __enter__(self) -> list[str]:
        return [m.__enter__()[0] for m in self.managers]

    def __exit__(self, *exc: object) -> None:
        for m in reversed(self.managers):
            m.__exit__(None, None, None)


@contextmanager
def _s3_lake(url: str | None) -> Iterator[str]:
    """Yield an empty lake URL: under ``url`` (real S3/MinIO, the AWS variables of the
    environment) when given, else in a new bucket on moto's stand-in server."""
    if url:
        yield f"{url.rstrip('/')}/scale-{uuid.uuid4().hex[:12]}"
        return
    from tests.s3_helpers import create_bucket, moto_standin

    with moto_standin() as env:
        os.environ.update(env)
        try:
            create_bucket(env, "scale")
            yield "s3://scale/lake"
        finally:
            for k in env:
                os.environ.pop(k, None)


def s3_run(events: int, days: int, services: int, runs: int, url: str | None) -> dict[str, Any]:
    """Build a demo lake on S3 (moto's stand-in, or ``url``); time the same queries, ours and
    DuckDB's (through a pyarrow dataset on the same S3 filesystem)."""
    import duckdb
    import pyarrow.dataset as pads
    from bench_query import NOW

    from workbench.demo import generate
    from workbench.lake import fs as lakefs
    from workbench.lake import message_index, reader
    from workbench.query import trends
    from workbench.query.search import search
    from workbench.query.types import SearchQuery

    with _s3_lake(url) as lake:
        t = time.perf_counter()
        generate(lake, events=events, days=days, services=services, now=NOW, seed=42)
        built = time.perf_counter() - t
        filesystem, root = lakefs.resolve(lake)

        def source(con: duckdb.DuckDBPyConnection) -> str:
            dataset = pads.dataset(reader.visible_files(lake), filesystem=filesystem)
            con.register("lake_files", dataset)
            return "lake_files"

        def first_search() -> float:
            """Time a search of a cold cache, as a new process's first (ms)."""
            for cache in (reader._footer_cache, reader._key_counts_cache, trends._rollups):
                cache.clear()
            t = time.perf_counter()
            search(lake, SearchQuery())
            return (time.perf_counter() - t) * 1000

        # With the facts the writer kept at commit (objects under <lake>/_facts/), then
        # with none (files some other tool wrote: each is read whole once).
        first = first_search()
        filesystem.delete_dir_contents(f"{root}/_facts", missing_dir_ok=True)
        first_none = first_search()
        rows = warm(lake, services, runs, runs, source)
        message_index.reset_message_index()
        files = len(reader.visible_files(lake))
    return {
        "events": events,
        "build_s": built,
        "files": files,
        "first_ms": first,
        "first_none_ms": first_none,
        "rows": rows,
    }


def section(args: argparse.Namespace, results: dict[str, Any]) -> str:
    """Return the Markdown section for docs/benchmarks.md."""
    lines = [
        SECTION,
        "",
        f"Command: `.venv/bin/python bench/bench_scale.py --runs {args.runs} "
        f"--duck-runs {args.duck_runs} --s3-events {args.s3_events} --write-docs`",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work "
        f"(load average beside each figure), Python {platform.python_version()}; run of "
        f"{results['started']}. Lake: {args.events:,} events, {args.days} days, "
        f"{args.services} services (`workbench.demo.generate(seed=42)`, cached under "
        f"`bench/out/`), {results['files']} files, {results['bytes'] / 1e9:.2f} GB: "
        f"**{results['bytes'] / args.events:.1f} bytes per event** (target <= 40). DuckDB "
        "reads the same visible files with `read_parquet` in the same process; answers were "
        "checked identical before timing (pages, totals, trend buckets, window counts).",
        "",
        "| query | workbench p50 / p95 ms | DuckDB p50 / p95 ms | target | load |",
        "|---|---|---|---|---|",
    ]
    for name, a50, a95, b50, b95, ld in results["warm"]:
        lines.append(
            f"| {name} | {a50:.1f} / {a95:.1f} | {b50:.0f} / {b95:.0f} | {TARGETS[name]} | {ld} |"
        )
    lines += [
        "",
        "Cold process (a new Python process per row: imports, then the first and the second "
        "answer; target: first query <= 2 s):",
        "",
        "| query | facts on disk | imports ms | first answer ms | second ms "
        "| process start to exit ms | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for what, kept, f, ld in results["cold"]:
        lines.append(
            f"| {what} | {kept} | {f['imports_ms']:.0f} | {f['first_ms']:.0f} "
            f"| {f['second_ms']:.0f} | {f['process_ms']:.0f} | {ld} |"
        )
    if results.get("ingest"):
        lines += [
            "",
            f"Ingest: {args.ingest_batches:,} NDJSON batches of 1,000 events "
            "(`bench_ingest.ndjson_bodies`) split evenly over the nodes, 2 keep-alive "
            "connections per node, clients on the same 2 cores; each node a `workbench serve` "
            "(one worker) with its own data directory, all writing one local lake; the clock "
            "stops when the lake holds every event.",
            "",
            "| serve nodes | events/s into Parquet | events/s acknowledged (202) | load |",
            "|---|---|---|---|",
        ]
        for nodes, lake_rate, acked, ld in results["ingest"]:
            lines.append(f"| {nodes} | {lake_rate:,.0f} | {acked:,.0f} | {ld} |")
    if results.get("s3"):
        s3 = results["s3"]
        lines += [
            "",
            (
                f"On S3 at `{args.s3_url}`: "
                if args.s3_url
                else "On moto's S3 server (the stand-in of `tests/s3_helpers.py`, in memory "
                "and in the benchmark's own process, so it shares the GIL): "
            )
            + f"{s3['events']:,} events, "
            f"{s3['files']} files, written in {s3['build_s']:.0f} s; first search of a cold "
            f"cache {s3['first_ms']:.0f} ms with the facts the writer kept at commit, "
            f"{s3['first_none_ms']:.0f} ms with none (every file read whole once). DuckDB reads the same files through a pyarrow "
            "dataset on the same S3 filesystem (its httpfs extension is not installed here).",
            "",
            "| query (S3) | workbench p50 / p95 ms | DuckDB p50 / p95 ms | load |",
            "|---|---|---|---|",
        ]
        for name, a50, a95, b50, b95, ld in s3["rows"]:
            lines.append(f"| {name} | {a50:.1f} / {a95:.1f} | {b50:.0f} / {b95:.0f} | {ld} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    """Run every phase, print the section, optionally write it into the docs."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=100_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--services", type=int, default=50)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--duck-runs", type=int, default=3, help="DuckDB runs per query (slow)")
    ap.add_argument("--s3-events", type=int, default=2_000_000)
    ap.add_argument("--ingest-batches", type=int, default=2000)
    ap.add_argument("--skip-s3", action="store_true")
    ap.add_argument(
        "--s3-url",
        help="s3://bucket/prefix on a real S3 or MinIO (AWS variables from the environment) "
        "instead of moto's stand-in",
    )
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--write-docs", action="store_true")
    ap.add_argument("--probe", choices=PROBES, help=argparse.SUPPRESS)
    ap.add_argument("--lake", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        print(json.dumps(probe(args.lake, args.probe, args.services)))
        return
    from bench_query import build

    results: dict[str, Any] = {"started": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"}
    print(f"load at start {load()}", flush=True)
    lake = build(args.events, args.days, args.services)
    results["bytes"], results["files"] = disk_bytes(lake)
    print(f"{results['bytes'] / args.events:.1f} bytes/event, {results['files']} files")
    # Cold processes: the lake's first reader, with the facts its writer kept at commit
    # (workbench.lake.committed); then with no facts at all (files some other tool or an
    # older version wrote: each is read whole once); then, after the warm phase, as a
    # restarted process finds what readers kept too (the message index).
    from bench_query import commit_facts

    from workbench.lake.facts import FACTS_DIR

    results["cold"] = []
    at_commit = commit_facts(lake)
    if at_commit.exists() and not any(at_commit.rglob("*.msgidx-*")):
        add_commit_message_index(lake, at_commit)
    for kept in ("at commit", "none"):
        if kept == "at commit" and not at_commit.exists():
            print("no facts saved at commit (lake built by an older bench): skipped", flush=True)
            continue
        for what in PROBES:
            if what.startswith("duck") and kept != "none":
                continue
            shutil.rmtree(Path(lake) / FACTS_DIR, ignore_errors=True)
            if kept == "at commit":
                shutil.copytree(at_commit, Path(lake) / FACTS_DIR)
            figures = cold(lake, what, args.services)
            shown = kept if not what.startswith("duck") else "n/a"
            results["cold"].append((what, shown, figures, load()))
            print(f"cold {what} (facts: {shown}): {figures}, load {load()}", flush=True)
    results["warm"] = warm(lake, args.services, args.runs, args.duck_runs)
    for what in PROBES:
        if not what.startswith("duck"):
            figures = cold(lake, what, args.services)
            results["cold"].append((what, "kept", figures, load()))
            print(f"cold {what} (facts kept): {figures}, load {load()}", flush=True)
    if not args.skip_ingest:
        results["ingest"] = ingest(args.ingest_batches)
    if not args.skip_s3:
        results["s3"] = s3_run(args.s3_events, args.days, args.services, args.runs, args.s3_url)
    text = section(args, results)
    print(text)
    if args.write_docs:
        doc = DOCS.read_text()
        pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
        if pattern.search(doc):
            doc = pattern.sub(lambda _: text + "\n", doc)
        else:
            doc = doc.replace("\n## Query\n", "\n" + text + "\n## Query\n", 1)
        DOCS.write_text(doc)


if __name__ == "__main__":
    main()
