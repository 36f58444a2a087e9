"""What every dashboard page shares: the clock seam, timed refresh, error boxes, formatting.

Pages are plain Python objects holding ipywidgets; nothing here needs a browser.
Timed refresh runs on the kernel's asyncio loop (the one ipykernel and Voilà
already run), so it updates the page in place without a reload, and it simply
does not start where no loop runs (plain pytest).
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import ipywidgets as widgets
from IPython.display import display

from workbench.config import Settings
from workbench.errors import NotFound, StorageError, ValidationError, WorkbenchError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: Who the dashboard records as the actor of an acknowledge or resolve.
DASHBOARD_ACTOR = "dashboard"

LEVEL_COLOURS: dict[str, str] = {
    "debug": "#6b7280",
    "info": "#2563eb",
    "warn": "#d97706",
    "error": "#dc2626",
    "fatal": "#7f1d1d",
}
STATUS_COLOURS: dict[str, str] = {
    "open": "#dc2626",
    "acknowledged": "#d97706",
    "resolved": "#16a34a",
}
SEVERITY_COLOURS: dict[str, str] = {
    "critical": "#7f1d1d",
    "warning": "#d97706",
    "info": "#2563eb",
}

FIRST_LOG_CURL = (
    "curl -X POST http://127.0.0.1:4000/api/logs -H 'Content-Type: application/json' "
    "-d '{\"service\":\"auth-service\",\"level\":\"error\",\"message\":\"Failed to authenticate user\"}'"
)


def utc_now() -> datetime:
    """Return the current time, timezone-aware UTC (the default clock of every page)."""
    return datetime.now(UTC)


@dataclass
class PageContext:
    """What a page needs from outside: settings, a clock, and who acts on incidents."""

    settings: Settings
    clock: Clock = field(default=utc_now)
    actor: str = DASHBOARD_ACTOR

    def now(self) -> datetime:
        """Return the page's notion of now (UTC)."""
        return self.clock().astimezone(UTC)


# ---------------------------------------------------------------------------
# Formatting (pure)
# ---------------------------------------------------------------------------


def esc(value: object) -> str:
    """Return ``value`` as HTML-escaped text: log content is shown as text, never markup."""
    return html.escape("" if value is None else str(value), quote=True)


def fmt_ts(t: datetime | None) -> str:
    """Return a UTC timestamp as ``2026-11-26 23:59:01 UTC`` (``—`` for none)."""
    if t is None:
        return "—"
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_age(delta: timedelta) -> str:
    """Return a duration the way a person says it: ``40 s``, ``5 min``, ``3 h``, ``2 d``."""
    s = max(0, int(delta.total_seconds()))
    if s < 90:
        return f"{s} s"
    if s < 90 * 60:
        return f"{s // 60} min"
    if s < 36 * 3600:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def ago(t: datetime | None, now: datetime) -> str:
    """Return ``40 s ago`` for a past time relative to ``now`` (``never`` for none)."""
    if t is None:
        return "never"
    if t > now:
        return "just now"
    return f"{fmt_age(now - t)} ago"


def badge(text: str, colour: str, *, css_class: str = "") -> str:
    """Return the HTML of a coloured pill with escaped ``text``."""
    extra = f" {css_class}" if css_class else ""
    return (
        f'<span class="wb-badge{extra}" style="background:{colour}">{esc(text)}</span>'
    )


def status_badge(status: str) -> str:
    """Return the coloured badge of an incident status."""
    return badge(status, STATUS_COLOURS.get(status, "#6b7280"), css_class=f"wb-status-{status}")


def level_badge(level: str) -> str:
    """Return the coloured badge of a log level."""
    return badge(level, LEVEL_COLOURS.get(level, "#6b7280"), css_class=f"wb-level-{level}")


def card(label: str, value: object, *, colour: str = "#111827", css_class: str = "") -> str:
    """Return the HTML of one summary card (a big number with a label)."""
    return (
        f'<div class="wb-card {esc(css_class)}"><div class="wb-card-value" style="color:{colour}">'
        f'{esc(value)}</div><div class="wb-card-label">{esc(label)}</div></div>'
    )


def cards(items: list[str]) -> str:
    """Return summary cards laid out in one row."""
    return '<div class="wb-cards">' + "".join(items) + "</div>"


def truncate(text: str, n: int) -> str:
    """Return ``text`` cut to ``n`` characters with an ellipsis when longer."""
    return text if len(text) <= n else text[: n - 1] + "…"


def pretty_json(value: Any) -> str:
    """Return JSON indented for reading (plain text; escape before showing)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str, ensure_ascii=False)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _person_message(err: Mapping[str, Any]) -> str:
    kind = str(err.get("type", ""))
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind == "missing":
        return "is required"
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    return msg.replace("Input should be", "must be").replace("String should have", "must have")


def validation_messages(exc: Exception) -> dict[str, list[str]]:
    """Return ``{field (snake_case): [messages]}`` from a pydantic or workbench ValidationError."""
    if isinstance(exc, ValidationError):
        return {_snake(k): list(v) for k, v in exc.details.items()} or {"": [exc.message]}
    errors = getattr(exc, "errors", None)
    if callable(errors):
        out: dict[str, list[str]] = {}
        for err in errors():
            loc = err.get("loc") or ("",)
            name = _snake(str(loc[0])) if loc else ""
            out.setdefault(name, []).append(_person_message(err))
        return out
    return {"": [str(exc)]}


def friendly_error(exc: BaseException, settings: Settings | None = None) -> str:
    """Return a sentence a person can act on for an exception (no stack trace)."""
    name = type(exc).__name__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if isinstance(exc, ValidationError):
        parts = [f"{k}: {'; '.join(v)}" if k else "; ".join(v) for k, v in exc.details.items()]
        return "Invalid input — " + (", ".join(parts) if parts else exc.message)
    if isinstance(exc, NotFound):
        return f"Not found: {text}. It may have been deleted; the list has been refreshed."
    if isinstance(exc, WorkbenchError) and not isinstance(exc, StorageError):
        return text
    module = type(exc).__module__
    if module.startswith("sqlalchemy") or name in {"OperationalError", "DatabaseError"}:
        where = _redact(settings.database_url) if settings else "the catalog database"
        return (
            f"The catalog database ({where}) is unreachable or not ready: {truncate(text, 200)}. "
            "Check that it is running and that DATABASE_URL is right; the page retries on refresh."
        )
    if module.startswith(("polars", "pyarrow")) or isinstance(exc, (OSError, StorageError)):
        where = settings.lake_url if settings else "the log lake"
        return (
            f"The log lake ({where}) cannot be read: {truncate(text, 200)}. "
            "Check WORKBENCH_LAKE_URL and the disk or object store; the page retries on refresh."
        )
    return f"Something went wrong ({name}): {truncate(text, 300)}"


def _redact(url: str) -> str:
    """Return a database URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url


# ---------------------------------------------------------------------------
# Widgets
# ---------------------------------------------------------------------------


def cell(value: str, width: str) -> widgets.HTML:
    """Return one table cell (HTML) of a fixed width (``auto`` takes the remaining space)."""
    grow = "1 1 auto" if width == "auto" else "0 0 auto"
    w = widgets.HTML(value=value, layout=widgets.Layout(width=width, flex=grow))
    w.add_class("wb-cell")
    return w


class EnableToggle:
    """A row's Enabled/Disabled button: each click is persisted; a failed one reverts and says why.

    ``persist(enabled)`` stores the new state (raising on failure); ``failed(exc)`` shows
    the failure. :meth:`show` draws a state read from the catalog without persisting it
    (first draw, periodic refresh, revert).
    """

    def __init__(
        self,
        enabled: bool,
        css_class: str,
        *,
        persist: Callable[[bool], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        self.button = widgets.ToggleButton(value=enabled, layout=widgets.Layout(width="110px"))
        self.button.add_class(css_class)
        self._persist, self._failed = persist, failed
        self._quiet = False
        self.button.observe(self._changed, names="value")
        self.show(enabled)

    def show(self, enabled: bool) -> None:
        """Draw ``enabled`` (value, label, colour, icon) without persisting it."""
        b = self.button
        self._quiet = True
        try:
            b.value = enabled
        finally:
            self._quiet = False
        b.description = "Enabled" if enabled else "Disabled"
        b.button_style = "success" if enabled else ""
        b.icon = "toggle-on" if enabled else "toggle-off"

    def _changed(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        try:
            self._persist(bool(change["new"]))
        except Exception as exc:
            self.show(bool(change["old"]))
            self._failed(exc)


def header_row(titles: tuple[str, ...], widths: tuple[str, ...]) -> widgets.HBox:
    """Return the header row of a widget table."""
    row = widgets.HBox([cell(f"{esc(t)}", w) for t, w in zip(titles, widths, strict=True)])
    row.add_class("wb-row-head")
    return row


def field_error(messages: list[str] | None) -> str:
    """Return the HTML of a form field's inline error (empty when none)."""
    if not messages:
        return ""
    return '<span class="wb-field-error">' + esc("; ".join(messages)) + "</span>"


class ErrorBox:
    """A red box that says what went wrong in words, hidden while there is nothing to say."""

    def __init__(self, css_class: str = "wb-error") -> None:
        self.widget = widgets.HTML(value="", layout=widgets.Layout(display="none"))
        self.widget.add_class(css_class)
        self.message = ""

    def show(self, message: str) -> None:
        """Show ``message`` (plain text, escaped)."""
        self.message = message
        self.widget.value = f'<div class="wb-error-box">⚠ {esc(message)}</div>'
        self.widget.layout.display = None

    def clear(self) -> None:
        """Hide the box."""
        self.message = ""
        self.widget.value = ""
        self.widget.layout.display = "none"


class AutoRefresher:
    """Call ``callback`` every ``interval_s`` seconds on the running asyncio loop (0 = never)."""

    def __init__(self, callback: Callable[[], None], interval_s: float) -> None:
        self.callback = callback
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Return whether the timer is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start the timer on the kernel's loop; return False when disabled or no loop runs."""
        if self.interval_s <= 0 or self.running:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                return False
        if not loop.is_running():
            # ipykernel runs its loop while executing cells; plain scripts and tests do not.
            return False
        self._task = loop.create_task(self._run())
        return True

    def stop(self) -> None:
        """Stop the timer."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.callback()
            except Exception:  # the page shows its own error box; keep ticking
                log.debug("dashboard refresh failed", exc_info=True)


def request_params(
    defaults: Mapping[str, str] | None = None, *, prepare: Settings | None = None
) -> dict[str, str]:
    """Return the page's query-string parameters (``?incident=…``), waiting for the request.

    With pre-heated kernels Voilà runs the notebook before any browser asks for
    it; ``wait_for_request`` pauses here until the request arrives, so the data
    below is loaded fresh and the query string is the visitor's. With
    ``prepare``, the catalog is opened first, while nobody is waiting.
    """
    import os
    from urllib.parse import parse_qsl

    if prepare is not None:
        from workbench.dashboard import store

        store.prepare(prepare)
    out = dict(defaults or {})
    try:
        from voila.utils import wait_for_request

        wait_for_request()
    except Exception:  # not under Voilà (JupyterLab, papermill, tests)
        pass
    query = os.environ.get("QUERY_STRING", "")
    for key, value in parse_qsl(query, keep_blank_values=False):
        out[key] = value
    return out


class Page:
    """Base of the dashboard pages: navigation, heartbeat, error box, content and timed refresh."""

    key = ""
    title = ""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        from workbench.dashboard.nav import ApiMode, Heartbeat, nav_bar

        self.ctx = PageContext(settings=settings, clock=clock or utc_now)
        self.heartbeat = Heartbeat(self.ctx)
        self.api_mode = ApiMode(self.ctx)
        self.error = ErrorBox()
        self.status = widgets.HTML(value="")
        self.status.add_class("wb-updated")
        self.body = widgets.VBox([])
        self.body.add_class("wb-body")
        header = widgets.HTML(value=f'<h1 class="wb-title">{esc(self.title)}</h1>')
        self.widget = widgets.VBox(
            [style_widget(), nav_bar(self.key, self.heartbeat.widget, self.api_mode.widget),
             header, self.error.widget,
             self.body, self.status]
        )
        self.widget.add_class("wb-page")
        self.widget.add_class(f"wb-page-{self.key}")
        self.refresher = AutoRefresher(self.refresh, settings.refresh_interval_s)

    def refresh(self) -> None:
        """Reload the page's data from the catalog and lake and redraw it."""
        self.heartbeat.refresh()
        self.api_mode.refresh()
        try:
            self.load()
        except Exception as exc:  # shown to a person, never as a traceback
            # debug, not warning: a kernel prints warnings to stderr, i.e. onto the page.
            log.debug("dashboard %s refresh failed", self.key, exc_info=True)
            self.error.show(friendly_error(exc, self.ctx.settings))
        else:
            self.error.clear()
        self.status.value = (
            f'<span class="wb-muted">updated {esc(fmt_ts(self.ctx.now()))}'
            + (
                f" · refreshes every {self.ctx.settings.refresh_interval_s} s"
                if self.ctx.settings.refresh_interval_s > 0
                else ""
            )
            + "</span>"
        )

    def load(self) -> None:
        """Load and draw the page's data (each page overrides this)."""

    def show(self) -> None:
        """Display the page, load its data and start the timed refresh."""
        display(self.widget)
        self.refresh()
        self.refresher.start()


def style_widget() -> widgets.HTML:
    """Return the page's stylesheet as a (hidden) HTML widget."""
    w = widgets.HTML(value=f"<style>{_CSS}</style>")
    w.add_class("wb-style")
    return w


_CSS = """
.wb-page { max-width: 1200px; margin: 0 auto; font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; }
.wb-navbar { background:#111827; border-radius: 8px; margin-bottom: 8px; padding: 0 12px 0 0; }
.wb-nav { display:flex; align-items:center; gap: 4px; padding: 8px 12px; }
.wb-nav a { color:#d1d5db; text-decoration:none; padding: 6px 12px; border-radius: 6px; font-weight:500; }
.wb-nav a:hover { background:#374151; color:#fff; }
.wb-nav a.wb-active { background:#2563eb; color:#fff; }
.wb-nav .wb-brand { color:#fff; font-weight:700; margin-right: 16px; }
.wb-heartbeat { margin-left:auto; flex: 0 0 auto; }
.wb-hb { display:inline-block; padding: 4px 10px; border-radius: 999px; font-size: 13px; font-weight:600; }
.wb-hb-ok { background:#dcfce7; color:#166534; }
.wb-hb-stale { background:#fee2e2; color:#991b1b; }
.wb-hb-unknown { background:#fef3c7; color:#92400e; }
.wb-mode { display:inline-block; margin-right: 8px; padding: 4px 10px; border-radius: 999px; font-size: 13px; background:#f3f4f6; color:#374151; }
.wb-mode-open { background:#fef3c7; color:#92400e; }
.wb-page .widget-hbox { gap: 6px; }
.wb-title { font-size: 24px; margin: 8px 0 4px 0; }
.wb-badge { display:inline-block; color:#fff; padding: 2px 8px; border-radius: 999px;
            font-size: 12px; font-weight:600; line-height: 18px; }
.wb-cards { display:flex; gap: 12px; margin: 8px 0; flex-wrap: wrap; }
.wb-card { border:1px solid #e5e7eb; border-radius: 8px; padding: 10px 16px; min-width: 140px; background:#fff; }
.wb-card-value { font-size: 26px; font-weight:700; }
.wb-card-label { color:#6b7280; font-size: 13px; }
.wb-error-box { background:#fef2f2; border:1px solid #fecaca; color:#991b1b; padding: 10px 14px;
                border-radius: 8px; margin: 6px 0; }
.wb-ok-box { background:#f0fdf4; border:1px solid #bbf7d0; color:#166534; padding: 8px 12px; border-radius: 8px; }
.wb-info-box { background:#eff6ff; border:1px solid #bfdbfe; color:#1e3a8a; padding: 10px 14px; border-radius: 8px; }
.wb-field-error { color:#b91c1c; font-size: 13px; }
.wb-muted { color:#6b7280; font-size: 12px; }
.wb-row { border-bottom: 1px solid #e5e7eb; padding: 4px 0; }
.wb-row > .widget-hbox { align-items: center; }
.wb-row-head { font-weight: 600; color:#374151; border-bottom: 2px solid #d1d5db; }
.wb-cell { padding: 0 6px; overflow: hidden; text-overflow: ellipsis; }
.wb-table { border-collapse: collapse; width: 100%; font-size: 13px; }
.wb-table th { text-align:left; border-bottom: 2px solid #d1d5db; padding: 6px; color:#374151; }
.wb-table td { border-bottom: 1px solid #e5e7eb; padding: 4px 6px; vertical-align: top; }
.wb-logs-table td:nth-child(3) { white-space: nowrap; }
.wb-table td.wb-ts { white-space: nowrap; color:#374151; font-family: ui-monospace, monospace; font-size: 12px; }
.wb-table details summary { cursor: pointer; }
.wb-table pre { background:#f9fafb; border:1px solid #e5e7eb; padding: 6px; white-space: pre-wrap;
                word-break: break-word; margin: 4px 0; font-size: 12px; }
.wb-empty { color:#374151; padding: 16px; border: 1px dashed #d1d5db; border-radius: 8px; background:#f9fafb; }
.wb-empty code, .wb-code { display:block; background:#111827; color:#e5e7eb; padding: 10px; border-radius: 6px;
                           white-space: pre-wrap; word-break: break-all; font-size: 12px; margin-top: 6px; }
.wb-section { font-size: 16px; font-weight: 600; margin: 14px 0 4px 0; }
.wb-timeline li { margin: 2px 0; }
.wb-active-list { margin: 4px 0; padding-left: 18px; }
.wb-active-list li { margin: 3px 0; }
.wb-kv th { width: 130px; border-bottom: 1px solid #f3f4f6; padding: 3px 6px; font-weight: 600; }
.wb-kv td { padding: 3px 6px; border-bottom: 1px solid #f3f4f6; }
"""
