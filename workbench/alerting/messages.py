"""What each channel type receives, built from one notification payload. Pure: data in, data out.

The outbox stores one payload per delivery (:mod:`workbench.catalog.payload`);
right before sending, the notifier turns it into the channel type's body:

* ``webhook``: the payload itself (plus ``text`` when the channel has a template);
* ``slack``: a Slack incoming-webhook body, ``text`` (the notification text, also
  the fallback for clients without blocks) and ``blocks``: a ``section`` with the
  text, a ``section`` per evidence part (top patterns, newest events) and a
  ``context`` with the links; every text object is ``mrkdwn``, each section text at
  most :data:`SLACK_SECTION_CHARS` (Slack's limit is 3000). Mattermost and
  Rocket.Chat accept the same body;
* ``email``: an :class:`email.message.EmailMessage` with a text and an HTML part
  (the HTML autoescaped), both with the incident and Logs links; the subject is the
  first line of the text.

The text is the channel's template rendered over the payload
(:mod:`workbench.catalog.templates`) or, without one, :func:`default_text`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from workbench.catalog import templates

SLACK_SECTION_CHARS = 3000
SLACK_CONTEXT_CHARS = 2000
SUBJECT_CHARS = 200
CHANNEL_TYPES: tuple[str, ...] = ("webhook", "slack", "email")

_HEADLINES = {
    "error_alert": "FIRING",
    "error_alert_reopened": "REOPENED",
    "error_alert_repeat": "REPEAT",
    "error_alert_resolved": "RESOLVED",
    "test": "TEST",
}


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notification as a channel shows it: subject line, text, and a template error if any."""

    subject: str
    text: str
    template_error: str | None = None


def default_text(payload: dict[str, Any]) -> str:
    """Return the text of a notification without a template: a headline, then the link."""
    kind = str(payload.get("type", ""))
    head = _HEADLINES.get(kind, kind.upper() or "NOTICE")
    service = payload.get("service", "")
    if kind == "test":
        line = f"[{head}] Test notification from Log Workbench ({service})"
    elif kind == "error_alert_resolved":
        why = payload.get("reason") or "resolved"
        line = f"[{head}] {service}: {why}"
    else:
        line = (
            f"[{head}] {service}: {payload.get('errorCount', 0)} errors in "
            f"{payload.get('windowMinutes', 0)} min (threshold {payload.get('threshold', 0)}, "
            f"{payload.get('severity', '')})"
        )
    return f"{line}\n{payload.get('url', '')}".rstrip()


def render(template: str | None, payload: dict[str, Any]) -> Rendered:
    """Return the subject and text of ``payload`` for a channel with ``template`` (or none)."""
    text, error = templates.render_or_none(template, payload)
    if text is None or not text.strip():
        text = default_text(payload)
        if error:
            text += f"\n(template failed: {error})"
    first = text.strip().splitlines()[0] if text.strip() else default_text(payload)
    return Rendered(
        subject=templates.bound(" ".join(first.split()), SUBJECT_CHARS),
        text=text,
        template_error=error,
    )


def webhook_body(payload: dict[str, Any], template: str | None) -> dict[str, Any]:
    """Return the webhook JSON: the payload, plus ``text`` when the channel has a template."""
    if not template:
        return payload
    return {**payload, "text": render(template, payload).text}


def _mrkdwn_escape(text: str) -> str:
    """Return ``text`` with Slack's three control characters escaped (``&``, ``<``, ``>``)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": templates.bound(text, SLACK_SECTION_CHARS)},
    }


def slack_body(payload: dict[str, Any], template: str | None) -> dict[str, Any]:
    """Return the Slack incoming-webhook body (``text`` + ``blocks``) of ``payload``."""
    rendered = render(template, payload)
    text = _mrkdwn_escape(rendered.text)
    blocks: list[dict[str, Any]] = [_section(text)]
    evidence = payload.get("evidence") or {}
    patterns = evidence.get("topPatterns") or []
    if patterns:
        lines = [f"• {p['count']}× `{_mrkdwn_escape(str(p['pattern']))[:300]}`" for p in patterns]
        blocks.append(_section("*Top patterns*\n" + "\n".join(lines)))
    sample = evidence.get("sample") or []
    if sample:
        lines = [
            f"{e['timestamp']} {e['level']} {_mrkdwn_escape(str(e['message']))[:250]}"
            for e in sample
        ]
        body = "\n".join(lines).replace("```", "'''")
        blocks.append(_section(templates.bound("*Newest events*\n```" + body, 2990) + "```"))
    links = [("Incident", payload.get("url"))]
    if evidence.get("logsUrl"):
        links.append(("Logs", evidence["logsUrl"]))
    elements = [
        {
            "type": "mrkdwn",
            "text": templates.bound(
                " · ".join(f"<{url}|{label}>" for label, url in links if url), SLACK_CONTEXT_CHARS
            ),
        }
    ]
    if any(url for _, url in links):
        blocks.append({"type": "context", "elements": elements})
    return {"text": templates.bound(text, SLACK_SECTION_CHARS), "blocks": blocks}


_HTML = """\
<html><body>
<p>{{ headline }}</p>
{% if reason %}<p>Reason: {{ reason }}</p>{% endif %}
{% if patterns %}<h3>Top patterns</h3><ul>
{% for p in patterns %}<li>{{ p.count }}&times; <code>{{ p.pattern }}</code><br>e.g. {{ p.example }}</li>
{% endfor %}</ul>{% endif %}
{% if sample %}<h3>Newest events</h3><ul>
{% for e in sample %}<li><code>{{ e.timestamp }} {{ e.level }}</code> {{ e.message }}</li>
{% endfor %}</ul>{% endif %}
<p>{% for label, url in links %}<a href="{{ url }}">{{ label }}</a> {% endfor %}</p>
</body></html>
"""


def _email_text(rendered: Rendered, payload: dict[str, Any]) -> str:
    evidence = payload.get("evidence") or {}
    parts = [rendered.text]
    patterns = evidence.get("topPatterns") or []
    if patterns:
        parts.append("Top patterns:")
        parts += [f"  {p['count']}x {p['pattern']}  (e.g. {p['example']})" for p in patterns]
    sample = evidence.get("sample") or []
    if sample:
        parts.append("Newest events:")
        parts += [f"  {e['timestamp']} {e['level']} {e['message']}" for e in sample]
    for label, url in _links(payload):
        parts.append(f"{label}: {url}")
    return "\n".join(parts) + "\n"


def _links(payload: dict[str, Any]) -> list[tuple[str, str]]:
    evidence = payload.get("evidence") or {}
    out = []
    if payload.get("url"):
        out.append(("Incident", str(evidence.get("dashboardUrl") or payload["url"])))
    if evidence.get("logsUrl"):
        out.append(("Logs", str(evidence["logsUrl"])))
    return out


def email_message(
    payload: dict[str, Any],
    template: str | None,
    *,
    sender: str,
    recipient: str,
    now: datetime,
    delivery_id: str,
) -> EmailMessage:
    """Return the email of ``payload``: subject, a text part and an HTML part with the links."""
    rendered = render(template, payload)
    evidence = payload.get("evidence") or {}
    msg = EmailMessage()
    msg["Subject"] = rendered.subject
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid(domain="log-workbench")
    msg["X-Workbench-Delivery"] = delivery_id
    msg["X-Workbench-Event"] = str(payload.get("type", ""))
    msg.set_content(_email_text(rendered, payload))
    html = templates.environment(html=True).from_string(_HTML)
    msg.add_alternative(
        html.render(
            headline=rendered.text,
            reason=payload.get("reason"),
            patterns=evidence.get("topPatterns") or [],
            sample=evidence.get("sample") or [],
            links=_links(payload),
        ),
        subtype="html",
    )
    return msg
