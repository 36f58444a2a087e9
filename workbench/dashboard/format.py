"""Text and HTML the dashboard pages draw with: escaping, times, ages, badges, cards.

Pure functions over plain values, no widgets: log content is escaped before it
becomes markup, and times read the way an on-call engineer says them.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from typing import Any

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


def field_error(messages: list[str] | None) -> str:
    """Return the HTML of a form field's inline error (empty when none)."""
    if not messages:
        return ""
    return '<span class="wb-field-error">' + esc("; ".join(messages)) + "</span>"
