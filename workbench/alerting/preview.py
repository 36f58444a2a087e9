"""Channel preview: what a channel would receive for its most recent incident, without sending.

:func:`preview_channel` takes the newest incident (by ``triggered_at``); its newest
page's stored payload (with the evidence gathered then) when there is one, else a
payload built from the incident row; with no incident at all, a sample
notification. It renders the channel's template and type-specific body
(:mod:`workbench.alerting.messages`) and writes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from workbench.alerting import messages
from workbench.catalog import models as m
from workbench.catalog.channels import PAGING_TYPES, get_channel
from workbench.catalog.incidents import list_incidents
from workbench.catalog.payload import build_payload, incident_payload, incident_url, iso_z


def sample_payload(now: datetime, dashboard_url: str) -> dict[str, Any]:
    """Return a made-up firing notification (service ``example``) for previews."""
    incident_id = uuid.UUID(int=0)
    payload = build_payload(
        event_type="error_alert",
        service="example",
        error_count=12,
        window_minutes=5,
        triggered_at=now,
        incident_id=incident_id,
        rule_id=None,
        threshold=10,
        status="open",
        severity="warning",
        dashboard_url=dashboard_url,
    )
    stamp = now - timedelta(seconds=5)
    payload["evidence"] = {
        "topPatterns": [
            {
                "pattern": "timeout after <num> ms calling <str>",
                "count": 9,
                "example": 'timeout after 5000 ms calling "payments"',
            },
            {
                "pattern": "connection reset by peer",
                "count": 3,
                "example": "connection reset by peer",
            },
        ],
        "sample": [
            {
                "timestamp": payload["triggeredAt"],
                "level": "error",
                "message": 'timeout after 5000 ms calling "payments"',
                "meta": '{"route":"/checkout"}',
            },
            {
                "timestamp": iso_z(stamp),
                "level": "error",
                "message": "connection reset by peer",
                "meta": None,
            },
        ],
        "dashboardUrl": incident_url(dashboard_url, incident_id),
        "logsUrl": f"{dashboard_url.rstrip('/')}/voila/render/logs.ipynb?service=example",
    }
    return payload


def newest_payload(
    session: Session, incident: m.AlertIncident, dashboard_url: str
) -> dict[str, Any]:
    """Return the newest page payload sent (or queued) for ``incident``, else one built from it."""
    stored = session.exec(
        select(m.Delivery)
        .where(
            m.Delivery.incident_id == incident.id,
            col(m.Delivery.event_type).in_(PAGING_TYPES),
        )
        .order_by(col(m.Delivery.created_at).desc())
        .limit(1)
    ).first()
    if stored is not None:
        return dict(stored.payload)
    return incident_payload(
        incident, event_type="error_alert", status=incident.status, dashboard_url=dashboard_url
    )


def preview_channel(
    *, session: Session, channel_id: uuid.UUID, now: datetime, dashboard_url: str
) -> dict[str, Any]:
    """Return what the channel would get now: source, subject, text and the type's body.

    Raises NotFound for an unknown channel. ``body`` is the JSON sent (webhook,
    slack) or, for email, ``{"subject", "text", "html"}``.
    """
    channel = get_channel(session=session, channel_id=channel_id)
    return render_preview(session=session, channel=channel, now=now, dashboard_url=dashboard_url)


def render_preview(
    *, session: Session, channel: m.NotificationChannel, now: datetime, dashboard_url: str
) -> dict[str, Any]:
    """Return :func:`preview_channel`'s answer for ``channel``, saved or not (the dashboard's form)."""
    newest = list_incidents(session=session, limit=1)
    if newest:
        payload = newest_payload(session, newest[0], dashboard_url)
        source, incident_id = "incident", str(newest[0].id)
    else:
        payload = sample_payload(now, dashboard_url)
        source, incident_id = "sample", None
    rendered = messages.render(channel.template, payload)
    body: dict[str, Any]
    if channel.type == "slack":
        body = messages.slack_body(payload, channel.template)
    elif channel.type == "email":
        email = messages.email_message(
            payload,
            channel.template,
            sender="preview@log-workbench",
            recipient=channel.target,
            now=now,
            delivery_id="preview",
        )
        text_part = email.get_body(preferencelist=("plain",))
        html_part = email.get_body(preferencelist=("html",))
        body = {
            "subject": str(email["Subject"]),
            "text": text_part.get_content() if text_part is not None else "",
            "html": html_part.get_content() if html_part is not None else "",
        }
    else:
        body = messages.webhook_body(payload, channel.template)
    return {
        "channelId": str(channel.id),
        "type": channel.type,
        "source": source,
        "incidentId": incident_id,
        "subject": rendered.subject,
        "text": rendered.text,
        "templateError": rendered.template_error,
        "body": body,
    }
