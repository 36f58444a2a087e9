"""Pure parts of the channel types: sandboxed templates, their bounds, message bodies, SMTP URLs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.alerting import messages
from workbench.catalog import templates
from workbench.errors import ValidationError
from workbench.smtp import parse_smtp_url

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
PAYLOAD: dict[str, Any] = {
    "type": "error_alert",
    "service": "auth",
    "errorCount": 7,
    "windowMinutes": 10,
    "threshold": 5,
    "severity": "critical",
    "url": "http://d/voila/render/incidents.ipynb?incident=1",
}


def test_syntax_error_names_template_and_line() -> None:
    with pytest.raises(ValidationError) as err:
        templates.check_template("first\nsecond\n{{ service ")
    [message] = err.value.details["template"]
    assert message.startswith("line 3:")


def test_too_long_template_is_refused() -> None:
    with pytest.raises(ValidationError) as err:
        templates.check_template("x" * (templates.MAX_TEMPLATE_CHARS + 1))
    assert "template" in err.value.details


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ payload.__class__ }}{{ cycler.__init__.__globals__ }}",
        "{{ 'x' * 10**10 }}",
        "{{ [1] * 1000000 }}",
        "{{ 10 ** 100000 }}",
        "{% for i in range(10**7) %}{% endfor %}",
    ],
)
def test_sandbox_refuses_escapes_and_huge_values(source: str) -> None:
    text, error = templates.render_or_none(source, PAYLOAD)
    if text is not None:  # some escapes render as empty (undefined), never as internals
        assert "class" not in text and "function" not in text
    else:
        assert error


def test_output_is_bounded_and_rendering_stops_early() -> None:
    source = "{% for i in range(100000) %}{% for j in range(100000) %}ab{% endfor %}{% endfor %}"
    text = templates.render(source, PAYLOAD)
    assert len(text) == templates.MAX_OUTPUT_CHARS and text.endswith("…")


def test_html_environment_autoescapes() -> None:
    assert templates.render("{{ v }}", {"v": "<b>&"}, html=True) == "&lt;b&gt;&amp;"
    assert templates.render("{{ v }}", {"v": "<b>&"}) == "<b>&"


def test_default_texts() -> None:
    assert messages.default_text(PAYLOAD) == (
        "[FIRING] auth: 7 errors in 10 min (threshold 5, critical)\n" + PAYLOAD["url"]
    )
    resolved = {**PAYLOAD, "type": "error_alert_resolved", "reason": "rule deleted"}
    assert messages.default_text(resolved).startswith("[RESOLVED] auth: rule deleted")


def test_subject_is_the_first_line_on_one_line() -> None:
    rendered = messages.render("  {{ service }}\tdown  \nbody", PAYLOAD)
    assert rendered.subject == "auth down"
    assert rendered.text.endswith("body")


def test_slack_blocks_stay_within_limits_with_huge_evidence() -> None:
    evidence = {
        "topPatterns": [{"pattern": "p" * 600, "count": 9, "example": "e"}] * 5,
        "sample": [{"timestamp": "t", "level": "error", "message": "```" + "m" * 600, "meta": None}]
        * 10,
        "logsUrl": "http://d/logs",
        "dashboardUrl": "http://d/i",
    }
    body = messages.slack_body({**PAYLOAD, "evidence": evidence}, "{{ 'x' * 9000 }}")
    for block in body["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= messages.SLACK_SECTION_CHARS
    newest = body["blocks"][2]["text"]["text"]
    assert newest.endswith("```") and newest.count("```") == 2  # the message's fence is defused


def test_webhook_body_adds_text_only_with_a_template() -> None:
    assert messages.webhook_body(PAYLOAD, None) is PAYLOAD
    assert messages.webhook_body(PAYLOAD, "{{ service }}")["text"] == "auth"


def test_email_message_has_both_parts() -> None:
    msg = messages.email_message(
        PAYLOAD, None, sender="a@x.io", recipient="b@y.io", now=NOW, delivery_id="d1"
    )
    assert msg["Subject"].startswith("[FIRING] auth")
    assert msg.get_body(preferencelist=("plain",)) is not None
    html = msg.get_body(preferencelist=("html",))
    assert html is not None and f'href="{PAYLOAD["url"]}"' in html.get_content()


def test_smtp_url_parsing() -> None:
    s = parse_smtp_url("smtp://us%40er:p%3Ass@mail.example:587?starttls=true&from=alerts@x.io")
    assert (s.host, s.port, s.username, s.password, s.starttls, s.sender) == (
        "mail.example",
        587,
        "us@er",
        "p:ss",
        True,
        "alerts@x.io",
    )
    t = parse_smtp_url("smtps://mail.example")
    assert (t.port, t.implicit_tls, t.starttls, t.sender) == (
        465,
        True,
        False,
        "log-workbench@mail.example",
    )
    with pytest.raises(ValidationError) as err:
        parse_smtp_url("http://mail.example")
    assert "WORKBENCH_SMTP_URL" in err.value.details
