"""Email delivery over SMTP (standard library ``smtplib``), configured by ``WORKBENCH_SMTP_URL``.

``smtp://user:pass@host:587?starttls=true&from=alerts@example.com``: host and port
(default 25; ``smtps://`` is implicit TLS, default port 465), optional login,
``starttls=true`` to upgrade the connection, ``from`` the sender address (default
``log-workbench@<host>``), ``timeout`` seconds (default 10).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from workbench.errors import ValidationError

SETTING = "WORKBENCH_SMTP_URL"
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to send email, parsed from the SMTP URL."""

    host: str
    port: int
    username: str | None
    password: str | None
    starttls: bool
    implicit_tls: bool
    sender: str
    timeout: float


def parse_smtp_url(url: str) -> SmtpSettings:
    """Return the settings of ``url``; ValidationError naming the setting if it is not usable."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValidationError(
            "Invalid SMTP URL",
            {SETTING: ["must look like smtp://user:pass@host:587?starttls=true"]},
        )
    try:
        port = parts.port or (465 if scheme == "smtps" else 25)
    except ValueError as exc:
        raise ValidationError("Invalid SMTP URL", {SETTING: [str(exc)]}) from None
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return SmtpSettings(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        starttls=query.get("starttls", "").lower() in _TRUE,
        implicit_tls=scheme == "smtps",
        sender=query.get("from") or f"log-workbench@{parts.hostname}",
        timeout=float(query.get("timeout") or 10),
    )


def send_email(settings: SmtpSettings, message: EmailMessage) -> None:
    """Send ``message``; raises :class:`smtplib.SMTPException` or :class:`OSError` on failure."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.implicit_tls:
        smtp = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with smtp:
        if settings.starttls:
            smtp.starttls(context=context)
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)
