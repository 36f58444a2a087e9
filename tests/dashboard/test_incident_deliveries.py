"""The incident detail shows what was sent to whom and when (issue 15 item 6): every
delivery of the incident (firing, repeats, resolved) with its channel (name and type),
its target, when it was queued and sent, its status, attempts and delivery id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from tests.dashboard.seed import Seeded
from workbench.catalog.db import get_engine, session_scope
from workbench.catalog.models import Delivery, NotificationChannel
from workbench.config import Settings
from workbench.dashboard.incidents import build_incidents


def _delivery(
    incident: uuid.UUID, channel: NotificationChannel, kind: str, at: datetime, **kw: object
) -> Delivery:
    values: dict[str, object] = {
        "incident_id": incident,
        "channel_id": channel.id,
        "event_type": kind,
        "url": channel.target,
        "payload": {"type": kind},
        "status": "sent",
        "attempts": 1,
        "next_attempt_at": at,
        "created_at": at,
        "sent_at": at + timedelta(seconds=2),
        "response_code": 200,
    }
    values.update(kw)
    return Delivery(**values)  # type: ignore[arg-type]


def test_the_detail_lists_each_page_with_channel_target_and_times(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    t = world.now - timedelta(minutes=18)
    inc = world.open_incident
    assert inc is not None
    with session_scope(get_engine(settings.database_url)) as s:
        slack = NotificationChannel(
            name="oncall slack", type="slack", target="https://hooks.example/T1", created_at=t
        )
        mail = NotificationChannel(
            name="ops mail", type="email", target="ops@example.com", created_at=t
        )
        s.add_all([slack, mail])
        s.flush()
        fired = _delivery(inc, slack, "error_alert", t)
        repeat = _delivery(
            inc,
            slack,
            "error_alert_repeat",
            t + timedelta(minutes=2),
            status="pending",
            attempts=2,
            sent_at=None,
            response_code=500,
            last_error="HTTP 500: busy",
        )
        resolved = _delivery(
            inc, mail, "error_alert_resolved", t + timedelta(minutes=4), response_code=250
        )
        s.add_all([fired, repeat, resolved])
        ids = [fired.id, repeat.id, resolved.id]
    page = build_incidents(settings, incident=str(inc), clock=clock)
    page.refresh()
    html = page.detail.timeline.value
    assert page.detail.error.message == ""
    assert "sent to whom and when" in html
    # Oldest first, one row per delivery, labelled as the notification says it.
    assert html.index("FIRING") < html.index("REPEAT") < html.index("RESOLVED")
    for text in (
        "oncall slack",
        "slack",
        "https://hooks.example/T1",
        "ops mail",
        "email",
        "ops@example.com",
        "pending",
        "HTTP 500: busy",
        "2 attempts",
    ):
        assert text in html, text
    assert "2026" in html  # queued and sent times are shown
    for delivery_id in ids:  # receivers dedupe on the id: show it (short) with the full one
        assert str(delivery_id) in html
