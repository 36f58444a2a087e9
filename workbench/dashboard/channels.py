"""The Notifications page: webhook, Slack and email channels; add (with a template and its
preview beside the form), toggle, send a test."""

from __future__ import annotations

import uuid
from typing import Any

import ipywidgets as widgets

from workbench.catalog.models import Delivery, NotificationChannel
from workbench.clock import Clock
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.errors import friendly_error, validation_messages
from workbench.dashboard.format import card, cards, esc, field_error, fmt_ts, truncate
from workbench.dashboard.page import Page
from workbench.dashboard.widgets import EnableToggle, cell, header_row

_COLS = ("200px", "380px", "110px", "auto")


def delivery_html(d: Delivery) -> str:
    """Return the result of a test send in words: delivered with the HTTP code, or why not."""
    if d.status == "sent":
        return (
            f'<span class="wb-ok-box wb-test-ok">✓ delivered · HTTP {esc(d.response_code)} · '
            f"{esc(fmt_ts(d.sent_at))}</span>"
        )
    why = d.last_error or (f"HTTP {d.response_code}" if d.response_code else "no answer")
    return f'<span class="wb-error-box wb-test-failed">✗ not delivered: {esc(truncate(why, 200))}</span>'


class ChannelRow:
    """One channel: its URL, an enable toggle, and "send test" with the result next to it."""

    def __init__(self, channel: NotificationChannel, page: ChannelsPage) -> None:
        self.page = page
        self.channel = channel
        self.enable = EnableToggle(
            channel.enabled, "wb-channel-toggle", persist=self._set_enabled, failed=self._toggle_failed
        )
        self.toggle = self.enable.button
        self.test_button = widgets.Button(description="Send test", icon="paper-plane",
                                          layout=widgets.Layout(width="120px"))
        self.test_button.add_class("wb-channel-test")
        self.test_button.on_click(lambda _b: self.send_test())
        self.result = widgets.HTML()
        self.result.add_class("wb-channel-result")
        self.cells = widgets.HBox()
        self.widget = widgets.VBox([self.cells, self.result])
        self.widget.add_class("wb-row")
        self.widget.add_class("wb-channel-row")
        self.widget.add_class(f"wb-channel-{channel.id}")
        self.render()

    def render(self) -> None:
        """Redraw the row from ``self.channel``."""
        c = self.channel
        self.enable.show(c.enabled)
        signed = ' <span class="wb-muted">· signed</span>' if c.secret else ""
        if c.template:
            signed += ' <span class="wb-muted">· templated</span>'
        self.cells.children = [
            cell(f"<b>{esc(c.name or '(unnamed)')}</b><div class='wb-muted'>{esc(c.type)}{signed}</div>", _COLS[0]),
            cell(f'<code title="{esc(c.target)}">{esc(truncate(c.target, 60))}</code>', _COLS[1]),
            cell(esc(c.created_at.strftime("%Y-%m-%d")), _COLS[2]),
            widgets.HBox([self.toggle, self.test_button]),
        ]

    def _set_enabled(self, enabled: bool) -> None:
        self.result.value = ""
        with store.session_for(self.page.ctx.settings) as session:
            self.channel = store.set_channel_enabled(session, self.channel.id, enabled)
        self.render()
        self.page.draw_summary()

    def _toggle_failed(self, exc: BaseException) -> None:
        self.result.value = f'<span class="wb-field-error">Could not change: {esc(friendly_error(exc, self.page.ctx.settings))}</span>'

    def send_test(self, client: Any = None) -> Delivery | None:
        """Send a test notification now and show whether it arrived; return the delivery."""
        self.test_button.disabled = True
        self.test_button.description = "Sending…"
        self.result.value = '<span class="wb-muted">sending…</span>'
        try:
            with store.session_for(self.page.ctx.settings) as session:
                delivery = store.send_test(
                    session, self.channel, now=self.page.ctx.now(),
                    dashboard_url=self.page.ctx.settings.dashboard_url,
                    client=client if client is not None else self.page.http_client,
                    allow_private=self.page.ctx.settings.allow_private_webhooks,
                )
        except Exception as exc:
            self.result.value = f'<span class="wb-error-box">✗ {esc(friendly_error(exc, self.page.ctx.settings))}</span>'
            return None
        finally:
            self.test_button.disabled = False
            self.test_button.description = "Send test"
        self.result.value = delivery_html(delivery)
        return delivery


_TARGET_LABELS = {
    "webhook": ("Webhook URL", "https://example.com/webhook"),
    "slack": ("Slack URL", "https://hooks.slack.com/services/…"),
    "email": ("Email address", "oncall@example.com"),
}
_TYPE_HELP = {
    "webhook": "Alerts are POSTed as JSON (type, service, errorCount, windowMinutes, triggeredAt, "
    "incidentId, url of the incident page, evidence). With a secret, each request is signed "
    "(X-Workbench-Signature, HMAC-SHA256).",
    "slack": "A Slack (or Mattermost, Rocket.Chat) incoming webhook: the text, the top patterns, "
    "the newest events and links as blocks.",
    "email": "Sent through WORKBENCH_SMTP_URL: the text (its first line is the subject) and an "
    "HTML part, with the evidence and links.",
}


def preview_html(preview: dict[str, Any]) -> str:
    """Return a rendered preview: where it comes from, the subject/text, the body sent."""
    import json

    source = (
        f"the latest incident ({esc(preview['incidentId'])})"
        if preview["source"] == "incident" else "a sample incident (none recorded yet)"
    )
    parts = [f'<div class="wb-muted">Preview for {source}; nothing is sent.</div>']
    if preview.get("templateError"):
        parts.append(f'<div class="wb-error-box">Template failed: {esc(preview["templateError"])}</div>')
    if preview["type"] == "email":
        parts.append(f'<div><b>Subject:</b> <span class="wb-preview-subject">{esc(preview["subject"])}</span></div>')
    parts.append(f'<pre class="wb-preview-text" style="white-space:pre-wrap">{esc(preview["text"])}</pre>')
    if preview["type"] != "email":
        body = json.dumps(preview["body"], indent=2, ensure_ascii=False)
        parts.append(f'<details><summary>Body sent</summary><pre class="wb-preview-body">{esc(truncate(body, 6000))}</pre></details>')
    return "".join(parts)


class ChannelForm:
    """The add-channel form (webhook, Slack, email) with a template box and its preview beside it."""

    def __init__(self, page: ChannelsPage) -> None:
        self.page = page
        lay = widgets.Layout(width="460px")
        style = {"description_width": "110px"}
        self.type = widgets.Dropdown(description="Type", options=[("Webhook", "webhook"), ("Slack", "slack"), ("Email", "email")],
                                     value="webhook", layout=lay, style=style)
        self.name = widgets.Text(description="Name", placeholder="e.g. ops Slack relay", layout=lay, style=style)
        self.target = widgets.Text(description="Webhook URL", placeholder="https://example.com/webhook",
                                   layout=lay, style=style)
        self.secret = widgets.Password(description="HMAC secret", placeholder="optional", layout=lay, style=style)
        self.template = widgets.Textarea(
            description="Template", placeholder="optional Jinja2, e.g. {{ service }}: {{ errorCount }} errors",
            layout=widgets.Layout(width="460px", height="90px"), style=style,
        )
        fields = (("type", self.type), ("name", self.name), ("target", self.target),
                  ("secret", self.secret), ("template", self.template))
        self.errors = {k: widgets.HTML() for k, _ in fields}
        for key, w in fields:
            w.add_class(f"wb-channel-{key}")
            self.errors[key].add_class(f"wb-error-{key}")
        self.help = widgets.HTML()
        self.type.observe(lambda _c: self._type_changed(), names="value")
        self.add_button = widgets.Button(description="Add channel", button_style="primary", icon="plus")
        self.add_button.add_class("wb-channel-add")
        self.add_button.on_click(lambda _b: self.submit())
        self.preview_button = widgets.Button(description="Preview", icon="eye")
        self.preview_button.add_class("wb-channel-preview-button")
        self.preview_button.on_click(lambda _b: self.preview())
        self.preview_pane = widgets.HTML(
            '<div class="wb-muted">Press Preview to see what this channel would receive.</div>',
            layout=widgets.Layout(width="480px", margin="0 0 0 16px"),
        )
        self.preview_pane.add_class("wb-channel-preview")
        self.result = widgets.HTML()
        self.result.add_class("wb-form-result")
        rows = [widgets.HBox([w, self.errors[k]], layout=widgets.Layout(align_items="center"))
                for k, w in fields]
        form = widgets.VBox([
            widgets.HTML('<div class="wb-section">Add a channel</div>'), self.help, *rows,
            widgets.HBox([self.add_button, self.preview_button]), self.result,
        ])
        self.widget = widgets.HBox(
            [form, self.preview_pane],
            layout=widgets.Layout(border="1px solid #e5e7eb", padding="8px 12px", margin="8px 0"),
        )
        self.widget.add_class("wb-channel-form")
        self._type_changed()

    def _type_changed(self) -> None:
        kind = str(self.type.value)
        label, placeholder = _TARGET_LABELS[kind]
        self.target.description, self.target.placeholder = label, placeholder
        self.secret.layout.display = "none" if kind == "email" else None
        self.help.value = f'<div class="wb-muted">{esc(_TYPE_HELP[kind])}</div>'

    def _form(self) -> dict[str, Any]:
        kind = str(self.type.value)
        return {"type": kind, "name": self.name.value.strip(), "target": self.target.value.strip(),
                "secret": (self.secret.value or None) if kind != "email" else None,
                "template": self.template.value or None}

    def _show_errors(self, exc: Exception, verb: str) -> None:
        settings = self.page.ctx.settings
        messages = validation_messages(exc)
        shown = False
        for name, msgs in messages.items():
            if name in self.errors:
                self.errors[name].value = field_error(msgs)
                shown = True
        text = "check the fields marked in red" if shown else friendly_error(exc, settings)
        self.result.value = f'<div class="wb-error-box">{verb}: {esc(text)}.</div>'

    def _clear(self) -> None:
        for err in self.errors.values():
            err.value = ""
        self.result.value = ""

    def preview(self) -> dict[str, Any] | None:
        """Render the form's channel for the latest incident beside the form; return the preview."""
        self._clear()
        settings = self.page.ctx.settings
        try:
            data = store.validate_channel(self._form())
            with store.session_for(settings) as session:
                shown = store.preview_channel(
                    session, data, now=self.page.ctx.now(), dashboard_url=settings.dashboard_url
                )
        except Exception as exc:
            self._show_errors(exc, "No preview")
            return None
        self.preview_pane.value = preview_html(shown)
        return shown

    def submit(self) -> NotificationChannel | None:
        """Add the channel when the form is valid; return it (None when not added)."""
        self._clear()
        settings = self.page.ctx.settings
        try:
            data = store.validate_channel(self._form())
            with store.session_for(settings) as session:
                channel = store.create_channel(
                    session, data, now=self.page.ctx.now(),
                    allow_private=settings.allow_private_webhooks, smtp_url=settings.smtp_url,
                )
        except Exception as exc:
            self._show_errors(exc, "Not added")
            return None
        self.result.value = f'<div class="wb-ok-box">Added “{esc(channel.name or channel.target)}”. Send it a test below.</div>'
        self.name.value = self.target.value = self.secret.value = self.template.value = ""
        self.page.safe_reload()
        return channel


class ChannelsPage(Page):
    """Where alerts go, and proof that they arrive."""

    key = "notifications"
    title = "Notifications"

    def __init__(
        self, settings: Settings, clock: Clock | None = None, *, show_disabled: bool = True,
        http_client: Any = None,
    ) -> None:
        super().__init__(settings, clock)
        self.show_disabled = show_disabled
        self.http_client = http_client  # the seam tests use for webhook sends (httpx.Client)
        self.rows: dict[uuid.UUID, ChannelRow] = {}
        self.summary = widgets.HTML()
        self.summary.add_class("wb-summary")
        self.table = widgets.VBox()
        self.table.add_class("wb-channel-table")
        self.empty = widgets.HTML()
        self.form = ChannelForm(self)
        self.body.children = [
            self.summary, widgets.HTML('<div class="wb-section">Channels</div>'),
            header_row(("Channel", "URL", "Added", "Enabled / test"), _COLS),
            self.table, self.empty, self.form.widget,
        ]

    def load(self) -> None:
        """Reload the channels (rows keep their last test result)."""
        with store.session_for(self.ctx.settings) as session:
            channels = store.list_channels(session)
        if not self.show_disabled:
            channels = [c for c in channels if c.enabled]
        rows: dict[uuid.UUID, ChannelRow] = {}
        for ch in channels:
            row = self.rows.get(ch.id)
            if row is None:
                row = ChannelRow(ch, self)
            else:
                row.channel = ch
                row.render()
            rows[ch.id] = row
        self.rows = rows
        self.table.children = [r.widget for r in rows.values()]
        self.draw_summary()
        self.empty.value = (
            '<div class="wb-empty">No notification channels: incidents are recorded but nobody is '
            "told. Add a channel below.</div>" if not rows else ""
        )

    def draw_summary(self) -> None:
        """Redraw the summary cards from the rows on the page."""
        enabled = sum(1 for r in self.rows.values() if r.channel.enabled)
        self.summary.value = cards([
            card("channels", len(self.rows), css_class="wb-card-total"),
            card("enabled", enabled, colour="#16a34a", css_class="wb-card-enabled"),
            card("disabled", len(self.rows) - enabled, colour="#6b7280", css_class="wb-card-disabled"),
        ])

    def safe_reload(self) -> None:
        """Reload the list, showing a message instead of failing."""
        try:
            self.load()
        except Exception as exc:
            self.error.show(friendly_error(exc, self.ctx.settings))


def build_channels(
    settings: Settings, *, show_disabled: bool = True, clock: Clock | None = None,
    http_client: Any = None,
) -> ChannelsPage:
    """Return the Notifications page."""
    return ChannelsPage(settings, clock, show_disabled=show_disabled, http_client=http_client)
