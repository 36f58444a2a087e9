"""The Logs page: filters, a paginated newest-first table with level colours, expandable rows."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import ipywidgets as widgets

from workbench.clock import Clock
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.errors import friendly_error
from workbench.dashboard.format import (
    FIRST_LOG_CURL,
    esc,
    fmt_ts,
    level_badge,
    pretty_json,
    truncate,
)
from workbench.dashboard.page import Page
from workbench.errors import ValidationError
from workbench.lake.schema import LEVELS
from workbench.times import parse_bound

#: label -> span (None = all time)
TIME_RANGES: dict[str, timedelta | None] = {
    "last 15 min": timedelta(minutes=15),
    "last 1 h": timedelta(hours=1),
    "last 24 h": timedelta(hours=24),
    "last 7 days": timedelta(days=7),
    "last 30 days": timedelta(days=30),
    "all time": None,
}
DEFAULT_RANGE = "last 24 h"
PAGE_SIZE = 50
MESSAGE_CHARS = 140
#: the longest ``from``/``to`` window a link may ask for
MAX_LINK_SPAN = timedelta(days=366)
#: the page's query-string parameters and their defaults (``evidence.logsUrl`` sets them all)
QUERY_DEFAULTS: dict[str, str] = {"service": "", "level": "", "text": "", "from": "", "to": ""}


def link_window(start: str, end: str) -> tuple[datetime, datetime | None] | None:
    """Return the ``from``/``to`` window of a link (None: no ``from`` nor ``to``; end None: until now).

    Both parse through :func:`workbench.times.parse_bound` (ISO 8601 instants, or a bare date:
    ``to=2026-12-01`` includes that day). Raises :class:`ValidationError` naming the parameter
    when one is not a time, ``to`` comes before ``from``, ``to`` has no ``from``, or the span
    is longer than :data:`MAX_LINK_SPAN`.
    """
    start, end = start.strip(), end.strip()
    if not start and not end:
        return None
    if not start:
        raise ValidationError(
            "from: missing (the link gives `to` without `from`)", {"from": ["missing"]}
        )
    lo = parse_bound(start, "from", end=False)
    if not end:
        return lo, None
    hi = parse_bound(end, "to", end=True)
    if hi < lo:
        raise ValidationError(f"to: {end!r} is before from {start!r}", {"to": ["before from"]})
    if hi - lo > MAX_LINK_SPAN:
        raise ValidationError(
            f"from/to: a span of {(hi - lo).days} days is longer than {MAX_LINK_SPAN.days} days",
            {"from/to": ["span too long"]},
        )
    return lo, hi


def link_label(start: datetime, end: datetime | None) -> str:
    """Return the time-range option of a link's window, e.g. ``from the link: 2026-11-20 10:05–10:10 UTC``."""

    def clock(t: datetime) -> str:
        return t.strftime("%H:%M:%S" if t.second or t.microsecond else "%H:%M")

    day = start.strftime("%Y-%m-%d")
    if end is None:
        return f"from the link: since {day} {clock(start)} UTC"
    if end.date() == start.date():
        return f"from the link: {day} {clock(start)}–{clock(end)} UTC"
    return f"from the link: {day} {clock(start)} – {end.strftime('%Y-%m-%d')} {clock(end)} UTC"


def logs_table_html(logs: list[Any]) -> str:
    """Return the log table: time, level badge, service, message (click to expand full text + meta).

    Every piece of log content is escaped: a message is text, never markup.
    """
    rows = []
    for e in logs:
        short = truncate(e.message.replace("\n", " "), MESSAGE_CHARS)
        body = f"<pre class='wb-log-message'>{esc(e.message)}</pre>"
        if e.meta:
            body += f"<div class='wb-muted'>meta</div><pre class='wb-log-meta'>{esc(pretty_json(e.meta))}</pre>"
        body += f"<div class='wb-muted'>id {esc(e.id)}</div>"
        rows.append(
            f"<tr class='wb-log-row wb-log-{esc(e.level)}'>"
            f"<td class='wb-ts'>{esc(fmt_ts(e.timestamp))}</td>"
            f"<td>{level_badge(e.level)}</td><td><b>{esc(e.service)}</b></td>"
            f"<td><details><summary>{esc(short)}</summary>{body}</details></td></tr>"
        )
    return (
        "<table class='wb-table wb-logs-table'><thead><tr><th style='width:170px'>Time (UTC)</th>"
        "<th style='width:70px'>Level</th><th style='width:140px'>Service</th><th>Message</th>"
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


class LogsPage(Page):
    """Search the logs: newest first, filter, page, expand."""

    key = "logs"
    title = "Logs"

    def __init__(
        self,
        settings: Settings,
        clock: Clock | None = None,
        *,
        service: str = "",
        levels: str = "",
        text: str = "",
        range_label: str = DEFAULT_RANGE,
        start: str = "",
        end: str = "",
    ) -> None:
        super().__init__(settings, clock)
        self.link_notice = widgets.HTML(value="")
        self.link_notice.add_class("wb-logs-link-notice")
        self.link: tuple[datetime, datetime | None] | None = None
        try:
            self.link = link_window(start, end)
        except ValidationError as exc:  # a bad link still opens the page, on the default range
            field, _, reason = exc.message.partition(": ")
            self.link_notice.value = (
                f'<div class="wb-muted">The link\'s window was not used: <b>{esc(field)}</b>: '
                f"{esc(reason)}. Showing the {esc(DEFAULT_RANGE)} instead.</div>"
            )
        ranges = list(TIME_RANGES)
        if self.link is not None:
            self.link_option = link_label(*self.link)
            ranges.insert(0, self.link_option)
            range_label = self.link_option
        else:
            self.link_option = ""
        self.page_no = 1
        self.total = 0
        self.result: Any = None
        self._initial_service = service
        self.service = widgets.Dropdown(
            options=[("All services", "")],
            value="",
            description="Service",
            layout=widgets.Layout(width="280px"),
        )
        self.service.add_class("wb-logs-service")
        wanted = {lv.strip().lower() for lv in levels.split(",") if lv.strip()}
        self.level_boxes = {
            lv: widgets.Checkbox(
                value=(lv in wanted) if wanted else True,
                description=lv,
                indent=False,
                layout=widgets.Layout(width="80px"),
            )
            for lv in LEVELS
        }
        for lv, box in self.level_boxes.items():
            box.add_class(f"wb-logs-level-{lv}")
        self.time_range = widgets.Dropdown(
            options=ranges,
            description="Time",
            value=range_label if range_label in ranges else DEFAULT_RANGE,
            # wide enough to read a link's window in full
            layout=widgets.Layout(width="240px" if self.link is None else "470px"),
        )
        self.time_range.add_class("wb-logs-range")
        self.text = widgets.Text(
            value=text,
            placeholder="text in message (case-insensitive)",
            continuous_update=False,
            layout=widgets.Layout(width="320px"),
        )
        self.text.add_class("wb-logs-text")
        self.search_button = widgets.Button(
            description="Search", button_style="primary", icon="search"
        )
        self.search_button.add_class("wb-logs-search")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.add_class("wb-logs-refresh")
        self.prev_button = widgets.Button(
            description="◀ Newer", layout=widgets.Layout(width="100px")
        )
        self.next_button = widgets.Button(
            description="Older ▶", layout=widgets.Layout(width="100px")
        )
        self.prev_button.add_class("wb-logs-prev")
        self.next_button.add_class("wb-logs-next")
        self.pager_label = widgets.HTML()
        self.pager_label.add_class("wb-logs-pager")
        self.table = widgets.HTML()
        self.table.add_class("wb-logs")
        self.search_button.on_click(lambda _b: self.search(page=1))
        self.refresh_button.on_click(lambda _b: self.search(page=self.page_no))
        self.prev_button.on_click(lambda _b: self.search(page=max(1, self.page_no - 1)))
        self.next_button.on_click(lambda _b: self.search(page=self.page_no + 1))
        self.text.observe(lambda _c: self.search(page=1), names="value")
        self._loading = False
        for w in (self.service, self.time_range, *self.level_boxes.values()):
            w.observe(self._on_filter, names="value")
        self.body.children = [
            self.link_notice,
            widgets.HBox([self.service, self.time_range, self.text]),
            widgets.HBox(
                [
                    widgets.HTML("<b>Levels</b>&nbsp;"),
                    *self.level_boxes.values(),
                    self.search_button,
                    self.refresh_button,
                ],
                layout=widgets.Layout(align_items="center"),
            ),
            widgets.HBox(
                [self.prev_button, self.next_button, self.pager_label],
                layout=widgets.Layout(align_items="center"),
            ),
            self.table,
        ]

    def _on_filter(self, _change: dict[str, Any]) -> None:
        if not self._loading:
            self.search(page=1)

    def load(self) -> None:
        """Reload the service list and the current page of results."""
        names = store.services(self.ctx.settings)
        self._loading = True
        try:
            current = self.service.value or self._initial_service
            options = [("All services", "")] + [(n, n) for n in names]
            if current and current not in names:
                options.append((current, current))
            if tuple(self.service.options) != tuple(options):  # keep an open menu open
                self.service.options = options
            self.service.value = current
        finally:
            self._loading = False
        self._search(self.page_no)

    def levels(self) -> list[str]:
        """Return the levels ticked (all ticked means no level filter)."""
        return [lv for lv, box in self.level_boxes.items() if box.value]

    def search(self, page: int = 1) -> None:
        """Run the search for ``page`` and redraw; problems are shown, not raised."""
        try:
            self._search(page)
        except Exception as exc:
            self.error.show(friendly_error(exc, self.ctx.settings))
        else:
            self.error.clear()

    def _search(self, page: int) -> None:
        levels = self.levels()
        if not levels:
            self.result, self.total, self.page_no = None, 0, 1
            self.table.value = '<div class="wb-empty">Tick at least one level.</div>'
            self.pager_label.value = ""
            return
        start: datetime | None
        if self.link is not None and self.time_range.value == self.link_option:
            start, end = self.link[0], self.link[1] or self.ctx.now()
        else:
            start, end = store.window_bounds(self.ctx.now(), TIME_RANGES[self.time_range.value])
        self.result = store.search_logs(
            self.ctx.settings,
            service=self.service.value or None,
            levels=None if len(levels) == len(LEVELS) else levels,
            start=start,
            end=end,
            text=self.text.value.strip() or None,
            page=page,
            limit=PAGE_SIZE,
        )
        self.total = self.result.total
        pages = max(1, -(-self.total // PAGE_SIZE))
        if page > pages and self.total:
            return self._search(pages)
        self.page_no = page
        self.prev_button.disabled = page <= 1
        self.next_button.disabled = page >= pages
        first = (page - 1) * PAGE_SIZE + 1 if self.total else 0
        last = min(page * PAGE_SIZE, self.total)
        self.pager_label.value = (
            f"<span>page {page} of {pages} · events {first}–{last} of <b>{self.total}</b> "
            "· newest first · click a message to expand</span>"
        )
        if self.result.logs:
            self.table.value = logs_table_html(self.result.logs)
        elif len(self.service.options) <= 1:
            self.table.value = (
                '<div class="wb-empty"><b>No logs yet.</b> Send one:'
                f'<code class="wb-curl">{esc(FIRST_LOG_CURL)}</code></div>'
            )
        else:
            self.table.value = (
                '<div class="wb-empty">No events match these filters. Widen the time range or '
                "clear the text.</div>"
            )


def build_logs(
    settings: Settings,
    *,
    service: str = "",
    levels: str = "",
    text: str = "",
    start: str = "",
    end: str = "",
    clock: Clock | None = None,
) -> LogsPage:
    """Return the Logs page with initial filters (``levels`` comma-separated; ``start``/``end``
    the ISO 8601 window of a link, see :func:`link_window`)."""
    return LogsPage(
        settings, clock, service=service, levels=levels, text=text, start=start, end=end
    )


def page_from_query(
    settings: Settings, query: Mapping[str, str], *, clock: Clock | None = None
) -> LogsPage:
    """Return the Logs page of a query string's parameters (:data:`QUERY_DEFAULTS`), as the notebook does."""
    q = {**QUERY_DEFAULTS, **query}
    return build_logs(
        settings,
        service=q["service"],
        levels=q["level"],
        text=q["text"],
        start=q["from"],
        end=q["to"],
        clock=clock,
    )
