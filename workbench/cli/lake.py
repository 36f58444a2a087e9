"""CLI commands of the lake area: ``demo``, ``retention``, ``compact``, ``verify`` (thin shells)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

import click

from workbench import clock
from workbench.config import get_settings

if TYPE_CHECKING:
    from workbench.lake.compaction import CompactionResult


def _lake_url(lake: str | None) -> str:
    return lake or get_settings().lake_url


@contextmanager
def _housekeeping_lock() -> Iterator[None]:
    """Hold the cluster's housekeeping lock on a PostgreSQL catalog, waiting for it if taken.

    The schedulers' housekeeping passes take the same advisory lock, so a manual
    ``compact``/``retention`` never runs beside them or beside another node's manual
    run: two compactions of one partition on object storage (no partition lock
    there) would commit overlapping files, and every row of it would read twice. On
    SQLite (one machine) nothing is taken: the per-partition lock files do it.
    """
    settings = get_settings()
    from workbench.catalog.locks import cluster_lock, is_cluster_catalog

    if not is_cluster_catalog(settings.database_url):
        yield
        return
    from scheduled.scheduler import HOUSEKEEPING_LOCK

    lock = cluster_lock(
        HOUSEKEEPING_LOCK, database_url=settings.database_url, data_dir=settings.data_dir
    )
    if not lock.try_acquire():
        click.echo("waiting for the housekeeping lock (another node is at work on the lake)")
        while not lock.try_acquire():
            time.sleep(0.5)
    try:
        yield
    finally:
        lock.release()


@click.command("demo")
@click.option(
    "--events",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="How many events to write.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1),
    default=7,
    show_default=True,
    help="Spread them over this many days before now.",
)
@click.option(
    "--services",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="How many services emit them.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Random seed (same seed, same lake)."
)
@click.option("--lake", default=None, help="Lake URL (default: WORKBENCH_LAKE_URL).")
def demo_command(events: int, days: int, services: int, seed: int, lake: str | None) -> None:
    """Write realistic synthetic logs into the lake (diurnal traffic, error bursts)."""
    from workbench.demo import generate

    url = _lake_url(lake)
    n = generate(url, events=events, days=days, services=services, now=clock.now(), seed=seed)
    click.echo(f"wrote {n} events over {days} days for {services} services into {url}")


@click.command("retention")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    required=True,
    help="Keep this many days; delete older date partitions.",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted, delete nothing.")
@click.option("--lake", default=None, help="Lake URL (default: WORKBENCH_LAKE_URL).")
def retention_command(days: int, dry_run: bool, lake: str | None) -> None:
    """Delete whole date partitions older than --days days."""
    from workbench.lake.retention import apply_retention

    if dry_run:
        removed = apply_retention(_lake_url(lake), days=days, now=clock.now(), dry_run=True)
    else:
        with _housekeeping_lock():
            removed = apply_retention(_lake_url(lake), days=days, now=clock.now())
    verb = "would delete" if dry_run else "deleted"
    for part in removed:
        click.echo(f"{verb} {part.day.isoformat()} ({part.files} files)")
    click.echo(f"{verb} {len(removed)} partition(s)")


@click.command("compact")
@click.option(
    "--older-than-hours",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Only partitions whose day ended at least this long ago.",
)
@click.option(
    "--grace-minutes",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Delete replaced files only this long after their replacement committed.",
)
@click.option(
    "--hot",
    is_flag=True,
    help="Instead, merge the small settled files of the recent partitions "
    "(WORKBENCH_COMPACT_* settings), as the scheduler's housekeeping does.",
)
@click.option("--lake", default=None, help="Lake URL (default: WORKBENCH_LAKE_URL).")
def compact_command(
    older_than_hours: float, grace_minutes: float, hot: bool, lake: str | None
) -> None:
    """Merge the small files of past date partitions into one file each."""
    with _housekeeping_lock():
        results = _compact(older_than_hours, grace_minutes, hot, lake)
    for r in results:
        if r.merged or r.deleted:
            click.echo(
                f"{r.day.isoformat()}: merged {r.merged} files ({r.rows} rows), deleted {r.deleted}"
            )
    click.echo(f"compacted {sum(1 for r in results if r.merged)} partition(s)")


def _compact(
    older_than_hours: float, grace_minutes: float, hot: bool, lake: str | None
) -> list[CompactionResult]:
    from workbench.lake.compaction import SmallFilePolicy, compact, compact_hot

    if hot:
        return compact_hot(
            _lake_url(lake),
            now=clock.now(),
            policy=SmallFilePolicy.from_settings(get_settings()),
            older_than=timedelta(hours=older_than_hours),
            grace=timedelta(minutes=grace_minutes),
        )
    return compact(
        _lake_url(lake),
        now=clock.now(),
        older_than=timedelta(hours=older_than_hours),
        grace=timedelta(minutes=grace_minutes),
    )


@click.command("verify")
@click.option("--lake", default=None, help="Lake URL (default: WORKBENCH_LAKE_URL).")
def verify_command(lake: str | None) -> None:
    """Check the footer and page checksums of every lake file; exit 1 if one is damaged."""
    from workbench.lake.integrity import verify_lake

    report = verify_lake(_lake_url(lake))
    for path, problem in report.damaged:
        click.echo(f"damaged: {path}: {problem}")
    if report.quarantined:
        click.echo(f"{len(report.quarantined)} file(s) already in quarantine, not checked:")
        for path in report.quarantined:
            click.echo(f"  {path}")
    click.echo(f"{report.checked} file(s) checked, {len(report.damaged)} damaged")
    if report.damaged:
        raise SystemExit(1)


@click.command("files")
@click.option("--lake", default=None, help="Lake URL (default: WORKBENCH_LAKE_URL).")
@click.option(
    "--since", default=None, help="Only files that may hold events from then on: 24h, 7d, ISO 8601."
)
@click.option(
    "--until", default=None, help="Only files that may hold events up to then (ISO 8601)."
)
@click.option(
    "--format",
    "output",
    type=click.Choice(["lines", "duckdb", "json"]),
    default="lines",
    show_default=True,
    help="lines: one URL per line; duckdb: a read_parquet([...]) source; json: a list.",
)
def files_command(lake: str | None, since: str | None, until: str | None, output: str) -> None:
    """Print the lake files the workbench reads now (exact counts for DuckDB, Spark, Trino).

    Compaction's sources stay on disk for WORKBENCH_COMPACT_GRACE_SECONDS after their rows
    moved into the compacted file; a glob over the lake counts those rows twice meanwhile
    (docs/scale-out.md). This list names the visible files only: read exactly these.
    """
    import json

    from workbench.lake import fs as lakefs
    from workbench.lake import reader
    from workbench.times import parse_time

    now = clock.now()
    start = parse_time(since, now, "since")
    end = parse_time(until, now, "until")
    urls = [lakefs.uri(p) for p in reader.visible_files(_lake_url(lake), start, end)]
    if output == "json":
        click.echo(json.dumps(urls))
    elif output == "duckdb":
        quoted = ", ".join("'" + u.replace("'", "''") + "'" for u in urls)
        click.echo(f"read_parquet([{quoted}], hive_partitioning = true)")
    else:
        for url in urls:
            click.echo(url)


COMMANDS: list[click.Command] = [
    demo_command,
    retention_command,
    compact_command,
    verify_command,
    files_command,
]
