"""Webhook payloads and their HMAC signature. Pure: plain data in, plain data out.

The payload keeps the original system's keys exactly (``type``, ``service``,
``errorCount``, ``windowMinutes``, ``triggeredAt``, ``incidentId``) and adds
``ruleId``, ``threshold``, ``status``, ``severity``, ``url`` (the dashboard page
of the incident) and ``reportUrl`` (its investigation report, once one was written
by ``workbench investigate``; else null). Firing and reopened notifications add
``evidence`` (top patterns, newest events, links: :mod:`workbench.alerting.evidence`);
resolved ones add ``reason`` (auto-resolved, resolved by a person, rule deleted or changed).

Signature: ``X-Workbench-Signature: sha256=<hex>`` where ``hex`` is
HMAC-SHA256(secret, f"{timestamp}.{body}") and ``timestamp`` is the value of the
``X-Workbench-Timestamp`` header (Unix seconds at send time, not the tick's minute,
see :mod:`workbench.alerting.notify`). Receivers recompute it over the
raw body and compare in constant time; rejecting old timestamps stops replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

SIGNATURE_HEADER = "X-Workbench-Signature"
TIMESTAMP_HEADER = "X-Workbench-Timestamp"
EVENT_HEADER = "X-Workbench-Event"
DELIVERY_HEADER = "X-Workbench-Delivery"

TEST = "test"
ORIGINAL_KEYS: tuple[str, ...] = (
    "type",
    "service",
    "errorCount",
    "windowMinutes",
    "triggeredAt",
    "incidentId",
)
EXTRA_KEYS: tuple[str, ...] = ("ruleId", "threshold", "status", "severity", "url", "reportUrl")


def iso_z(moment: datetime) -> str:
    """Return ``moment`` as ISO 8601 UTC with milliseconds and ``Z``, like the original."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: attach a timezone")
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def incident_url(dashboard_url: str, incident_id: object) -> str:
    """Return the dashboard link to one incident."""
    return f"{dashboard_url.rstrip('/')}/voila/render/incidents.ipynb?incident={incident_id}"


def build_payload(
    *,
    event_type: str,
    service: str,
    error_count: int,
    window_minutes: int,
    triggered_at: datetime,
    incident_id: object | None,
    rule_id: object | None,
    threshold: int,
    status: str,
    severity: str,
    dashboard_url: str,
    report_url: str | None = None,
    reason: str | None = None,
    evidence: dict[str, Any] | None = None,
    kind: str = "threshold",
    observed_value: float | None = None,
    baseline_value: float | None = None,
) -> dict[str, Any]:
    """Return the webhook JSON object for one notification (ids rendered as strings).

    ``reason`` (why it resolved) and ``evidence`` (:mod:`workbench.alerting.evidence`)
    are added only when given: resolved notifications carry a reason, firing ones evidence.
    Rules of another kind than ``threshold`` add ``kind``, ``observedValue`` and
    ``baselineValue`` (``docs/alerting.md``, "Rule kinds"); threshold payloads are unchanged.
    """
    body: dict[str, Any] = {
        "type": event_type,
        "service": service,
        "errorCount": error_count,
        "windowMinutes": window_minutes,
        "triggeredAt": iso_z(triggered_at),
        "incidentId": None if incident_id is None else str(incident_id),
        "ruleId": None if rule_id is None else str(rule_id),
        "threshold": threshold,
        "status": status,
        "severity": severity,
        "url": (
            incident_url(dashboard_url, incident_id)
            if incident_id is not None
            else dashboard_url.rstrip("/")
        ),
        "reportUrl": report_url,
    }
    if reason is not None:
        body["reason"] = reason
    if evidence is not None:
        body["evidence"] = evidence
    if kind != "threshold":
        body.update(kind=kind, observedValue=observed_value, baselineValue=baseline_value)
    return body


def incident_payload(
    incident: Any, *, event_type: str, status: str, dashboard_url: str, reason: str | None = None
) -> dict[str, Any]:
    """Return the payload about a stored incident (an ``AlertIncident`` row) as it stands.

    Used where a notification is built from the catalog alone: a manual resolve, and
    the channel preview when nothing was sent yet.
    """
    kind = getattr(incident, "kind", None) or "threshold"
    return build_payload(
        event_type=event_type,
        service=incident.service,
        error_count=incident.error_count,
        window_minutes=incident.window_minutes,
        triggered_at=incident.triggered_at,
        incident_id=incident.id,
        rule_id=incident.rule_id,
        threshold=incident.threshold,
        status=status,
        severity=incident.severity,
        dashboard_url=dashboard_url,
        reason=reason,
        kind=kind,
        baseline_value=getattr(incident, "baseline_value", None),
        observed_value=getattr(incident, "observed_value", None),
    )


def build_test_payload(*, channel_name: str, now: datetime, dashboard_url: str) -> dict[str, Any]:
    """Return the payload of a "send test" notification (no incident behind it)."""
    return build_payload(
        event_type=TEST,
        service=channel_name or "workbench",
        error_count=0,
        window_minutes=0,
        triggered_at=now,
        incident_id=None,
        rule_id=None,
        threshold=0,
        status="test",
        severity="info",
        dashboard_url=dashboard_url,
    )


def encode(payload: dict[str, Any]) -> bytes:
    """Return the exact bytes sent (and signed): compact JSON, UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: str | int, body: bytes | str) -> str:
    """Return the hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    raw = body if isinstance(body, bytes) else body.encode()
    message = f"{timestamp}.".encode() + raw
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Return True when ``header`` (``sha256=<hex>``) is the signature of ``body`` at ``timestamp``."""
    expected = "sha256=" + sign(secret, timestamp, body)
    return hmac.compare_digest(expected, header)


def signed_headers(secret: str | None, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the HTTP headers for ``body``: content type, timestamp, and the signature if a secret is set."""
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: str(timestamp)}
    if secret:
        headers[SIGNATURE_HEADER] = "sha256=" + sign(secret, timestamp, body)
    return headers
