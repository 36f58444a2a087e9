"""The Overview page: service and range pickers, the error trend, open-incident counts."""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.clock import Clock
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.charts import show_figure, trend_figure
from workbench.dashboard.errors import friendly_error
from workbench.dashboard.format import (
    FIRST_LOG_CURL,
    STATUS_COLOURS,
    ago,
    card,
    cards,
    esc,
    status_badge,
)
from workbench.dashboard.page import Page

RANGES: tuple[str, ...] = ("1h", "24h", "7d", "30d", "3m", "6m", "1y")
ALL_SERVICES = ""


class OverviewPage(Page):
    """The landing page: how many errors, where, and how many incidents are open."""

    key = "overview"
    title = "Overview"

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        service: str = ALL_SERVICES,
        range_: str = "24h",
    ) -> None:
        super().__init__(settings, clock)
        self.figure: go.Figure | None = None
        self.points: list[Any] = []
        self.service_picker = widgets.Dropdown(
            options=[("All services", ALL_SERVICES)], value=ALL_SERVICES, description="Service",
            layout=widgets.Layout(width="320px"),
        )
        self.service_picker.add_class("wb-service-picker")
        self._initial_service = service
        self.range_picker = widgets.ToggleButtons(
            options=list(RANGES), value=range_ if range_ in RANGES else "24h",
            style={"button_width": "52px"},
        )
        self.range_picker.add_class("wb-range-picker")
        self.summary = widgets.HTML()
        self.summary.add_class("wb-summary")
        self.chart = widgets.Output(layout=widgets.Layout(min_height="320px"))
        self.chart.add_class("wb-trend")
        self.empty = widgets.HTML(layout=widgets.Layout(display="none"))
        self.empty.add_class("wb-empty-state")
        self.chart_note = widgets.HTML()
        self.active = widgets.HTML()
        self.active.add_class("wb-overview-active")
        self.body.children = [
            self.summary,
            self.active,
            widgets.HBox([self.service_picker, self.range_picker],
                         layout=widgets.Layout(align_items="center")),
            self.empty,
            self.chart_note,
            self.chart,
        ]
        self._loading = False
        self.service_picker.observe(self._on_pick, names="value")
        self.range_picker.observe(self._on_pick, names="value")

    def _on_pick(self, _change: dict[str, Any]) -> None:
        if self._loading:
            return
        try:
            self.load_trend()
            self.load_summary()
        except Exception as exc:
            self.error.show(friendly_error(exc, self.ctx.settings))
        else:
            self.error.clear()

    def load(self) -> None:
        """Reload the service list, the counts and the trend."""
        names = store.services(self.ctx.settings)
        current = self.service_picker.value or self._initial_service
        self._loading = True
        try:
            options = [("All services", ALL_SERVICES)] + [(n, n) for n in names]
            if current and current not in names:
                options.append((f"{current} (no logs yet)", current))
            if tuple(self.service_picker.options) != tuple(options):  # keep an open menu open
                self.service_picker.options = options
            self.service_picker.value = current
        finally:
            self._loading = False
        if not names:
            self.empty.value = (
                '<div class="wb-empty"><b>No logs yet.</b> Send a first one to the ingest API and '
                "it shows up here within seconds:"
                f'<code class="wb-curl">{esc(FIRST_LOG_CURL)}</code></div>'
            )
            self.empty.layout.display = None
        else:
            self.empty.layout.display = "none"
        self.load_trend()
        self.load_summary()

    def load_summary(self) -> None:
        """Redraw the cards: open and acknowledged incidents, errors in the range, services."""
        now = self.ctx.now()
        with store.session_for(self.ctx.settings) as session:
            counts = store.incident_counts(session, now)
            active = [i for i in store.list_incidents(session, limit=50) if i.status != "resolved"]
        total = sum(p.count for p in self.points)
        svc = self.service_picker.value or "all services"
        self.summary.value = cards(
            [
                card("open incidents", counts.open, colour=STATUS_COLOURS["open"],
                     css_class="wb-card-open"),
                card("acknowledged", counts.acknowledged, colour=STATUS_COLOURS["acknowledged"],
                     css_class="wb-card-ack"),
                card(f"errors in {self.range_picker.value} · {svc}", total, css_class="wb-card-errors"),
                card("services sending logs", max(0, len(self.service_picker.options) - 1)),
            ]
        )
        items = "".join(
            f'<li>{status_badge(i.status)} <a href="incidents.ipynb?incident={i.id}"><b>{esc(i.service)}</b></a>'
            f" · {i.error_count} errors (≥ {i.threshold} in {i.window_minutes} min) · triggered "
            f"{esc(ago(i.triggered_at, now))}</li>"
            for i in active[:5]
        )
        more = f"<li>… {len(active) - 5} more</li>" if len(active) > 5 else ""
        self.active.value = (
            f'<div class="wb-section">Active incidents</div><ul class="wb-active-list">{items}{more}</ul>'
            if active else '<div class="wb-ok-box">No active incidents.</div>'
        ) + '<div class="wb-muted"><a href="incidents.ipynb">→ all incidents</a></div>'

    def load_trend(self) -> None:
        """Recompute the error trend for the picked service and range and redraw the chart."""
        service = self.service_picker.value or None
        range_ = self.range_picker.value
        self.points = store.error_trend(
            self.ctx.settings, service=service, range_=range_, now=self.ctx.now()
        )
        title = f"Errors (error + fatal) · {service or 'all services'} · last {range_}"
        self.figure = trend_figure(self.points, title=title)
        total = sum(p.count for p in self.points)
        self.chart_note.value = (
            '<div class="wb-muted">No errors in this range — the flat line is good news.</div>'
            if total == 0 and len(self.service_picker.options) > 1 else ""
        )
        show_figure(self.chart, self.figure)


def build_overview(
    settings: Settings, *, service: str = ALL_SERVICES, range_: str = "24h", clock: Clock | None = None
) -> OverviewPage:
    """Return the Overview page (call ``.show()`` in a notebook to display it)."""
    return OverviewPage(settings, clock, service=service, range_=range_)
