"""Navigation between the dashboard pages, the "is the alerting alive" indicator and the API mode."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import ipywidgets as widgets

from workbench.catalog.models import EvaluationRun
from workbench.dashboard import store
from workbench.dashboard.context import PageContext
from workbench.dashboard.format import ago, esc, fmt_age, fmt_ts

#: (key, link text, notebook file): the pages, in menu order. Links are relative, so the
#: dashboard works under any base URL (``/voila/render/<file>``).
PAGES: tuple[tuple[str, str, str], ...] = (
    ("overview", "Overview", "overview.ipynb"),
    ("logs", "Logs", "logs.ipynb"),
    ("incidents", "Incidents", "incidents.ipynb"),
    ("rules", "Alert rules", "rules.ipynb"),
    ("notifications", "Notifications", "notifications.ipynb"),
)


def page_href(key: str, query: str = "") -> str:
    """Return the relative link to a page, e.g. ``incidents.ipynb?incident=…``."""
    for k, _, file in PAGES:
        if k == key:
            return file + (f"?{query}" if query else "")
    raise KeyError(key)


def nav_html(current: str) -> str:
    """Return the HTML of the navigation bar with ``current`` highlighted."""
    links = "".join(
        f'<a class="wb-nav-{key}{" wb-active" if key == current else ""}" href="{file}">{esc(title)}</a>'
        for key, title, file in PAGES
    )
    return f'<div class="wb-nav"><span class="wb-brand">Log Workbench</span>{links}</div>'


def nav_bar(
    current: str, heartbeat: widgets.Widget, *indicators: widgets.Widget
) -> widgets.Widget:
    """Return the navigation bar widget with the heartbeat (and ``indicators``) on its right."""
    links = widgets.HTML(value=nav_html(current), layout=widgets.Layout(flex="1 1 auto"))
    links.add_class("wb-nav-links")
    bar = widgets.HBox(
        [links, *indicators, heartbeat], layout=widgets.Layout(align_items="center")
    )
    bar.add_class("wb-navbar")
    bar.add_class(f"wb-navbar-{current}")
    return bar


@dataclass(frozen=True, slots=True)
class HeartbeatState:
    """What the indicator says: ``ok`` | ``stale`` | ``unknown``, the sentence, and a tooltip."""

    state: str
    text: str
    detail: str


def describe_heartbeat(
    run: EvaluationRun | None, now: datetime, *, stale_after: timedelta
) -> HeartbeatState:
    """Return the indicator for the latest evaluation run at ``now`` (pure).

    Fresh means the last run *finished* (ok or error) within ``stale_after``; a run
    still going counts by its start. An errored run is red even when recent: the
    on-call engineer must know that rules are not being evaluated.
    """
    if run is None:
        return HeartbeatState("stale", "alerting has never run", "no evaluation run recorded")
    last = run.finished_at or run.started_at
    age = now - last
    detail = f"last run {run.status}, started {fmt_ts(run.started_at)}"
    if run.node:
        detail += f" on node {run.node}"
    if run.status == "error":
        err = (run.error or "").strip().splitlines()
        return HeartbeatState(
            "stale", f"alerting failed {ago(last, now)}", detail + (f": {err[0]}" if err else "")
        )
    if age > stale_after:
        return HeartbeatState("stale", f"alerting has not run for {fmt_age(age)}", detail)
    if run.finished_at is None:
        return HeartbeatState("ok", f"alerting running since {fmt_age(age)}", detail)
    return HeartbeatState("ok", f"alerting ran {ago(last, now)}", detail)


class Heartbeat:
    """The indicator widget: green "alerting ran 40 s ago", red "alerting has not run for 5 min"."""

    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.state = HeartbeatState("unknown", "alerting status unknown", "")
        self.widget = widgets.HTML(value=self._html())
        self.widget.add_class("wb-heartbeat")

    @property
    def stale_after(self) -> timedelta:
        """Return how old the last run may be before the indicator turns red (3 ticks, ≥ 3 min)."""
        return timedelta(seconds=max(180, 3 * self.ctx.settings.evaluate_interval_s))

    def refresh(self) -> None:
        """Read the latest evaluation run and redraw the indicator."""
        try:
            with store.session_for(self.ctx.settings) as session:
                run = store.latest_run(session)
            self.state = describe_heartbeat(run, self.ctx.now(), stale_after=self.stale_after)
        except Exception as exc:
            self.state = HeartbeatState(
                "unknown", "alerting status unknown (catalog unreachable)", type(exc).__name__
            )
        self.widget.value = self._html()

    def _html(self) -> str:
        icon = {"ok": "●", "stale": "▲", "unknown": "?"}[self.state.state]
        return (
            f'<span class="wb-hb wb-hb-{self.state.state}" title="{esc(self.state.detail)}">'
            f"{icon} {esc(self.state.text)}</span>"
        )


#: The API mode as the header shows it: (text, tooltip) by mode.
API_MODES = {
    "open": ("API open (no keys)", "No API key exists yet, so the API serves loopback "
             "requests without one. Creating the first key switches it to keyed."),
    "keyed": ("API keyed", "Every request to /api/ and /v1/logs needs an API key; revoking "
              "keys does not reopen the API."),
    "unknown": ("API mode unknown", "The catalog could not be read."),
}


class ApiMode:
    """The header badge saying whether the API is open (no key created yet) or keyed."""

    def __init__(self, ctx: PageContext) -> None:
        self.ctx = ctx
        self.mode = "unknown"
        self.widget = widgets.HTML(value=self._html())
        self.widget.add_class("wb-api-mode")

    def refresh(self) -> None:
        """Read from the catalog whether any API key was ever created and redraw the badge."""
        from workbench.security.keys import keys_configured

        try:
            with store.session_for(self.ctx.settings) as session:
                self.mode = "keyed" if keys_configured(session=session) else "open"
        except Exception:
            self.mode = "unknown"
        self.widget.value = self._html()

    def _html(self) -> str:
        text, detail = API_MODES[self.mode]
        return (
            f'<span class="wb-mode wb-mode-{self.mode}" title="{esc(detail)}">{esc(text)}</span>'
        )
