"""The Incidents page: summary cards, the incident table with acknowledge/resolve, the detail."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.catalog.models import AlertIncident, Delivery, IncidentEvent, NotificationChannel
from workbench.clock import Clock
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.charts import show_figure, trend_figure
from workbench.dashboard.errors import friendly_error
from workbench.dashboard.format import (
    SEVERITY_COLOURS,
    STATUS_COLOURS,
    ago,
    badge,
    card,
    cards,
    esc,
    fmt_ts,
    status_badge,
)
from workbench.dashboard.page import Page
from workbench.dashboard.widgets import ErrorBox, cell, header_row

STATUS_FILTERS: tuple[tuple[str, str], ...] = (
    ("All", ""),
    ("Open", "open"),
    ("Acknowledged", "acknowledged"),
    ("Resolved", "resolved"),
)
_COLS = ("130px", "220px", "150px", "150px", "150px", "auto")
_ACTION_WORDS = {"acknowledge": ("Acknowledge", "Acknowledging…"), "resolve": ("Resolve", "Resolving…")}


def incident_link(dashboard_url: str, incident_id: uuid.UUID | str) -> str:
    """Return the absolute link to an incident's detail (the shape webhook payloads carry)."""
    return f"{dashboard_url.rstrip('/')}/voila/render/incidents.ipynb?incident={incident_id}"


class IncidentRow:
    """One incident in the table, with its own busy state and error message."""

    def __init__(self, incident: AlertIncident, page: IncidentsPage) -> None:
        self.page = page
        self.incident = incident
        self.ack_button = widgets.Button(description="Acknowledge", button_style="warning",
                                         icon="check", layout=widgets.Layout(width="130px"))
        self.ack_button.add_class("wb-ack")
        self.resolve_button = widgets.Button(description="Resolve", button_style="success",
                                             icon="check-circle", layout=widgets.Layout(width="110px"))
        self.resolve_button.add_class("wb-resolve")
        self.detail_button = widgets.Button(description="Details", layout=widgets.Layout(width="80px"))
        self.detail_button.add_class("wb-details")
        self.ack_button.on_click(lambda _b: self.act("acknowledge"))
        self.resolve_button.on_click(lambda _b: self.act("resolve"))
        self.detail_button.on_click(lambda _b: self.page.open_detail(self.incident.id))
        self.message = widgets.HTML(value="")
        self.message.add_class("wb-row-message")
        self.cells = widgets.HBox(layout=widgets.Layout(align_items="center"))
        self.widget = widgets.VBox([self.cells, self.message])
        self.widget.add_class("wb-row")
        self.widget.add_class("wb-incident-row")
        self.widget.add_class(f"wb-incident-{incident.id}")
        self.busy = False
        self.render()

    def render(self) -> None:
        """Redraw the row from ``self.incident``."""
        inc = self.incident
        now = self.page.ctx.now()
        sev = badge(inc.severity, SEVERITY_COLOURS.get(inc.severity, "#6b7280"))
        who = ""
        if inc.status == "acknowledged" and inc.acknowledged_by:
            who = f'<div class="wb-muted">by {esc(inc.acknowledged_by)} {esc(ago(inc.acknowledged_at, now))}</div>'
        elif inc.status == "resolved" and inc.resolved_by:
            who = f'<div class="wb-muted">by {esc(inc.resolved_by)} {esc(ago(inc.resolved_at, now))}</div>'
        actions = widgets.HBox(
            [b for b, show in ((self.ack_button, inc.status == "open"),
                               (self.resolve_button, inc.status in ("open", "acknowledged")),
                               (self.detail_button, True)) if show],
        )
        self.cells.children = [
            cell(f'<span class="wb-status">{status_badge(inc.status)}</span>{who}', _COLS[0]),
            cell(f"<b>{esc(inc.service)}</b> {sev}", _COLS[1]),
            cell(f"{inc.error_count} errors<div class='wb-muted'>≥ {inc.threshold} in {inc.window_minutes} min</div>", _COLS[2]),
            cell(f'<span title="{esc(fmt_ts(inc.triggered_at))}">{esc(ago(inc.triggered_at, now))}</span>', _COLS[3]),
            cell(f'<span title="{esc(fmt_ts(inc.last_seen_error_at))}">{esc(ago(inc.last_seen_error_at, now))}</span>', _COLS[4]),
            actions,
        ]
        for cls in ("open", "acknowledged", "resolved"):
            self.widget.remove_class(f"wb-row-{cls}")
        self.widget.add_class(f"wb-row-{inc.status}")

    def set_busy(self, action: str | None) -> None:
        """Show the row as busy with ``action`` (buttons disabled), or idle again for None."""
        self.busy = action is not None
        for button in (self.ack_button, self.resolve_button, self.detail_button):
            button.disabled = self.busy
        self.ack_button.description = _ACTION_WORDS["acknowledge"][action == "acknowledge"]
        self.resolve_button.description = _ACTION_WORDS["resolve"][action == "resolve"]

    def act(self, action: str) -> None:
        """Acknowledge or resolve this incident; on failure the row stays as it was and says why."""
        if self.busy:
            return
        self.set_busy(action)
        self.message.value = ""
        try:
            self.incident = self.page.apply(self.incident.id, action)
        except Exception as exc:
            self.message.value = (
                f'<span class="wb-field-error">Could not {esc(action)}: '
                f"{esc(friendly_error(exc, self.page.ctx.settings))}</span>"
            )
        finally:
            self.set_busy(None)
        self.render()


class IncidentsPage(Page):
    """Incidents at a glance, one click to acknowledge or resolve, the detail with its timeline."""

    key = "incidents"
    title = "Incidents"

    def __init__(
        self, settings: Settings, clock: Clock | None = None, *, incident: str = "",
        status: str = "", service: str = "",
    ) -> None:
        super().__init__(settings, clock)
        self.rows: dict[uuid.UUID, IncidentRow] = {}
        self.summary = widgets.HTML()
        self.summary.add_class("wb-summary")
        self.status_filter = widgets.ToggleButtons(
            options=list(STATUS_FILTERS), value=status if status in dict(STATUS_FILTERS).values() else "",
        )
        self.status_filter.add_class("wb-status-filter")
        self.status_filter.observe(lambda _c: self._safe(self.load_table), names="value")
        service = service.strip()
        self.service_filter = widgets.Dropdown(
            options=[("All services", "")] + ([(service, service)] if service else []),
            value=service, description="Service", layout=widgets.Layout(width="280px"),
        )
        self.service_filter.add_class("wb-service-filter")
        self.service_filter.observe(lambda _c: self._safe(self.load_table), names="value")
        self.clear_filters = widgets.Button(description="Clear filters", icon="times",
                                            layout=widgets.Layout(display="none", width="140px"))
        self.clear_filters.add_class("wb-clear-filters")
        self.clear_filters.on_click(lambda _b: self.reset_filters())
        self.detail = IncidentDetail(self)
        header = header_row(("Status", "Service", "Errors", "Triggered", "Last error", "Actions"), _COLS)
        self.table = widgets.VBox([])
        self.table.add_class("wb-incident-table")
        self.empty = widgets.HTML()
        self.body.children = [
            self.summary, self.detail.widget,
            widgets.HTML('<div class="wb-section">Recent incidents (newest first, last 100)</div>'),
            widgets.HBox([self.status_filter, self.service_filter]), header, self.table,
            self.empty, self.clear_filters,
        ]
        self._requested = incident.strip()

    def _safe(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:
            self.error.show(friendly_error(exc, self.ctx.settings))
        else:
            self.error.clear()

    def load(self) -> None:
        """Reload the cards, the table and the open detail."""
        self.load_summary()
        self.load_table()
        if self._requested:
            requested, self._requested = self._requested, ""
            self.open_detail(requested)
        elif self.detail.incident_id is not None:
            self.detail.load()

    def load_summary(self) -> None:
        """Redraw the cards: open, acknowledged, resolved today."""
        with store.session_for(self.ctx.settings) as session:
            c = store.incident_counts(session, self.ctx.now())
        self.summary.value = cards([
            card("open", c.open, colour=STATUS_COLOURS["open"], css_class="wb-card-open"),
            card("acknowledged", c.acknowledged, colour=STATUS_COLOURS["acknowledged"],
                 css_class="wb-card-ack"),
            card("resolved today (UTC)", c.resolved_today, colour=STATUS_COLOURS["resolved"],
                 css_class="wb-card-resolved"),
        ])

    def reset_filters(self) -> None:
        """Show every incident again (status All, all services)."""
        with self.status_filter.hold_trait_notifications():
            self.service_filter.value = ""
            self.status_filter.value = ""
        self._safe(self.load_table)

    def _service_options(self, session: Any) -> None:
        current = self.service_filter.value
        names = store.alert_services(session)
        if current and current not in names:
            names = sorted([*names, current])
        options = [("All services", ""), *((n, n) for n in names)]
        if list(self.service_filter.options) != options:
            self.service_filter.options = options
            self.service_filter.value = current

    def load_table(self) -> None:
        """Reload the incident list (rows busy with an action are kept as they are)."""
        status = self.status_filter.value or None
        service = self.service_filter.value or None
        with store.session_for(self.ctx.settings) as session:
            self._service_options(session)
            incidents = store.list_incidents(session, status=status, service=service)
            empty = "" if incidents else self._empty_text(session, status, service)
        rows: dict[uuid.UUID, IncidentRow] = {}
        for inc in incidents:
            row = self.rows.get(inc.id)
            if row is None:
                row = IncidentRow(inc, self)
            elif not row.busy:
                row.incident = inc
                row.render()
            rows[inc.id] = row
        self.rows = rows
        self.table.children = [r.widget for r in rows.values()]
        self.empty.value = empty
        filtered = bool(empty) and (status is not None or service is not None)
        self.clear_filters.layout.display = None if filtered else "none"

    def _empty_text(self, session: Any, status: str | None, service: str | None) -> str:
        """Say why the list is empty: no incidents at all, or which filter leaves none."""
        total = store.count_incidents(session)
        if total == 0 or (status is None and service is None):
            return (
                '<div class="wb-empty">No incidents here. When a rule breaches its threshold an '
                'incident appears in this list. <a href="rules.ipynb">Alert rules →</a></div>'
            )
        what = f"{status} incidents" if status else "incidents"
        head = f"No {esc(what)}" + (f" for service <b>{esc(service)}</b>" if service else "") + "."
        why = []
        if status is not None:  # what the status filter hides
            n = store.count_incidents(session, service=service)
            of = f"{esc(service)} " if service else ""
            why.append(f"the status filter: {_n(n, of + 'incident')} in other states")
        if service is not None:  # what the service filter hides
            n = store.count_incidents(session, status=status)
            of = f"{esc(status)} " if status else ""
            why.append(f"the service filter: {_n(n, of + 'incident')} on other services")
        return (
            f'<div class="wb-empty wb-empty-filtered">{head} Empty because of '
            + "; ".join(why) + ".</div>"
        )

    def apply(self, incident_id: uuid.UUID, action: str) -> AlertIncident:
        """Acknowledge or resolve an incident in the catalog; return it as stored."""
        fn = store.acknowledge if action == "acknowledge" else store.resolve
        with store.session_for(self.ctx.settings) as session:
            inc = fn(session, incident_id, actor=self.ctx.actor, now=self.ctx.now())
        self._safe(self.load_summary)
        if self.detail.incident_id == incident_id:
            self._safe(self.detail.load)
        return inc

    def open_detail(self, incident_id: uuid.UUID | str) -> None:
        """Show one incident's detail (its fields, timeline, notifications and a mini trend)."""
        self.detail.open(incident_id)


class IncidentDetail:
    """The detail panel of one incident."""

    def __init__(self, page: IncidentsPage) -> None:
        self.page = page
        self.incident_id: uuid.UUID | None = None
        self.figure: go.Figure | None = None
        self.info = widgets.HTML()
        self.info.add_class("wb-detail-info")
        self.timeline = widgets.HTML()
        self.timeline.add_class("wb-timeline")
        self.chart = widgets.Output()
        self.chart.add_class("wb-mini-trend")
        self.error = ErrorBox("wb-detail-error")
        self.report = widgets.HTML()
        self.report.add_class("wb-report")
        self.investigate_button = widgets.Button(
            description="Run investigation", icon="search",
            layout=widgets.Layout(width="170px", margin="0 0 0 12px"),
            tooltip="Execute the investigation notebook for this incident (takes a few seconds)",
        )
        self.investigate_button.add_class("wb-investigate")
        self.investigate_button.on_click(lambda _b: self.investigate())
        self._investigation: threading.Thread | None = None
        close = widgets.Button(description="Close", icon="times", layout=widgets.Layout(width="90px"))
        close.add_class("wb-detail-close")
        close.on_click(lambda _b: self.close())
        self.chart.layout = widgets.Layout(min_height="240px")
        self.panel = widgets.VBox(
            [widgets.HBox([widgets.HTML('<div class="wb-section">Incident detail</div>'), close],
                          layout=widgets.Layout(justify_content="space-between")),
             self.error.widget, self.info,
             widgets.HBox([self.report, self.investigate_button],
                          layout=widgets.Layout(align_items="center")),
             self.chart, self.timeline],
            layout=widgets.Layout(border="1px solid #d1d5db", padding="8px 12px", margin="8px 0"),
        )
        self.panel.add_class("wb-incident-detail")
        # Shown by adding the panel, not by CSS display: plotly cannot size a chart drawn
        # inside a hidden element (it renders blank).
        self.widget = widgets.VBox([])

    def open(self, incident_id: uuid.UUID | str) -> None:
        """Load and show the detail of ``incident_id`` (a message when it does not exist)."""
        self.widget.children = [self.panel]
        try:
            self.incident_id = uuid.UUID(str(incident_id).strip())
        except ValueError:
            self.incident_id = None
            self.info.value = ""
            self.timeline.value = ""
            self.chart.outputs = ()
            self.error.show(f"“{incident_id}” is not an incident id; check the link.")
            return
        self.load()

    def close(self) -> None:
        """Hide the detail."""
        self.incident_id = None
        self.widget.children = []

    def load(self) -> None:
        """Reload the shown incident from the catalog and the lake."""
        if self.incident_id is None:
            return
        settings = self.page.ctx.settings
        now = self.page.ctx.now()
        try:
            with store.session_for(settings) as session:
                inc = store.get_incident(session, self.incident_id)
                events = store.incident_timeline(session, inc.id)
                deliveries = store.incident_deliveries(session, inc.id, limit=DELIVERIES_SHOWN)
                channels = _channels(session, deliveries)
        except Exception as exc:
            self.info.value = ""
            self.timeline.value = ""
            self.error.show(friendly_error(exc, settings))
            return
        self.error.clear()
        self.info.value = _detail_html(inc, now, settings.dashboard_url)
        self.report.value = _report_html(store.report_link(settings, inc.id))
        self.timeline.value = _timeline_html(events, deliveries, channels)
        try:
            self._trend(inc, now)
        except Exception as exc:
            self.chart.outputs = ()
            self.error.show("Mini trend unavailable: " + friendly_error(exc, settings))

    def investigate(self, *, wait: bool = False) -> None:
        """Run the investigation notebook for the shown incident in the background.

        The button shows the work in progress; the report link appears when the
        report is written, and a failure is shown in words. ``wait`` joins the
        worker (tests).
        """
        if self.incident_id is None or self._investigation is not None:
            return
        incident_id, settings = self.incident_id, self.page.ctx.settings
        self.investigate_button.disabled = True
        self.investigate_button.description = "Investigating…"

        def work() -> None:
            try:
                store.investigate(settings, incident_id)
            except Exception as exc:
                self.error.show("Investigation failed: " + friendly_error(exc, settings))
            else:
                if self.incident_id == incident_id:
                    self.report.value = _report_html(store.report_link(settings, incident_id))
            finally:
                self.investigate_button.disabled = False
                self.investigate_button.description = "Run investigation"
                self._investigation = None

        self._investigation = threading.Thread(target=work, name="investigate", daemon=True)
        self._investigation.start()
        if wait:
            self._investigation.join()

    def _trend(self, inc: AlertIncident, now: datetime) -> None:
        # The trend ends shortly after the last error (or now), so the burst sits in view.
        end = min(now, inc.last_seen_error_at + timedelta(minutes=15))
        span = end - inc.triggered_at
        range_ = "1h" if span <= timedelta(minutes=45) else "24h" if span <= timedelta(hours=20) else "7d"
        points = store.error_trend(self.page.ctx.settings, service=inc.service, range_=range_, now=end)
        self.figure = trend_figure(
            points, title=f"{inc.service}: errors around the incident ({range_})", height=240,
            marker=inc.triggered_at,
        )
        show_figure(self.chart, self.figure)


def _report_html(link: str | None) -> str:
    if link is None:
        return '<span class="wb-muted">No investigation report yet.</span>'
    return f'<a href="{esc(link)}" target="_blank" rel="noopener">Investigation report</a>'


def _detail_html(inc: AlertIncident, now: datetime, dashboard_url: str) -> str:
    rows = [
        ("Status", status_badge(inc.status)),
        ("Service", f"<b>{esc(inc.service)}</b>"),
        ("Severity", badge(inc.severity, SEVERITY_COLOURS.get(inc.severity, "#6b7280"))),
        ("Errors", f"{inc.error_count} (threshold {inc.threshold} in {inc.window_minutes} min)"),
        ("Triggered", f"{esc(fmt_ts(inc.triggered_at))} ({esc(ago(inc.triggered_at, now))})"),
        ("First triggered", esc(fmt_ts(inc.first_triggered_at))),
        ("Last error", f"{esc(fmt_ts(inc.last_seen_error_at))} ({esc(ago(inc.last_seen_error_at, now))})"),
        ("Acknowledged", esc(f"{fmt_ts(inc.acknowledged_at)} by {inc.acknowledged_by}") if inc.acknowledged_at else "—"),
        ("Resolved", esc(f"{fmt_ts(inc.resolved_at)} by {inc.resolved_by}") if inc.resolved_at else "—"),
        ("Reopened", f"{inc.reopen_count}×"),
        ("Id", f'<a href="incidents.ipynb?incident={inc.id}" title="{esc(incident_link(dashboard_url, inc.id))}">{esc(inc.id)}</a>'),
        ("Fingerprint", f"<code>{esc(inc.fingerprint)}</code>"),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="wb-table wb-kv">{body}</table>'


#: How many of an incident's deliveries (newest) the detail lists.
DELIVERIES_SHOWN = 50
_HEADLINES = {
    "error_alert": "FIRING",
    "error_alert_reopened": "REOPENED",
    "error_alert_repeat": "REPEAT",
    "error_alert_resolved": "RESOLVED",
}


def _channels(session: Any, deliveries: list[Delivery]) -> dict[uuid.UUID, NotificationChannel]:
    """Return the channels the deliveries went to (deleted ones are simply absent)."""
    ids = {d.channel_id for d in deliveries if d.channel_id is not None}
    found = (session.get(NotificationChannel, i) for i in ids)
    return {c.id: c for c in found if c is not None}


def _deliveries_html(
    deliveries: list[Delivery], channels: dict[uuid.UUID, NotificationChannel]
) -> str:
    """Return what was sent to whom and when: one row per delivery, oldest first."""
    if not deliveries:
        return "<p class='wb-muted'>no notifications</p>"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("Queued", "Notification", "Channel", "To", "Status", "Sent", "Delivery")
    )
    rows = []
    for d in sorted(deliveries, key=lambda x: (x.created_at, str(x.id))):
        ch = channels.get(d.channel_id) if d.channel_id is not None else None
        channel = (
            f"{esc(ch.name or '(unnamed)')} <span class='wb-muted'>{esc(ch.type)}</span>"
            if ch is not None
            else "<span class='wb-muted'>deleted channel</span>"
        )
        status = f"<b>{esc(d.status)}</b>, {_n(d.attempts, 'attempt')}"
        if d.response_code:
            status += f" (code {d.response_code})"
        if d.last_error:
            status += f" <span class='wb-field-error'>{esc(d.last_error)}</span>"
        rows.append(
            "<tr>"
            f"<td>{esc(fmt_ts(d.created_at))}</td>"
            f"<td>{esc(_HEADLINES.get(d.event_type, d.event_type))}</td>"
            f"<td>{channel}</td>"
            f"<td><code>{esc(d.url)}</code></td>"
            f"<td>{status}</td>"
            f"<td>{esc(fmt_ts(d.sent_at)) if d.sent_at else '–'}</td>"
            f"<td><code title='{esc(d.id)}'>{esc(d.id)}</code></td>"
            "</tr>"
        )
    return (
        f'<table class="wb-table wb-deliveries"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _timeline_html(
    events: list[IncidentEvent],
    deliveries: list[Delivery],
    channels: dict[uuid.UUID, NotificationChannel] | None = None,
) -> str:
    items = "".join(
        f"<li><span class='wb-muted'>{esc(fmt_ts(e.at))}</span> <b>{esc(e.kind)}</b> by {esc(e.actor)}"
        + (f" <span class='wb-muted'>{esc(_short(e.data))}</span>" if e.data else "")
        + "</li>"
        for e in events
    ) or "<li class='wb-muted'>no events recorded</li>"
    return (
        f'<div class="wb-section">Timeline</div><ul class="wb-timeline-list">{items}</ul>'
        '<div class="wb-section">Notifications: sent to whom and when</div>'
        + _deliveries_html(deliveries, channels or {})
    )


def _short(data: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in data.items())
    return text if len(text) <= 120 else text[:119] + "…"


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def build_incidents(
    settings: Settings, *, incident: str = "", status: str = "", service: str = "",
    clock: Clock | None = None
) -> IncidentsPage:
    """Return the Incidents page, with ``incident``'s detail open when given (``?incident=``)."""
    return IncidentsPage(settings, clock, incident=incident, status=status, service=service)
