"""Channel types against REAL receivers: webhook and Slack bodies on a loopback HTTP receiver,
email through a real SMTP server (aiosmtpd) on 127.0.0.1, parsed back."""

from __future__ import annotations

import email
import re
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink
from sqlalchemy.engine import Engine

from tests.alerting.conftest import (
    Clock,
    Receiver,
    add_errors,
    add_rule,
    deliveries,
    incidents,
)
from workbench.alerting.evaluate import evaluate
from workbench.alerting.notify import REFUSED, deliver_due
from workbench.catalog import models as m
from workbench.catalog.db import session_scope

DASH = "http://dash.example"


def add_typed_channel(
    engine: Engine, channel_type: str, target: str, template: str | None = None
) -> m.NotificationChannel:
    ch = m.NotificationChannel(
        type=channel_type, target=target, template=template, name=channel_type
    )
    with session_scope(engine) as s:
        s.add(ch)
    return ch


def page(engine: Engine, lake_url: str, clock: Clock, **rule: Any) -> None:
    """Write a breach with two message patterns and evaluate: one incident, one page."""
    add_rule(engine, **rule)
    add_errors(lake_url, clock.now, 4, message="timeout after 31 ms for user 17")
    add_errors(lake_url, clock.now, 3, message="db <down> & out")
    evaluate(engine=engine, lake_url=lake_url, now=clock.now, dashboard_url=DASH)


# ---------------------------------------------------------------- Slack's documented fields

#: Block Kit (api.slack.com/reference/block-kit/blocks): a section's text object is at
#: most 3000 characters; a context holds at most 10 elements; text objects are
#: ``plain_text`` or ``mrkdwn``; an incoming webhook takes ``text`` and ``blocks``.
SECTION_TEXT_MAX = 3000
CONTEXT_ELEMENTS_MAX = 10
BLOCKS_MAX = 50


def assert_slack_body(body: dict[str, Any]) -> None:
    assert set(body) <= {"text", "blocks"}, body
    assert isinstance(body["text"], str) and body["text"]
    assert 1 <= len(body["blocks"]) <= BLOCKS_MAX
    for block in body["blocks"]:
        assert block["type"] in ("section", "context"), block
        if block["type"] == "section":
            assert set(block) <= {"type", "text", "block_id", "fields", "accessory"}
            assert block["text"]["type"] == "mrkdwn"
            assert 1 <= len(block["text"]["text"]) <= SECTION_TEXT_MAX
        else:
            assert 1 <= len(block["elements"]) <= CONTEXT_ELEMENTS_MAX
            for element in block["elements"]:
                assert element["type"] == "mrkdwn"
                assert 1 <= len(element["text"]) <= SECTION_TEXT_MAX


def test_webhook_body_is_todays_json_plus_evidence_and_template_text(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    add_typed_channel(
        sqlite_engine,
        "webhook",
        receiver.url,
        template="{{ service }} has {{ errorCount }} errors; top: {{ evidence.topPatterns[0].pattern }}",
    )
    page(sqlite_engine, lake_url, clock)
    assert deliver_due(engine=sqlite_engine, now=clock.now, timeout=2).sent == 1
    [body] = receiver.bodies()
    assert body["type"] == "error_alert" and body["errorCount"] == 7
    assert body["text"] == "auth has 7 errors; top: timeout after <num> ms for user <num>"
    assert body["evidence"]["topPatterns"][0]["count"] == 4


def test_slack_body_follows_block_kit_and_escapes_control_characters(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    add_typed_channel(sqlite_engine, "slack", receiver.url)
    page(sqlite_engine, lake_url, clock)
    assert deliver_due(engine=sqlite_engine, now=clock.now, timeout=2).sent == 1
    [req] = receiver.requests
    assert req["headers"]["Content-Type"] == "application/json"
    [body] = receiver.bodies()
    assert_slack_body(body)
    [inc] = incidents(sqlite_engine)
    assert body["text"].startswith("[FIRING] auth: 7 errors in 10 min")
    sections = "\n".join(b["text"]["text"] for b in body["blocks"] if b["type"] == "section")
    assert "db &lt;down&gt; &amp; out" in sections  # Slack's three control characters
    assert "<down>" not in sections
    [context] = [b for b in body["blocks"] if b["type"] == "context"]
    links = context["elements"][0]["text"]
    assert f"<{DASH}/voila/render/incidents.ipynb?incident={inc.id}|Incident>" in links
    assert "|Logs>" in links and "service=auth" in links


def test_slack_section_text_is_cut_to_slacks_limit(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    add_typed_channel(sqlite_engine, "slack", receiver.url, template="{{ 'x' * 5000 }}")
    page(sqlite_engine, lake_url, clock)
    deliver_due(engine=sqlite_engine, now=clock.now, timeout=2)
    [body] = receiver.bodies()
    assert_slack_body(body)
    assert len(body["blocks"][0]["text"]["text"]) <= SECTION_TEXT_MAX


# ---------------------------------------------------------------- email over real SMTP


class Inbox(Sink):
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, str]]:
    """A real SMTP server on 127.0.0.1 (free port) and the WORKBENCH_SMTP_URL pointing at it."""
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{port}?from=alerts@workbench.test&timeout=5"
    finally:
        controller.stop()


def test_email_is_sent_over_smtp_with_text_and_html_parts_and_links(
    sqlite_engine: Engine,
    lake_url: str,
    clock: Clock,
    smtp_server: tuple[Inbox, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, url = smtp_server
    monkeypatch.setenv("WORKBENCH_SMTP_URL", url)
    from workbench.config import get_settings

    get_settings.cache_clear()
    try:
        add_typed_channel(
            sqlite_engine,
            "email",
            "oncall@example.com",
            template="Alert <{{ service }}>: {{ errorCount }} errors\nSee {{ url }}",
        )
        page(sqlite_engine, lake_url, clock)
        report = deliver_due(engine=sqlite_engine, now=clock.now, timeout=2)
    finally:
        get_settings.cache_clear()
    assert (report.sent, report.failed) == (1, 0)
    [msg] = inbox.messages
    assert inbox.envelopes == [("alerts@workbench.test", ["oncall@example.com"])]
    [inc] = incidents(sqlite_engine)
    assert msg["Subject"] == "Alert <auth>: 7 errors"
    assert msg["To"] == "oncall@example.com"
    assert msg["X-Workbench-Event"] == "error_alert"
    [dl] = deliveries(sqlite_engine)
    assert msg["X-Workbench-Delivery"] == str(dl.id)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    text_body, html_body = text.get_content(), html.get_content()
    incident_link = f"{DASH}/voila/render/incidents.ipynb?incident={inc.id}"
    assert incident_link in text_body
    assert "timeout after <num> ms for user <num>" in text_body
    assert f'href="{incident_link}"' in html_body
    logs = re.search(r'href="([^"]*logs\.ipynb[^"]*)"', html_body)
    assert logs is not None and "service=auth" in logs.group(1)
    # The HTML part is autoescaped: the event text cannot inject markup.
    assert "db &lt;down&gt; &amp; out" in html_body and "<down>" not in html_body
    assert "Alert &lt;auth&gt;" in html_body


def test_email_without_smtp_setting_fails_at_once_naming_it(
    sqlite_engine: Engine, lake_url: str, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKBENCH_SMTP_URL", raising=False)
    from workbench.config import get_settings

    get_settings.cache_clear()
    try:
        add_typed_channel(sqlite_engine, "email", "oncall@example.com")
        page(sqlite_engine, lake_url, clock)
        report = deliver_due(engine=sqlite_engine, now=clock.now, timeout=2)
    finally:
        get_settings.cache_clear()
    assert (report.sent, report.failed) == (0, 1)
    [dl] = deliveries(sqlite_engine)
    assert dl.status == "failed"
    assert dl.last_error == f"{REFUSED}WORKBENCH_SMTP_URL is not set"


def test_a_template_failing_at_send_time_still_pages_with_the_default_text(
    sqlite_engine: Engine, lake_url: str, clock: Clock, receiver: Receiver
) -> None:
    # Compiles, but the sandbox refuses the attribute walk when rendering.
    add_typed_channel(sqlite_engine, "slack", receiver.url, template="{{ ''.__class__.__mro__ }}")
    page(sqlite_engine, lake_url, clock)
    assert deliver_due(engine=sqlite_engine, now=clock.now, timeout=2).sent == 1
    [body] = receiver.bodies()
    assert body["text"].startswith("[FIRING] auth")
    assert "template failed" in body["text"]
    assert "object" not in body["text"].split("template failed")[0]
