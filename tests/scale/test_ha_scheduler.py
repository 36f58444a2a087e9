"""HA scheduling (issue 13, item 3): several schedulers on one PostgreSQL catalog and one lake.

Real processes, each with its own ``WORKBENCH_DATA_DIR`` (so no shared file lock can
serialise them): only the catalog's advisory lock and the per-minute check do.

* two ``workbench evaluate --now T`` racing for one minute: one evaluation run, one
  incident, one notification; ``kill -9`` of the holder mid-run and the other node
  evaluates that minute;
* two ``workbench scheduler`` processes: each boundary is evaluated once, by one node,
  and after ``kill -9`` of the one that evaluated last the other keeps evaluating.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from tests.alerting.conftest import Receiver, _start, add_channel, add_errors, add_rule
from tests.live_server import start_scheduler, stop_process
from workbench.catalog import models as m
from workbench.catalog.db import get_engine, init_db

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    _start(r)
    yield r
    assert r.server is not None
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def cluster(
    postgres_url: str, tmp_path: Path, receiver: Receiver
) -> Iterator[tuple[Engine, dict[str, dict[str, str]]]]:
    """A catalog with one rule and one webhook channel, a lake, and the env of nodes a and b."""
    engine = get_engine(postgres_url)
    init_db(engine)
    add_rule(engine)
    add_channel(engine, receiver.url)
    lake = tmp_path / "lake"
    lake.mkdir()
    envs = {}
    for name in ("node-a", "node-b"):
        data = tmp_path / name
        data.mkdir()
        envs[name] = {
            **os.environ,
            "DATABASE_URL": postgres_url,
            "WORKBENCH_LAKE_URL": str(lake),
            "WORKBENCH_DATA_DIR": str(data),
            "WORKBENCH_NODE_NAME": name,
            "WORKBENCH_ALLOW_PRIVATE_WEBHOOKS": "true",
        }
    yield engine, envs
    engine.dispose()


def _runs(engine: Engine) -> list[m.EvaluationRun]:
    with Session(engine) as s:
        return list(s.exec(select(m.EvaluationRun)).all())


def _count(engine: Engine, model: type) -> int:
    with Session(engine) as s:
        return len(s.exec(select(model)).all())


def _advisory_locks(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            ).scalar_one()
        )


def _evaluate(env: dict[str, str], at: datetime, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workbench", "evaluate", "--now", at.isoformat()],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # kill -9 of the group takes its kernel too
        )


def _wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_two_evaluations_racing_for_a_minute_make_one_run_and_a_killed_holder_is_replaced(
    cluster: tuple[Engine, dict[str, dict[str, str]]], receiver: Receiver, tmp_path: Path
) -> None:
    engine, envs = cluster
    lake = envs["node-a"]["WORKBENCH_LAKE_URL"]
    add_errors(lake, T, 8)
    procs = {n: _evaluate(env, T, tmp_path / f"{n}.log") for n, env in envs.items()}
    for proc in procs.values():
        proc.wait(timeout=180)
    logs = {n: (tmp_path / f"{n}.log").read_text(errors="replace") for n in procs}
    codes = sorted(p.returncode for p in procs.values())
    assert codes[0] == 0 and codes[1] != 0, logs
    winner = next(n for n, p in procs.items() if p.returncode == 0)
    loser = next(n for n in procs if n != winner)
    assert f"node {winner}" in logs[winner], logs[winner]
    assert "skipped" in logs[loser], logs[loser]
    runs = [r for r in _runs(engine) if r.now == T]
    assert len(runs) == 1, [(r.node, r.status) for r in runs]
    assert runs[0].status == "ok" and runs[0].node == winner
    assert _count(engine, m.AlertIncident) == 1
    assert _wait_for(lambda: len(receiver.requests) >= 1, 10)
    time.sleep(0.5)
    assert len(receiver.requests) == 1

    # kill -9 the holder mid-run (it holds the lock, its kernel is starting): the
    # server frees the lock with its connection and the other node evaluates that minute.
    t1 = T + timedelta(minutes=1)
    holder = _evaluate(envs["node-a"], t1, tmp_path / "a-killed.log")
    try:
        assert _wait_for(lambda: _advisory_locks(engine) == 1, 60), (
            tmp_path / "a-killed.log"
        ).read_text(errors="replace")
        time.sleep(0.5)
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait()
    assert _wait_for(lambda: _advisory_locks(engine) == 0, 10)
    taker = _evaluate(envs["node-b"], t1, tmp_path / "b-takes-over.log")
    assert taker.wait(timeout=180) == 0, (tmp_path / "b-takes-over.log").read_text(errors="replace")
    runs = [r for r in _runs(engine) if r.now == t1]
    ok = [r for r in runs if r.status == "ok"]
    assert [r.node for r in ok] == ["node-b"], [(r.node, r.status) for r in runs]
    assert all(r.status == "error" for r in runs if r not in ok)
    assert _count(engine, m.AlertIncident) == 1
    assert len(receiver.requests) == 1  # still breaching, inside the cooldown: no new page


def test_two_schedulers_evaluate_each_boundary_once_and_survive_kill_9(
    cluster: tuple[Engine, dict[str, dict[str, str]]], receiver: Receiver, tmp_path: Path
) -> None:
    engine, envs = cluster
    add_errors(envs["node-a"]["WORKBENCH_LAKE_URL"], datetime.now(UTC), 8)
    logs = {n: tmp_path / f"{n}-scheduler.log" for n in envs}
    procs = {
        n: start_scheduler(env, logs[n], evaluate_s=4, housekeeping_s=1) for n, env in envs.items()
    }
    try:
        ok = lambda: [r for r in _runs(engine) if r.status == "ok"]  # noqa: E731
        assert _wait_for(lambda: len(ok()) >= 3, 180), {
            n: p.read_text(errors="replace") for n, p in logs.items()
        }
        latest = max(ok(), key=lambda r: r.now)
        assert latest.node in procs
        killed_at = datetime.now(UTC)
        os.killpg(procs[latest.node].pid, signal.SIGKILL)
        procs[latest.node].wait()
        survivor = next(n for n in procs if n != latest.node)
        assert _wait_for(
            lambda: any(r.node == survivor and r.now > killed_at for r in ok()), 120
        ), logs[survivor].read_text(errors="replace")
    finally:
        for proc in procs.values():
            stop_process(proc)
    per_minute = Counter(r.now for r in _runs(engine) if r.status == "ok")
    assert per_minute and max(per_minute.values()) == 1, per_minute
    assert _count(engine, m.AlertIncident) == 1
    assert len(receiver.requests) == 1
    survivor_log = logs[survivor].read_text(errors="replace")
    assert "Traceback" not in survivor_log, survivor_log
    with engine.connect() as conn:
        nodes = {n for (n,) in conn.execute(sa.text("SELECT DISTINCT node FROM evaluation_runs"))}
    assert nodes <= {"node-a", "node-b"}
