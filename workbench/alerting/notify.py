"""The notifier: sends the webhook outbox (``notification_deliveries``) with timeouts and retries.

The evaluator writes a ``pending`` :class:`~workbench.catalog.models.Delivery` in the
same transaction as the incident change; :func:`deliver_due` sends what is due:

* claim: a conditional UPDATE pushes ``next_attempt_at`` forward by a lease
  (``WHERE id = ? AND status = 'pending' AND next_attempt_at <= now``); only the
  sender whose UPDATE matched sends, so two senders never send the same row at once;
* send: by channel type (:mod:`workbench.alerting.messages`): ``webhook`` POSTs the
  stored JSON payload (plus ``text`` when the channel has a template), ``slack`` a
  Slack incoming-webhook body built from it, ``email`` an SMTP message to the
  address (``WORKBENCH_SMTP_URL``, :mod:`workbench.smtp`; unset -> the row
  fails at once, ``refused: WORKBENCH_SMTP_URL is not set``). HTTP sends have a
  timeout and are signed when the channel has a secret (see :mod:`workbench.catalog.payload`), several rows in parallel so
  one slow receiver does not hold up the others; the signature's timestamp is the
  moment of sending (``clock``, the wall clock by default), not the tick's ``now``,
  so a re-run of an old minute passes the receiver's own age check;
* a row whose channel was disabled or deleted after it was queued -> ``failed``, not sent;
* webhook safety (``docs/security.md``): the target is checked again right before
  each send (:func:`~workbench.catalog.webhook_targets.check_webhook_target`; a refused
  target -> ``failed`` with ``refused: <reason>``, never retried); redirects are never
  followed (a 3xx is a failed attempt); at most ``WORKBENCH_WEBHOOK_MAX_RESPONSE_BYTES``
  of an answer are read; with private targets disallowed the connection goes through
  :func:`~workbench.security.webhooks.public_only_transport` (no DNS-rebinding gap,
  no proxy from the environment);
* record: 2xx -> ``sent`` (plus a ``notified`` incident event); anything else ->
  ``attempts + 1`` and the next try after a backoff (10 s, 30 s, 1 min, 2 min, 5 min,
  10 min, 20 min, 30 min, then hourly); after ``MAX_ATTEMPTS`` tries or ``HORIZON``
  since the row was written -> ``failed`` (plus a ``notify_failed`` event).

A crash after the commit and before the send loses nothing: the row is still
``pending`` and the next call sends it. A crash after the send and before the
record sends it again once the lease ends: delivery is at-least-once, and
receivers dedupe on the ``X-Workbench-Delivery`` header (the delivery id).
"""

from __future__ import annotations

import logging
import smtplib
import socket
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench.alerting import messages
from workbench.catalog import models as m
from workbench.catalog.db import session_scope
from workbench.catalog.payload import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    build_test_payload,
    encode,
    signed_headers,
)
from workbench.catalog.webhook_targets import check_webhook_target
from workbench.clock import now as clock_now
from workbench.errors import ValidationError
from workbench.security.webhooks import public_only_transport, read_bounded
from workbench.smtp import SETTING as SMTP_SETTING
from workbench.smtp import parse_smtp_url, send_email

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], datetime]


BACKOFF_S: tuple[int, ...] = (10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
MAX_ATTEMPTS = 12
HORIZON = timedelta(hours=24)
LEASE = timedelta(minutes=2)
WORKERS = 8
USER_AGENT = "log-workbench-notifier/0.1"
CHANNEL_DELETED = "channel deleted"
CHANNEL_DISABLED = "channel disabled"
REFUSED = "refused: "  # prefix of the last error when the target itself is not allowed

DELIVERIES: sa.Table = m.Delivery.__table__  # type: ignore[attr-defined]
EVENTS: sa.Table = m.IncidentEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one POST: the HTTP status (None if no answer) and the error text.

    ``final``: retrying cannot help (the target is refused), so the row fails now.
    """

    delivery_id: uuid.UUID
    ok: bool
    response_code: int | None
    error: str | None
    final: bool = False


@dataclass(slots=True)
class DeliveryReport:
    """What one :func:`deliver_due` call did: rows claimed, sent, rescheduled, given up."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    attempts: list[Attempt] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """Return the wait before the next try after ``attempts`` failed tries (>= 1)."""
    return timedelta(seconds=BACKOFF_S[min(max(attempts, 1), len(BACKOFF_S)) - 1])


def _or_setting(value: T | None, name: str) -> T:
    """Return ``value``, or the process's setting ``name`` when it is None."""
    if value is not None:
        return value
    from workbench.config import get_settings

    return cast(T, getattr(get_settings(), name))


def webhook_client(*, timeout: float, allow_private: bool) -> httpx.Client:
    """Return the HTTP client the notifier sends with: no redirects, public-only when required.

    With private targets disallowed, connections go through
    :func:`~workbench.security.webhooks.public_only_transport` (every resolved
    address checked at connect time) and ignore proxies from the environment
    (``trust_env=False``: a proxy would connect on our behalf, unchecked).
    """
    if allow_private:
        return httpx.Client(timeout=timeout, follow_redirects=False)
    return httpx.Client(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        transport=public_only_transport(),
    )


def post(
    client: httpx.Client,
    *,
    url: str,
    payload: dict[str, Any],
    secret: str | None,
    now: datetime,
    delivery_id: uuid.UUID,
    timeout: float,
    allow_private: bool | None = None,
    max_response_bytes: int | None = None,
    clock: Clock = clock_now,
    event_type: str | None = None,
) -> Attempt:
    """POST one payload (signed if ``secret``) and return how it went; never raises for HTTP.

    The target is checked first (``allow_private`` defaults to
    ``WORKBENCH_ALLOW_PRIVATE_WEBHOOKS``): a refused one is a final failed attempt,
    nothing is sent. Redirects are not followed, whatever ``client`` says, and at
    most ``max_response_bytes`` (default ``WORKBENCH_WEBHOOK_MAX_RESPONSE_BYTES``) of
    the answer are read, for at most about ``timeout`` seconds. ``now`` is the
    tick's time; the signature's timestamp is ``clock()``, read right before sending.
    """
    try:
        check_webhook_target(
            url,
            allow_private=_or_setting(allow_private, "allow_private_webhooks"),
            resolver=socket.getaddrinfo,
        )
    except ValidationError as exc:
        reason = "; ".join(exc.details.get("target", [])) or exc.message
        return Attempt(delivery_id, False, None, f"{REFUSED}{reason}"[:2000], final=True)
    body = encode(payload)
    # Signed at send time: a receiver rejects old timestamps, and the tick may be old.
    headers = signed_headers(secret, int(clock().timestamp()), body)
    headers[EVENT_HEADER] = event_type or str(payload.get("type", ""))
    headers[DELIVERY_HEADER] = str(delivery_id)
    headers["User-Agent"] = USER_AGENT
    limit = _or_setting(max_response_bytes, "webhook_max_response_bytes")
    try:
        with client.stream(
            "POST", url, content=body, headers=headers, timeout=timeout, follow_redirects=False
        ) as response:
            code = response.status_code
            location = response.headers.get("location", "")
            # Read (a bounded part of) the answer even on success: a huge or endless
            # answer costs at most ``limit`` bytes and about ``timeout`` seconds.
            answer = read_bounded(response, limit, max_seconds=timeout)
    except httpx.HTTPError as exc:
        return Attempt(delivery_id, False, None, f"{type(exc).__name__}: {exc}"[:2000])
    if 200 <= code < 300:
        return Attempt(delivery_id, True, code, None)
    if 300 <= code < 400:
        # Its Location was never checked: following it could reach an internal address.
        error = f"HTTP {code}: redirect to {location[:300]!r} not followed"
        return Attempt(delivery_id, False, code, error[:2000])
    text = answer[:300].decode("utf-8", errors="replace")
    return Attempt(delivery_id, False, code, f"HTTP {code}: {text}"[:2000])


def send_email_attempt(
    *,
    channel: m.NotificationChannel,
    recipient: str,
    payload: dict[str, Any],
    delivery_id: uuid.UUID,
    now: datetime,
    smtp_url: str | None = None,
) -> Attempt:
    """Send ``payload`` as an email to ``recipient`` and return how it went; never raises.

    ``smtp_url`` defaults to ``WORKBENCH_SMTP_URL``; unset or unusable is a final failure.
    """
    url: str = _or_setting(smtp_url, "smtp_url")
    if not url:
        return Attempt(delivery_id, False, None, f"{REFUSED}{SMTP_SETTING} is not set", final=True)
    try:
        settings = parse_smtp_url(url)
    except ValidationError as exc:
        return Attempt(delivery_id, False, None, f"{REFUSED}{exc.details}"[:2000], final=True)
    message = messages.email_message(
        payload,
        channel.template,
        sender=settings.sender,
        recipient=recipient,
        now=now,
        delivery_id=str(delivery_id),
    )
    try:
        send_email(settings, message)
    except smtplib.SMTPRecipientsRefused as exc:
        return Attempt(
            delivery_id, False, None, f"recipient refused: {exc.recipients}"[:2000], True
        )
    except (smtplib.SMTPException, OSError) as exc:
        code = getattr(exc, "smtp_code", None)
        return Attempt(delivery_id, False, code, f"{type(exc).__name__}: {exc}"[:2000])
    return Attempt(delivery_id, True, 250, None)


def send_to_channel(
    client: httpx.Client,
    *,
    channel: m.NotificationChannel,
    url: str,
    payload: dict[str, Any],
    now: datetime,
    delivery_id: uuid.UUID,
    timeout: float,
    allow_private: bool | None = None,
    max_response_bytes: int | None = None,
    clock: Clock = clock_now,
    smtp_url: str | None = None,
) -> Attempt:
    """Send the stored ``payload`` the way ``channel``'s type needs; return how it went.

    ``url`` is the target recorded on the delivery (a URL, or the address for email).
    """
    if channel.type == "email":
        return send_email_attempt(
            channel=channel,
            recipient=url,
            payload=payload,
            delivery_id=delivery_id,
            now=now,
            smtp_url=smtp_url,
        )
    if channel.type == "slack":
        body = messages.slack_body(payload, channel.template)
    else:
        body = messages.webhook_body(payload, channel.template)
    return post(
        client,
        url=url,
        payload=body,
        secret=channel.secret,
        now=now,
        delivery_id=delivery_id,
        timeout=timeout,
        allow_private=allow_private,
        max_response_bytes=max_response_bytes,
        clock=clock,
        event_type=str(payload.get("type", "")),
    )


def _claim(engine: Engine, now: datetime, limit: int) -> list[uuid.UUID]:
    """Lease up to ``limit`` due rows to this sender in one conditional UPDATE; return their ids.

    The WHERE is re-checked on each row under its write lock (PostgreSQL) or the
    database write lock (SQLite), so a row leased by a concurrent sender (its
    ``next_attempt_at`` moved forward) is skipped here: never sent twice at once.
    """
    tbl = DELIVERIES.c
    due = (
        sa.select(tbl.id)
        .where(tbl.status == "pending", tbl.next_attempt_at <= now)
        .order_by(tbl.next_attempt_at)
        .limit(limit)
        .scalar_subquery()
    )
    stmt = (
        sa.update(DELIVERIES)
        .where(tbl.id.in_(due), tbl.status == "pending", tbl.next_attempt_at <= now)
        .values(next_attempt_at=now + LEASE)
        .returning(tbl.id)
    )
    with session_scope(engine) as s:
        return list(s.connection().execute(stmt).scalars().all())


def deliver_due(
    *,
    engine: Engine,
    now: datetime,
    client: httpx.Client | None = None,
    limit: int = 100,
    timeout: float | None = None,
    allow_private: bool | None = None,
    clock: Clock = clock_now,
) -> DeliveryReport:
    """Send the pending deliveries due at ``now`` (at most ``limit``); return what happened.

    ``allow_private`` defaults to ``WORKBENCH_ALLOW_PRIVATE_WEBHOOKS``; ``client`` is
    the seam tests use (the notifier's own client is :func:`webhook_client`);
    ``clock`` gives the signing time of each request (:func:`workbench.clock.now`,
    whatever tick queued it).
    """
    now = now.astimezone(UTC)
    report = DeliveryReport()
    claimed = _claim(engine, now, limit)
    report.claimed = len(claimed)
    if not claimed:
        return report
    with Session(engine) as s:
        rows = list(s.exec(select(m.Delivery).where(col(m.Delivery.id).in_(claimed))).all())
        channel_ids = {r.channel_id for r in rows if r.channel_id is not None}
        channels = {
            c.id: c
            for c in s.exec(
                select(m.NotificationChannel).where(col(m.NotificationChannel.id).in_(channel_ids))
            ).all()
        }
    seconds: float = _or_setting(timeout, "webhook_timeout_s")
    private = _or_setting(allow_private, "allow_private_webhooks")
    max_bytes: int = _or_setting(None, "webhook_max_response_bytes")
    own = client is None
    http = client or webhook_client(timeout=seconds, allow_private=private)
    try:
        jobs = []
        attempts: list[Attempt] = []
        for row in rows:
            ch = channels.get(row.channel_id) if row.channel_id is not None else None
            if ch is None or not ch.enabled:
                # Deleted or disabled after the row was queued: the user asked for silence.
                reason = CHANNEL_DELETED if ch is None else CHANNEL_DISABLED
                attempts.append(Attempt(row.id, False, None, reason))
                continue
            jobs.append((row, ch))
        with ThreadPoolExecutor(max_workers=min(WORKERS, max(len(jobs), 1))) as pool:
            attempts += list(
                pool.map(
                    lambda job: send_to_channel(
                        http,
                        channel=job[1],
                        url=job[0].url,
                        payload=job[0].payload,
                        now=now,
                        delivery_id=job[0].id,
                        timeout=seconds,
                        allow_private=private,
                        max_response_bytes=max_bytes,
                        clock=clock,
                    ),
                    jobs,
                )
            )
    finally:
        if own:
            http.close()
    by_id = {r.id: r for r in rows}
    with session_scope(engine) as s:  # one transaction for all outcomes of this batch
        for attempt in attempts:
            status = _record(s, by_id[attempt.delivery_id], attempt, now)
            report.attempts.append(attempt)
            if status == "sent":
                report.sent += 1
            elif status == "failed":
                report.failed += 1
            else:
                report.retrying += 1
    return report


def _record(s: Session, row: m.Delivery, attempt: Attempt, now: datetime) -> str:
    """Stage one attempt's outcome in ``s``; return the row's new status."""
    tries = row.attempts + 1
    values: dict[str, Any] = {
        "attempts": tries,
        "response_code": attempt.response_code,
        "last_error": attempt.error,
    }
    event: tuple[str, dict[str, Any]] | None = None
    detail = {
        "delivery_id": str(row.id),
        "channel_id": str(row.channel_id) if row.channel_id else None,
        "type": row.event_type,
        "attempts": tries,
        "response_code": attempt.response_code,
    }
    if attempt.ok:
        status = "sent"
        values.update(status=status, sent_at=now)
        event = ("notified", detail)
    elif (
        attempt.final
        or tries >= MAX_ATTEMPTS
        or now - row.created_at >= HORIZON
        or attempt.error in (CHANNEL_DELETED, CHANNEL_DISABLED)
    ):
        status = "failed"
        values.update(status=status)
        event = ("notify_failed", {**detail, "error": attempt.error})
    else:
        status = "pending"
        values.update(next_attempt_at=now + backoff(tries))
    conn = s.connection()
    conn.execute(sa.update(DELIVERIES).where(DELIVERIES.c.id == row.id).values(**values))
    if event is not None and row.incident_id is not None:
        conn.execute(
            sa.insert(EVENTS).values(
                id=uuid.uuid4(),
                incident_id=row.incident_id,
                at=now,
                kind=event[0],
                actor="notifier",
                data=event[1],
            )
        )
    if status != "sent":
        log.info("delivery %s to %s: %s (%s)", row.id, row.url, status, attempt.error)
    return status


def send_test(
    *,
    session: Session,
    channel: m.NotificationChannel,
    now: datetime,
    dashboard_url: str,
    client: httpx.Client | None = None,
    allow_private: bool | None = None,
    clock: Clock = clock_now,
) -> m.Delivery:
    """Send a ``test`` notification to ``channel`` now, record it (committed) and return the row.

    Test sends are not retried: the row is ``sent`` or ``failed`` with the error,
    so the person who pressed "send test" sees the answer at once. The target is
    checked as for every send (``allow_private`` defaults to the settings).
    """
    now = now.astimezone(UTC)
    payload = build_test_payload(channel_name=channel.name, now=now, dashboard_url=dashboard_url)
    delivery = m.Delivery(
        channel_id=channel.id,
        event_type="test",
        url=channel.target,
        payload=payload,
        status="pending",
        next_attempt_at=now,
        created_at=now,
    )
    seconds: float = _or_setting(None, "webhook_timeout_s")
    private = _or_setting(allow_private, "allow_private_webhooks")
    own = client is None
    http = client or webhook_client(timeout=seconds, allow_private=private)
    try:
        attempt = send_to_channel(
            http,
            channel=channel,
            url=channel.target,
            payload=payload,
            now=now,
            delivery_id=delivery.id,
            timeout=seconds,
            allow_private=private,
            clock=clock,
        )
    finally:
        if own:
            http.close()
    delivery.attempts = 1
    delivery.response_code = attempt.response_code
    delivery.last_error = attempt.error
    delivery.status = "sent" if attempt.ok else "failed"
    delivery.sent_at = now if attempt.ok else None
    session.add(delivery)
    session.commit()
    session.refresh(delivery)
    return delivery


def pending_count(session: Session) -> int:
    """Return how many deliveries wait to be sent (for health displays)."""
    return int(
        session.exec(
            select(sa.func.count())
            .select_from(m.Delivery)
            .where(col(m.Delivery.status) == "pending")
        ).one()
    )


__all__: Sequence[str] = [
    "Attempt",
    "DeliveryReport",
    "backoff",
    "deliver_due",
    "pending_count",
    "send_email_attempt",
    "send_test",
    "send_to_channel",
    "webhook_client",
]
