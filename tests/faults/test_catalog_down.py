"""Fault: the catalog database goes away in the middle of an evaluation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.alerting.conftest import (
    Clock,
    Receiver,
    add_channel,
    add_errors,
    add_rule,
    deliveries,
    incidents,
)
from workbench.alerting.evaluate import evaluate
from workbench.alerting.notify import deliver_due

DASH = "http://127.0.0.1:8866"


@pytest.mark.parametrize(
    "statement", ["INSERT INTO alert_incidents", "INSERT INTO notification_deliveries"]
)
def test_catalog_lost_mid_run_next_tick_no_duplicates(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver, statement: str
) -> None:
    """Injects: an ``OperationalError`` (what a dropped connection or a restarting server
    raises) on the first ``statement`` of the run, i.e. while the decision is being written.

    Proves: the evaluation raises (a clean error, its run row marked ``error`` when
    the catalog allows), nothing half-written stays (no incident without its
    delivery); the next tick opens exactly one incident and one delivery, and a
    third tick and the sender add no duplicate notification.
    """
    engine = sqlite_engine
    add_rule(engine)
    add_channel(engine, receiver.url)
    add_errors(lake_url, clock.now, 7)
    armed = {"on": True}

    def fail_once(conn: sa.Connection, cursor: object, sql: str, *args: object) -> None:
        if armed["on"] and sql.startswith(statement):
            armed["on"] = False
            raise sa.exc.OperationalError(
                sql, None, Exception("server closed the connection unexpectedly")
            )

    event.listen(engine, "before_cursor_execute", fail_once)
    try:
        with pytest.raises(sa.exc.OperationalError):
            evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)
    finally:
        event.remove(engine, "before_cursor_execute", fail_once)
    assert not armed["on"], "the fault was not injected"
    assert incidents(engine) == [] and deliveries(engine) == []

    evaluate(engine=engine, lake_url=lake_url, now=clock.advance(1), dashboard_url=DASH)
    assert len(incidents(engine)) == 1 and len(deliveries(engine)) == 1
    evaluate(engine=engine, lake_url=lake_url, now=clock.advance(1), dashboard_url=DASH)
    assert len(incidents(engine)) == 1 and len(deliveries(engine)) == 1
    deliver_due(engine=engine, now=clock.now, timeout=2)
    deliver_due(engine=engine, now=clock.advance(5), timeout=2)
    assert len(receiver.requests) == 1
