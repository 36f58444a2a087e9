"""The Notifications page: add with URL validation, toggle, send a test and show the result."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx

from tests.dashboard.seed import Seeded
from workbench.catalog.models import NotificationChannel
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.channels import build_channels


def _channels(settings: Settings) -> list[NotificationChannel]:
    with store.session_for(settings) as s:
        return store.list_channels(s)


def test_bad_url_is_refused_inline(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_channels(settings, clock=clock)
    page.refresh()
    page.form.target.value = "ftp://example.com/x"
    page.form.add_button.click()
    assert "http://" in page.form.errors["target"].value
    assert "Not added" in page.form.result.value
    assert len(_channels(settings)) == 2


def test_good_webhook_is_added(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_channels(settings, clock=clock)
    page.refresh()
    page.form.name.value = "pager relay"
    page.form.target.value = "https://hooks.example.com/abc"
    page.form.add_button.click()
    assert "Added" in page.form.result.value
    assert page.form.target.value == ""
    assert any(c.target == "https://hooks.example.com/abc" for c in _channels(settings))
    assert len(page.rows) == 3


def test_toggle_persists(settings: Settings, world: Seeded, clock: Callable[[], datetime]) -> None:
    page = build_channels(settings, clock=clock)
    page.refresh()
    row = page.rows[world.channels[1]]
    assert row.toggle.value is False
    row.toggle.value = True
    assert {c.id: c.enabled for c in _channels(settings)}[world.channels[1]] is True
    again = build_channels(settings, clock=clock)
    again.refresh()
    assert again.rows[world.channels[1]].toggle.value is True
    assert 'wb-card-enabled"><div class="wb-card-value" style="color:#16a34a">2<' in again.summary.value


def test_send_test_shows_delivery(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    page = build_channels(settings, clock=clock, http_client=client)
    page.refresh()
    row = page.rows[world.channels[0]]
    row.test_button.click()
    assert len(seen) == 1 and str(seen[0].url) == "http://127.0.0.1:9/hook"
    assert "delivered" in row.result.value and "HTTP 200" in row.result.value
    assert row.test_button.description == "Send test" and not row.test_button.disabled


def test_send_test_failure_is_explained(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(500)))
    page = build_channels(settings, clock=clock, http_client=client)
    page.refresh()
    row = page.rows[world.channels[0]]
    row.test_button.click()
    assert "not delivered" in row.result.value


def test_no_channels_says_nobody_is_told(empty: Settings, clock: Callable[[], datetime]) -> None:
    page = build_channels(empty, clock=clock)
    page.refresh()
    assert "nobody is" in page.empty.value


def test_slack_channel_with_template_is_previewed_beside_the_form_then_added(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_channels(settings, clock=clock)
    page.refresh()
    form = page.form
    form.type.value = "slack"
    assert form.target.description == "Slack URL"
    form.name.value = "ops slack"
    form.target.value = "https://hooks.slack.example/T0/B0"
    form.template.value = "<{{ service }}> {{ errorCount }} errors"
    shown = form.preview()
    assert shown is not None and shown["source"] == "incident"
    service = shown["text"][1:].split(">")[0]
    assert shown["text"].startswith(f"<{service}> ")
    assert shown["body"]["text"].startswith(f"&lt;{service}&gt; ")  # Slack-escaped
    # The pane shows the text escaped as HTML, and says nothing is sent.
    assert "nothing is sent" in form.preview_pane.value
    assert "&lt;" in form.preview_pane.value and "<{{" not in form.preview_pane.value
    before = len(_channels(settings))
    form.add_button.click()
    assert "Added" in form.result.value
    [added] = [c for c in _channels(settings) if c.name == "ops slack"]
    assert (added.type, added.template) == ("slack", "<{{ service }}> {{ errorCount }} errors")
    assert len(_channels(settings)) == before + 1


def test_template_syntax_error_is_shown_on_the_template_box(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_channels(settings, clock=clock)
    page.refresh()
    page.form.target.value = "https://hooks.example.com/abc"
    page.form.template.value = "line one\n{% if %}"
    assert page.form.preview() is None
    assert "line 2" in page.form.errors["template"].value
    page.form.add_button.click()
    assert "line 2" in page.form.errors["template"].value
    assert "Not added" in page.form.result.value


def test_email_channel_needs_the_smtp_setting_and_says_so(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    assert settings.smtp_url == ""
    page = build_channels(settings, clock=clock)
    page.refresh()
    page.form.type.value = "email"
    assert page.form.secret.layout.display == "none"
    page.form.target.value = "oncall@example.com"
    page.form.add_button.click()
    assert "WORKBENCH_SMTP_URL" in page.form.result.value
    with_smtp = settings.model_copy(update={"smtp_url": "smtp://127.0.0.1:2525"})
    page = build_channels(with_smtp, clock=clock)
    page.refresh()
    page.form.type.value = "email"
    page.form.target.value = "oncall@example.com"
    page.form.template.value = "{{ service }} paged"
    shown = page.form.preview()
    assert shown is not None and "Subject:" in page.form.preview_pane.value
    page.form.add_button.click()
    assert "Added" in page.form.result.value
