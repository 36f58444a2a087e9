"""The topology of ``deploy/compose.yaml`` as local processes, end to end (issue 13, items 2 and 5).

One S3 lake (moto's S3 server as a stand-in, ``tests/s3_helpers.py``: ``s3://<bucket>/lake``),
one fresh PostgreSQL database (the ``postgres_url`` fixture), two ``workbench serve`` nodes
(their own ``WORKBENCH_DATA_DIR``, one ``WORKBENCH_LAKE_URL``, one ``DATABASE_URL``, distinct
``WORKBENCH_NODE_NAME``) and two ``workbench scheduler`` processes, all real processes on
127.0.0.1, with a real loopback webhook receiver:

1. load on both API nodes at once, ``kill -9`` of one mid-load and its restart on the same
   data directory (WAL replay): every event answered 202 is visible exactly once through
   ``GET /api/logs`` on both nodes, ids unique across nodes;
2. a rule created through node A's API breaches from events sent through node B: one
   incident and one webhook delivery although two schedulers run; the evaluation runs name
   their node; ``kill -9`` of the scheduler holding the lock mid-run (the first minute) and
   the other evaluates that minute, or the next, at one of its ticks (every 4 s, as in
   ``test_ha_scheduler.py``: each wall-clock minute is still evaluated once);
3. two nodes running ``workbench compact`` and ``workbench retention`` at once on the S3
   lake neither lose nor double a row (count and distinct ids before and after); a manual
   ``compact`` waits while another node holds the housekeeping lock. (Without that lock two
   compactions on S3 committed overlapping files: every row read twice, 6,000 rows for
   3,000 ids, or one failed on a source the other had deleted.)

Wall time on the shared 2-core machine: 2-2.5 min for the file, 3 min at load average 10
(1: ~25-30 s; 2: ~50-85 s, of which the survivor's takeover 10-30 s; 3: ~15-20 s; the
waiting test ~10 s).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pyarrow as pa
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from tests.alerting.conftest import Receiver, _start
from tests.lake.test_crash import Load
from tests.live_server import LiveServer, start_scheduler, stop_process
from tests.s3_helpers import s3_lake
from tests.scale.test_two_nodes_one_lake import _all_logs, _start_all, _total
from tests.waiting import wait_until
from workbench import clock
from workbench.alerting.notify import LEASE
from workbench.alerting.run import CLUSTER_LOCK
from workbench.catalog import models as m
from workbench.catalog.db import get_engine
from workbench.catalog.locks import lock_key
from workbench.catalog.payload import DELIVERY_HEADER
from workbench.lake.reader import scan
from workbench.lake.schema import SCHEMA
from workbench.lake.writer import write_batch

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: How long an acknowledged event may take to show on every node (flush interval 0.2 s).
VISIBLE_WITHIN_S = 30.0


@dataclass
class Cluster:
    """The shared parts: the S3 lake, its AWS variables, the catalog, and each node's env."""

    lake_url: str
    database_url: str
    envs: dict[str, dict[str, str]]
    root: Path

    def server(self, name: str) -> LiveServer:
        """Return (not started) the API node ``name`` over its own data directory."""
        data = self.root / name / "data"
        data.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in self.envs[name].items() if k != "WORKBENCH_DATA_DIR"}
        return LiveServer(data, env=env)


@pytest.fixture
def cluster(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Cluster]:
    """A fresh S3 lake (AWS variables also set here) and PostgreSQL; the env of nodes a and b."""
    with s3_lake() as (url, aws):
        for key, value in aws.items():
            monkeypatch.setenv(key, value)
        envs = {}
        for name in ("node-a", "node-b"):
            (tmp_path / name).mkdir()
            envs[name] = {
                **os.environ,
                **aws,
                "DATABASE_URL": postgres_url,
                "WORKBENCH_LAKE_URL": url,
                "WORKBENCH_DATA_DIR": str(tmp_path / name),
                "WORKBENCH_NODE_NAME": name,
                "WORKBENCH_ALLOW_PRIVATE_WEBHOOKS": "true",
            }
        yield Cluster(url, postgres_url, envs, tmp_path)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    _start(r)
    yield r
    assert r.server is not None
    r.server.shutdown()
    r.server.server_close()


def test_two_api_nodes_on_one_s3_lake_lose_nothing_on_kill_9(cluster: Cluster) -> None:
    a, b = nodes = [cluster.server("node-a"), cluster.server("node-b")]
    try:
        _start_all(nodes)
        load = Load([a.url, b.url], threads_per_url=1).start()
        wait_until(lambda: len(load.acked) > 300, 30, what="load under way")
        # Kill it while its WAL holds acknowledged events not yet in the lake.
        wait_until(lambda: a.health()["wal"]["events"] > 0, 30, what="a WAL backlog")
        a.kill()
        before = sum(x.startswith("0-") for x in load.acked)
        a.start(timeout=60)  # the same data directory: its WAL is replayed
        wait_until(
            lambda: sum(x.startswith("0-") for x in load.acked) > before + 200, 30, what="a again"
        )
        load.stop()
        acked = set(load.acked)
        wait_until(lambda: a.health()["wal"]["replayedEvents"] > 0, 30, what="a's WAL replayed")
        assert sum(x.startswith("1-") for x in acked) > 100, "node b took no real load"

        took = wait_until(
            lambda: all(_total(n) >= len(acked) for n in nodes),
            VISIBLE_WITHIN_S,
            what="every acknowledged event visible on both nodes",
            every=0.2,
        )
        print(f"{len(acked)} acknowledged; visible on both nodes after {took:.1f}s")
        for node in nodes:
            logs = _all_logs(node)
            messages = [log["message"] for log in logs]
            ids = [log["id"] for log in logs]
            assert not acked - set(messages), f"{node.url}: acknowledged events missing"
            assert len(messages) == len(set(messages)), f"{node.url}: an event seen twice"
            assert len(ids) == len(set(ids)), f"{node.url}: an id appears twice"
            assert len({i[12:20] for i in ids}) >= 3  # a, restarted a, b: node parts differ
        assert not list((cluster.root / "node-a" / "data").rglob("*.parquet"))  # lake is on S3
    finally:
        for node in nodes:
            node.stop()


def _runs(engine: sa.Engine) -> list[m.EvaluationRun]:
    with Session(engine) as s:
        return list(s.exec(select(m.EvaluationRun)).all())


def _count(engine: sa.Engine, model: type) -> int:
    with Session(engine) as s:
        return len(s.exec(select(model)).all())


def _evaluation_lock_holder(
    engine: sa.Engine, schedulers: dict[str, subprocess.Popen[bytes]]
) -> str | None:
    """Return the scheduler holding the evaluation's advisory lock, or None.

    PostgreSQL names the holder's backend and its client port; the scheduler process
    that owns that local port holds the lock.
    """
    key = lock_key(CLUSTER_LOCK)
    with engine.connect() as conn:
        port = conn.execute(
            sa.text(
                "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
                " AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid)"
            ),
            {"hi": (key >> 32) & 0xFFFFFFFF, "lo": key & 0xFFFFFFFF},
        ).scalar()
    if port is None:
        return None
    for name, proc in schedulers.items():
        try:
            process = psutil.Process(proc.pid)
            if any(c.laddr.port == port for c in process.net_connections(kind="tcp")):
                return name
        except psutil.NoSuchProcess:
            continue
    return None


@pytest.mark.timeout(600)  # the page may wait for a dead claim's lease (2 min)
def test_two_schedulers_page_once_for_a_rule_made_on_a_and_events_sent_to_b(
    cluster: Cluster, receiver: Receiver
) -> None:
    a, b = nodes = [cluster.server("node-a"), cluster.server("node-b")]
    engine = get_engine(cluster.database_url)
    schedulers: dict[str, subprocess.Popen[bytes]] = {}
    logs = {n: cluster.root / n / "scheduler.log" for n in cluster.envs}

    def log_text() -> str:
        return "\n".join(p.read_text(errors="replace") for p in logs.values() if p.exists())

    def ok() -> list[m.EvaluationRun]:
        return [r for r in _runs(engine) if r.status == "ok"]

    try:
        _start_all(nodes)
        with httpx.Client(base_url=a.url, timeout=30) as api_a:
            rule = {"service": "pay", "threshold": 5, "window_minutes": 10, "cooldown_minutes": 15}
            assert api_a.post("/api/alerts/rules", json=rule).status_code == 201
            channel = {"target": receiver.url, "name": "hook"}
            created = api_a.post("/api/alerts/channels", json=channel)
            assert created.status_code == 201, created.text
        with httpx.Client(base_url=b.url, timeout=30) as api_b:
            for i in range(8):
                event = {"service": "pay", "level": "error", "message": f"declined {i}"}
                assert api_b.post("/api/logs", json=event).status_code == 202
            wait_until(lambda: _total_of(api_b, "pay") == 8, VISIBLE_WITHIN_S, what="in lake")

        schedulers = {
            n: start_scheduler(env, logs[n], evaluate_s=4, housekeeping_s=2)
            for n, env in cluster.envs.items()
        }
        try:
            # kill -9 the node holding the lock for the first minute as soon as it has it
            # (its kernel is still starting: nothing is committed yet). Killed later, after
            # the kernel committed the incident and claimed its delivery, the page would
            # wait for the claim's 2-minute lease (docs/alerting.md: at-least-once).
            holder: list[str] = []

            def holder_found() -> bool:
                name = _evaluation_lock_holder(engine, schedulers)
                holder.extend([name] if name else [])
                return bool(name)

            wait_until(
                holder_found,
                120,
                what="a scheduler evaluating under the lock",
                every=0.05,
            )
            killed, killed_at = holder[0], clock.minute()
            os.killpg(schedulers[killed].pid, signal.SIGKILL)
            schedulers[killed].wait()
            survivor = next(n for n in schedulers if n != killed)
            took = wait_until(
                lambda: any(r.node == survivor and r.now >= killed_at for r in ok()),
                120,
                what=f"{survivor} evaluates after the holder's kill -9",
                every=0.2,
            )
            # Usually within a tick. If the holder died after committing the incident and
            # claiming its delivery, the page waits for the claim's lease to end (at-least-once,
            # docs/alerting.md): allow for it rather than race the kill against the kernel.
            wait_until(
                lambda: len(receiver.requests) >= 1,
                LEASE.total_seconds() + 60,
                what="the webhook delivery",
            )
            print(f"kill -9 of {killed} mid-run; {survivor} evaluated {took:.1f}s later")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{log_text()}") from exc
    finally:
        for proc in schedulers.values():
            stop_process(proc)
        for node in nodes:
            node.stop()
    runs = _runs(engine)
    per_minute = Counter(r.now for r in runs if r.status == "ok")
    assert per_minute and max(per_minute.values()) == 1, per_minute
    assert {r.node for r in ok()} == {survivor}, [(r.node, r.now, r.status) for r in runs]
    assert {r.node for r in runs} <= {"node-a", "node-b"}
    assert _count(engine, m.AlertIncident) == 1
    assert _count(engine, m.Delivery) == 1
    # One page: a resend after a dead claim's lease carries the same delivery id.
    ids = {
        {k.lower(): v for k, v in r["headers"].items()}.get(DELIVERY_HEADER.lower())
        for r in receiver.requests
    }
    assert len(ids) == 1 and None not in ids, receiver.requests
    assert "Traceback" not in logs[survivor].read_text(errors="replace")
    engine.dispose()


def _total_of(client: httpx.Client, service: str) -> int:
    response = client.get("/api/logs", params={"service": service, "limit": 1})
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


#: Past days written as many small files, so each compactor spends a while listing and merging.
NOW = datetime.now(UTC).replace(microsecond=0)
KEPT_DAYS = (3, 4, 5, 6)
EXPIRED_DAY = 20
FILES_PER_DAY = 12
ROWS_PER_FILE = 50


def _write_small_files(lake_url: str) -> int:
    written = 0
    for days_ago in (*KEPT_DAYS, EXPIRED_DAY):
        at = NOW - timedelta(days=days_ago)
        for f in range(FILES_PER_DAY):
            ts = [at + timedelta(seconds=f, milliseconds=i) for i in range(ROWS_PER_FILE)]
            ids = [f"{days_ago:02d}-{f:03d}-{i:04d}" for i in range(ROWS_PER_FILE)]
            table = pa.table(
                {
                    "id": ids,
                    "timestamp": ts,
                    "received_at": ts,
                    "service": ["compact"] * ROWS_PER_FILE,
                    "level": ["info"] * ROWS_PER_FILE,
                    "message": ids,
                    "meta": [None] * ROWS_PER_FILE,
                },
                schema=SCHEMA,
            )
            write_batch(table, lake_url=lake_url, name=f"seed{days_ago:02d}{f:03d}")
            written += ROWS_PER_FILE
    return written


def _lake_rows(lake_url: str) -> tuple[int, int]:
    frame = scan(lake_url).collect()
    return frame.height, frame["id"].n_unique()


def _run_at_once(cluster: Cluster, *commands: tuple[str, list[str]]) -> list[tuple[int, str]]:
    procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    for node, args in commands:
        log = cluster.root / node / f"{args[0]}-{len(procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench", *args],
                env=cluster.envs[node],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        procs.append((proc, log))
    results = []
    for proc, log in procs:
        proc.wait(timeout=180)
        results.append((proc.returncode, log.read_text(errors="replace")))
    return results


def test_two_nodes_compacting_and_expiring_one_s3_lake_at_once_keep_every_row_once(
    cluster: Cluster,
) -> None:
    written = _write_small_files(cluster.lake_url)
    kept = written - FILES_PER_DAY * ROWS_PER_FILE
    assert _lake_rows(cluster.lake_url) == (written, written)
    started = time.monotonic()
    compact = ["compact", "--grace-minutes", "0"]
    results = _run_at_once(
        cluster,
        ("node-a", compact),
        ("node-b", compact),
        ("node-a", ["retention", "--days", "10"]),
        ("node-b", ["retention", "--days", "10"]),
    )
    print(f"two compactions and two retentions at once: {time.monotonic() - started:.1f}s")
    assert all(code == 0 for code, _ in results), results
    rows, distinct = _lake_rows(cluster.lake_url)
    assert (rows, distinct) == (kept, kept), results
    merges = Counter(
        line.split(":", 1)[0]
        for _, text in results[:2]
        for line in text.splitlines()
        if ": merged " in line and ": merged 0 " not in line
    )
    kept_days = {(NOW - timedelta(days=d)).date().isoformat() for d in KEPT_DAYS}
    # Each kept day merged once, by one node or the other (the expired one maybe, if first).
    assert {d: merges[d] for d in kept_days} == dict.fromkeys(kept_days, 1), results


def test_a_manual_compact_waits_while_another_node_holds_the_housekeeping_lock(
    cluster: Cluster,
) -> None:
    from scheduled.scheduler import HOUSEKEEPING_LOCK
    from workbench.catalog.locks import AdvisoryLock

    written = _write_small_files(cluster.lake_url)
    held = AdvisoryLock(cluster.database_url, HOUSEKEEPING_LOCK)
    assert held.try_acquire()  # another node's housekeeping pass is under way
    log = cluster.root / "node-b" / "compact-waiting.log"
    try:
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "workbench", "compact", "--grace-minutes", "0"],
                env=cluster.envs["node-b"],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: "waiting" in log.read_text(errors="replace"), 60, what="waiting")
        assert proc.poll() is None
        assert len(_files(cluster.lake_url)) == FILES_PER_DAY * (len(KEPT_DAYS) + 1)
    finally:
        held.release()
    assert proc.wait(timeout=120) == 0, log.read_text(errors="replace")
    assert "compacted 5 partition(s)" in log.read_text(errors="replace")
    assert _lake_rows(cluster.lake_url) == (written, written)


def _files(lake_url: str) -> list[str]:
    from workbench.lake.reader import visible_files

    return [str(f) for f in visible_files(lake_url, None, None)]
