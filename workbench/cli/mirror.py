"""``workbench mirror …``: run the Elasticsearch follower, show its status, backfill, check."""

from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import datetime
from types import FrameType

import click

from workbench.config import get_settings
from workbench.errors import ConfigError, ValidationError
from workbench.mirror.backfill import backfill
from workbench.mirror.elastic import make_client, mirror_settings
from workbench.mirror.follower import run_follower
from workbench.mirror.status import consistency, mirror_status
from workbench.times import parse_bound


def _range(start: str, end: str) -> tuple[datetime, datetime]:
    lo = parse_bound(start, "--from", end=False)
    hi = parse_bound(end, "--to", end=True)
    if hi <= lo:
        raise ValidationError("--to must be after --from", {"--to": ["must be after --from"]})
    return lo, hi


_RANGE_HELP = "ISO date or datetime (UTC when no offset); a --to date includes that whole day."


@click.group("mirror")
def group() -> None:
    """Mirror the lake into Elasticsearch (ELASTIC_URL) and check the mirror."""


@group.command("run")
@click.option("-v", "--verbose", is_flag=True, help="Log every pass, not only problems.")
def run_cmd(verbose: bool) -> None:
    """Follow the lake and index new events until interrupted (Ctrl-C / SIGTERM)."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    settings = get_settings()
    ms = mirror_settings(settings)
    es = make_client(ms)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    click.echo(f"mirroring {settings.lake_url} -> {ms.elastic_url} ({ms.index_pattern})")
    run_follower(settings, ms, es, stop)


@group.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status_cmd(as_json: bool) -> None:
    """Show lag (events and seconds behind), last error and failures."""
    st = mirror_status(get_settings())
    if as_json:
        click.echo(json.dumps(st.as_dict(), indent=2, default=str))
        return
    click.echo(f"enabled:          {'yes' if st.enabled else 'no (ELASTIC_URL unset)'}")
    click.echo(f"follower running: {'yes' if st.follower_running else 'no'}")
    click.echo(
        f"behind:           {st.events_behind} events in {st.pending_files} files, "
        f"{st.seconds_behind:.1f} s"
    )
    click.echo(f"mirrored files:   {st.mirrored_files}")
    click.echo(f"last success:     {st.last_success_at or '-'}")
    click.echo(
        f"last error:       {st.last_error or '-'}"
        + (f" (at {st.last_error_at})" if st.last_error else "")
    )
    click.echo(f"failed events:    {st.failure_count}")
    for f in st.recent_failures:
        click.echo(f"  {f.event_id} {f.index_name} {f.status} {f.error_type}: {f.reason}")


@group.command("backfill")
@click.option("--from", "start", required=True, help=_RANGE_HELP)
@click.option("--to", "end", required=True, help=_RANGE_HELP)
def backfill_cmd(start: str, end: str) -> None:
    """Re-index every lake event in a past range (new cluster, deleted index)."""
    lo, hi = _range(start, end)
    settings = get_settings()
    ms = mirror_settings(settings)
    r = backfill(settings, ms, make_client(ms), lo, hi)
    click.echo(
        f"re-indexed {r.indexed} of {r.events} events from {r.files} files; "
        f"{r.failed} failed (see `workbench mirror status`)"
    )


@group.command("check")
@click.option("--from", "start", required=True, help=_RANGE_HELP)
@click.option("--to", "end", required=True, help=_RANGE_HELP)
def check_cmd(start: str, end: str) -> None:
    """Compare event counts per day and service in the lake and Elasticsearch; exit 1 on differences."""
    lo, hi = _range(start, end)
    settings = get_settings()
    ms = mirror_settings(settings)
    if not ms.elastic_url:
        raise ConfigError("ELASTIC_URL is not set: nothing to check against")
    report = consistency(
        settings.lake_url, make_client(ms), lo, hi, index_prefix=ms.index_prefix, refresh=True
    )
    click.echo(
        f"lake {report.lake_total} events, elasticsearch {report.elastic_total} "
        f"({lo.isoformat()} .. {hi.isoformat()})"
    )
    if report.consistent:
        click.echo("consistent")
        return
    click.echo(f"{'day':<12}{'service':<32}{'lake':>10}{'elastic':>10}{'missing':>10}")
    for d in report.differences:
        click.echo(
            f"{d.day.isoformat():<12}{d.service:<32}{d.lake:>10}{d.elastic:>10}{d.missing:>10}"
        )
    raise SystemExit(1)


COMMANDS: list[click.Command] = [group]
