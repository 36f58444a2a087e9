"""The Alert rules page: summary, create form with inline errors, backtest, edit, toggle, delete.

The create form and the editor of an existing rule are two uses of one field
builder (:class:`RuleFields` over :data:`RULE_FIELDS`). Every rule kind
(``docs/alerting.md``, "Rule kinds") is created and edited there: a kind selector
shows the fields of the chosen kind (:data:`KIND_SHOWS`) and sends only those, the
API's errors appear beside the field they name, and "Preview" replays the unsaved
rule over the last 24 hours before it is saved. Flap control and reminders
(``pendingMinutes``, ``repeatMinutes``, ``recoveryThreshold``: ``docs/alerting.md``,
"Flap control and re-notify") sit in a collapsed "Advanced" section of both forms.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.catalog.models import AlertRule
from workbench.catalog.rules import kind_changes
from workbench.catalog.schemas import RuleCreate, RuleUpdate
from workbench.clock import Clock
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.charts import show_figure
from workbench.dashboard.errors import friendly_error, validation_messages
from workbench.dashboard.format import (
    SEVERITY_COLOURS,
    ago,
    badge,
    card,
    cards,
    esc,
    field_error,
    fmt_ts,
)
from workbench.dashboard.page import Page
from workbench.dashboard.widgets import EnableToggle, cell, header_row
from workbench.lake.schema import LEVELS

_COLS = ("240px", "220px", "120px", "140px", "120px", "auto")
BACKTEST_DAYS = 7
PREVIEW_SPAN = timedelta(hours=24)

#: The rule kinds as the selector offers them.
KIND_LABELS: dict[str, str] = {
    "threshold": "Threshold: at least N events",
    "ratio": "Ratio: percent of the service's events",
    "absence": "Absence: the service goes quiet",
    "match": "Match: a message text",
    "new_pattern": "New pattern: a message not seen before",
    "anomaly": "Anomaly: unusual for the time of day",
}
#: The fields that depend on the kind, and which of them each kind shows (the others are
#: hidden and not sent: the API refuses a field its kind does not use).
KIND_DEPENDENT = frozenset(
    {"levels", "message_contains", "match", "min_events", "baseline_days", "sensitivity"}
)
KIND_SHOWS: dict[str, frozenset[str]] = {
    "threshold": frozenset({"levels", "message_contains"}),
    "ratio": frozenset({"levels", "min_events"}),
    "absence": frozenset(),  # it counts events of every level
    "match": frozenset({"levels", "match"}),
    "new_pattern": frozenset({"levels", "baseline_days"}),
    "anomaly": frozenset({"levels", "baseline_days", "sensitivity"}),
}
#: How the threshold reads for each kind: its label and help line.
THRESHOLD_TEXT: dict[str, tuple[str, str]] = {
    "threshold": (
        "Threshold (errors)",
        "alert when at least this many matching events fall in the window",
    ),
    "ratio": (
        "Threshold (%)",
        "alert when events of the levels are at least this percent of "
        "all the service's events in the window",
    ),
    "absence": (
        "Fewer than (events)",
        "alert when the service logs fewer events than this in the window",
    ),
    "match": (
        "Threshold (matches)",
        "alert when at least this many events of the levels contain the text",
    ),
    "new_pattern": (
        "Threshold (occurrences)",
        "alert when a message pattern unseen in the baseline occurs this often",
    ),
    "anomaly": (
        "Floor (events)",
        "alert only with at least this many events, and above the "
        "seasonal baseline (median + sensitivity × MAD)",
    ),
}


#: How the recovery threshold reads: resolve once the value is past it, on the quiet side
#: (below for every kind but absence, at or above for absence: ``docs/alerting.md``).
RECOVERY_HELP: dict[str, str] = {
    "absence": "resolve only once at least this many events arrive again "
    "(at or above the threshold; blank: the threshold)",
    "ratio": "resolve only once the percent is below this (at most the threshold; "
    "blank: the threshold)",
}
RECOVERY_HELP_DEFAULT = (
    "resolve only once the value is below this (at most the threshold; blank: the threshold)"
)
#: The fields of the collapsed "Advanced" section (issue 15), in both forms.
ADVANCED = ("pending_minutes", "repeat_minutes", "recovery_threshold")
ADVANCED_TITLE = "Advanced: flap control and reminders"


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """How one rule field is asked for: label, input kind, help line, what a blank means."""

    label: str
    kind: str = "text"  # text | service | levels | severity | kind
    placeholder: str = ""
    help: str = ""
    blank: Any = ""  # the value a blank input stands for ("" lets the validator name it)


#: Every field a rule form can show, in display order. The create form shows all of
#: them, the editor of an existing rule :data:`EDITABLE`; a later rule kind adds its
#: fields here and lists the ones its forms show.
RULE_FIELDS: dict[str, FieldSpec] = {
    "name": FieldSpec("Name", placeholder="e.g. auth error burst"),
    "service": FieldSpec("Service", "service", placeholder="service name as in the logs"),
    "kind": FieldSpec("Kind", "kind", help="what makes the rule fire"),
    "threshold": FieldSpec(
        "Threshold (errors)",
        help="alert when at least this many matching events fall in the window",
    ),
    "window_minutes": FieldSpec("Window (minutes)", help="1 to 1440"),
    "cooldown_minutes": FieldSpec(
        "Cooldown (minutes)",
        help="minimum time between two alerts of this rule (0 to 10080)",
        blank="0",
    ),
    "auto_resolve_minutes": FieldSpec(
        "Auto-resolve (minutes)",
        placeholder="optional",
        help="resolve by itself after this long without a breach (blank: people resolve)",
        blank=None,
    ),
    "levels": FieldSpec("Levels", "levels"),
    "message_contains": FieldSpec("Message contains", placeholder="optional", blank=None),
    "match": FieldSpec(
        "Message matches",
        placeholder="text in the message",
        help="case-insensitive literal text",
        blank=None,
    ),
    "min_events": FieldSpec(
        "Minimum events",
        placeholder="20",
        help="fire only with at least this many events in the window",
        blank=None,
    ),
    "baseline_days": FieldSpec(
        "Baseline (days)",
        placeholder="7",
        help="the days before today it compares with (1 to 28)",
        blank=None,
    ),
    "sensitivity": FieldSpec(
        "Sensitivity",
        placeholder="3",
        help="how many MADs above the median counts as unusual",
        blank=None,
    ),
    "severity": FieldSpec("Severity", "severity"),
    "pending_minutes": FieldSpec(
        "Pending (minutes)",
        placeholder="optional",
        help="open an incident only once the breach has held this long (blank: at once)",
        blank=None,
    ),
    "repeat_minutes": FieldSpec(
        "Repeat every (minutes)",
        placeholder="never",
        help="page again while the incident is open and not acknowledged (blank: never)",
        blank=None,
    ),
    "recovery_threshold": FieldSpec(
        "Recovery threshold",
        placeholder="the threshold",
        help=RECOVERY_HELP_DEFAULT,  # worded per kind (RECOVERY_HELP)
        blank=None,
    ),
}
NEW_RULE_DEFAULTS: dict[str, Any] = {
    "kind": "threshold",
    "threshold": "10",
    "window_minutes": "5",
    "cooldown_minutes": "15",
    "levels": ("error", "fatal"),
    "severity": "warning",
}
#: What the editor of an existing rule changes (tuning, and the levels it counts).
EDITABLE = ("threshold", "window_minutes", "cooldown_minutes", "auto_resolve_minutes", "levels")
#: The editor's kind selector and kind fields (shown per kind, like the create form's).
KIND_EDITABLE = ("kind", "match", "min_events", "baseline_days", "sensitivity")
#: What the editor shows, in order (the :data:`ADVANCED` fields in their collapsed section).
EDITOR_FIELDS = (KIND_EDITABLE[0], *EDITABLE, *KIND_EDITABLE[1:], *ADVANCED)


def condition_text(rule: Any) -> str:
    """Return a rule's condition in a few words (``≥ 10 in 5 min``, ``≥ 20% of events in 10 min``).

    Flap control and reminders follow when set: ``… for 2 min · repeats every 30 min ·
    recovers below 3`` (``recovers at or above 5`` for absence).
    """
    return _breach_text(rule) + "".join(
        f" · {part}" if i else f" {part}" for i, part in enumerate(_flap_parts(rule))
    )


def _flap_parts(rule: Any) -> list[str]:
    parts: list[str] = []
    pending = getattr(rule, "pending_minutes", None)
    repeat = getattr(rule, "repeat_minutes", None)
    recovery = getattr(rule, "recovery_threshold", None)
    if pending:
        parts.append(f"for {pending} min")
    if repeat:
        parts.append(f"repeats every {repeat} min")
    if recovery is not None:
        kind = getattr(rule, "kind", None) or "threshold"
        unit = "%" if kind == "ratio" else ""
        side = "at or above" if kind == "absence" else "below"
        parts.append(f"recovers {side} {recovery:g}{unit}")
    return parts


def _breach_text(rule: Any) -> str:
    t, w = rule.threshold, rule.window_minutes
    kind = getattr(rule, "kind", None) or "threshold"
    if kind == "ratio":
        return f"≥ {t}% of events in {w} min"
    if kind == "absence":
        return f"< {t} events in {w} min"
    if kind == "match":
        return f"“{rule.match}” ≥ {t} in {w} min"
    if kind == "new_pattern":
        return f"new message ≥ {t} in {w} min"
    if kind == "anomaly":
        return f"unusual (≥ {t}, > median + {rule.sensitivity:g}×MAD) in {w} min"
    return f"≥ {t} in {w} min"


def rule_values(rule: AlertRule, names: Sequence[str]) -> dict[str, Any]:
    """Return the inputs' values showing ``rule`` (numbers as text, blanks for unset)."""
    out: dict[str, Any] = {}
    for name in names:
        value = getattr(rule, name)
        if name == "levels":
            out[name] = tuple(value or ())
        elif name == "kind":
            out[name] = value or "threshold"
        elif isinstance(value, float):
            out[name] = f"{value:g}"
        else:
            out[name] = "" if value is None else str(value)
    return out


class RuleFields:
    """The inputs of some rule fields, each with its inline error line and help.

    Built from :data:`RULE_FIELDS`; the create form and the editor are two uses.
    ``css`` and ``error_css`` prefix the classes (``wb-rule-threshold``, ``wb-error-threshold``).
    """

    def __init__(
        self,
        names: Sequence[str],
        values: Mapping[str, Any] | None = None,
        *,
        css: str = "wb-rule",
        error_css: str = "wb-error",
        service_options: Sequence[str] = (),
    ) -> None:
        lay = widgets.Layout(width="360px")
        style = {"description_width": "150px"}
        values = values or {}
        self.names = tuple(names)
        self.inputs: dict[str, Any] = {}
        self.errors: dict[str, widgets.HTML] = {}
        self.hints: dict[str, widgets.HTML] = {}
        self.rows: list[widgets.Widget] = []
        self.rows_by_name: dict[str, widgets.HBox] = {}
        advanced_rows: list[widgets.Widget] = []
        for name in self.names:
            spec = RULE_FIELDS[name]
            w: Any
            if spec.kind == "service":
                w = widgets.Combobox(
                    description=spec.label,
                    value=values.get(name, ""),
                    options=list(service_options),
                    placeholder=spec.placeholder,
                    ensure_option=False,
                    layout=lay,
                    style=style,
                )
            elif spec.kind == "levels":
                w = widgets.SelectMultiple(
                    options=list(LEVELS),
                    value=values.get(name, ()),
                    description=spec.label,
                    rows=5,
                    layout=lay,
                    style=style,
                )
            elif spec.kind == "kind":
                w = widgets.Dropdown(
                    options=[(label, k) for k, label in KIND_LABELS.items()],
                    value=values.get(name, "threshold"),
                    description=spec.label,
                    layout=lay,
                    style=style,
                )
            elif spec.kind == "severity":
                w = widgets.Dropdown(
                    options=list(SEVERITY_COLOURS),
                    value=values.get(name, "warning"),
                    description=spec.label,
                    layout=lay,
                    style=style,
                )
            else:
                w = widgets.Text(
                    description=spec.label,
                    value=values.get(name, ""),
                    placeholder=spec.placeholder,
                    layout=lay,
                    style=style,
                )
            slug = name.replace("_", "-")
            w.add_class(f"{css}-{slug}")
            err = widgets.HTML()
            err.add_class(f"{error_css}-{slug}")
            hint = widgets.HTML(f'<span class="wb-muted">{esc(spec.help)}</span>')
            self.inputs[name] = w
            self.errors[name] = err
            self.hints[name] = hint
            row = widgets.HBox(
                [w, widgets.VBox([err, hint])], layout=widgets.Layout(align_items="center")
            )
            row.add_class(f"{css}-row-{slug}")
            (advanced_rows if name in ADVANCED else self.rows).append(row)
            self.rows_by_name[name] = row
        #: The collapsed "Advanced" section holding the :data:`ADVANCED` fields (None without them).
        self.advanced: widgets.Accordion | None = None
        if advanced_rows:
            self.advanced = widgets.Accordion(
                children=[widgets.VBox(advanced_rows)], selected_index=None
            )
            self.advanced.set_title(0, ADVANCED_TITLE)
            self.advanced.add_class(f"{css}-advanced")
            self.rows.append(self.advanced)
        if "kind" in self.inputs:
            self.inputs["kind"].observe(lambda change: self.show_kind(change["new"]), "value")
        self.show_kind(self.kind)

    @property
    def kind(self) -> str:
        """Return the kind chosen (``threshold`` when these fields have no kind selector)."""
        w = self.inputs.get("kind")
        return str(w.value) if w is not None else "threshold"

    def shown(self, name: str) -> bool:
        """Return whether the field ``name`` is shown for the chosen kind."""
        return name not in KIND_DEPENDENT or name in KIND_SHOWS.get(self.kind, frozenset())

    def show_kind(self, kind: str) -> None:
        """Show the fields of ``kind`` (hide the others) and word the threshold for it."""
        for name, row in self.rows_by_name.items():
            row.layout.display = None if self.shown(name) else "none"
        label, help_ = THRESHOLD_TEXT.get(kind, THRESHOLD_TEXT["threshold"])
        if "threshold" in self.inputs:
            self.inputs["threshold"].description = label
            self.hints["threshold"].value = f'<span class="wb-muted">{esc(help_)}</span>'
        if "recovery_threshold" in self.hints:
            recovery = RECOVERY_HELP.get(kind, RECOVERY_HELP_DEFAULT)
            self.hints[
                "recovery_threshold"
            ].value = f'<span class="wb-muted">{esc(recovery)}</span>'
        self.clear_errors()

    def open_advanced(self, shown: bool = True) -> None:
        """Expand (or collapse) the "Advanced" section."""
        if self.advanced is not None:
            self.advanced.selected_index = 0 if shown else None

    def set_values(self, values: Mapping[str, Any]) -> None:
        """Show ``values`` in the inputs (and clear the errors)."""
        for name, value in values.items():
            if name in self.inputs:
                self.inputs[name].value = value
        if any(name in values for name in ADVANCED):  # open when it holds something
            self.open_advanced(any(values.get(name) not in (None, "") for name in ADVANCED))
        self.clear_errors()

    def values(self) -> dict[str, Any]:
        """Return the shown inputs as the dict the rule schemas validate (numbers still as typed).

        Fields the chosen kind does not use are left out (the API refuses them).
        """
        out: dict[str, Any] = {}
        for name, w in self.inputs.items():
            if not self.shown(name):
                continue
            value = w.value
            if isinstance(value, tuple):
                out[name] = list(value)
            elif isinstance(value, str):
                value = value.strip()
                out[name] = value if value else RULE_FIELDS[name].blank
            else:
                out[name] = value
        return out

    def clear_errors(self) -> None:
        """Empty every inline error line."""
        for err in self.errors.values():
            err.value = ""

    def show_errors(self, exc: Exception) -> list[str]:
        """Show each field's messages of ``exc`` inline; return the fields named (sorted)."""
        messages = validation_messages(exc)
        for name, msgs in messages.items():
            target = self.errors.get(name)
            if target is not None:
                target.value = field_error(msgs)
                if name in ADVANCED:
                    self.open_advanced()
        return sorted(k for k in messages if k)


class RuleForm:
    """The new-rule form: fields, one inline error line per field, create and backtest buttons."""

    FIELDS = tuple(RULE_FIELDS)

    def __init__(self, page: RulesPage, service: str = "") -> None:
        self.page = page
        self.fields = RuleFields(self.FIELDS, {**NEW_RULE_DEFAULTS, "service": service})
        f = self.fields.inputs
        self.name, self.service, self.threshold = f["name"], f["service"], f["threshold"]
        self.window, self.cooldown, self.levels = (
            f["window_minutes"],
            f["cooldown_minutes"],
            f["levels"],
        )
        self.auto_resolve, self.message, self.severity = (
            f["auto_resolve_minutes"],
            f["message_contains"],
            f["severity"],
        )
        self.kind = f["kind"]
        self.errors = self.fields.errors
        self.create_button = widgets.Button(
            description="Create rule", button_style="primary", icon="plus"
        )
        self.create_button.add_class("wb-rule-create")
        self.backtest_button = widgets.Button(
            description=f"Try on last {BACKTEST_DAYS} days",
            icon="history",
            layout=widgets.Layout(width="200px"),
        )
        self.backtest_button.add_class("wb-rule-backtest")
        self.preview_button = widgets.Button(
            description="Preview (last 24 h)", icon="eye", layout=widgets.Layout(width="180px")
        )
        self.preview_button.add_class("wb-rule-preview")
        self.create_button.on_click(lambda _b: self.submit())
        self.backtest_button.on_click(lambda _b: self.try_backtest())
        self.preview_button.on_click(lambda _b: self.preview())
        self.result = widgets.HTML()
        self.result.add_class("wb-form-result")
        self.backtest_result = widgets.HTML()
        self.backtest_result.add_class("wb-backtest-result")
        self.backtest_chart = widgets.Output()
        self.backtest_chart.add_class("wb-backtest-chart")
        self.backtest_figure: go.Figure | None = None
        self.widget = widgets.VBox(
            [
                widgets.HTML('<div class="wb-section">New rule</div>'),
                *self.fields.rows,
                widgets.HBox([self.create_button, self.preview_button, self.backtest_button]),
                self.result,
                self.backtest_result,
                self.backtest_chart,
            ],
            layout=widgets.Layout(border="1px solid #e5e7eb", padding="8px 12px", margin="8px 0"),
        )
        self.widget.add_class("wb-rule-form")

    def values(self) -> dict[str, Any]:
        """Return the form as the dict RuleCreate validates (numbers still as typed).

        The :data:`ADVANCED` fields are sent only when set.
        """
        return {k: v for k, v in self.fields.values().items() if not (k in ADVANCED and v is None)}

    def validate(self, refused: str = "Not created") -> RuleCreate | None:
        """Return the validated rule, or None after showing each field's error inline."""
        self.fields.clear_errors()
        try:
            data = store.validate_rule(self.values())
        except Exception as exc:
            fields = ", ".join(self.fields.show_errors(exc)) or "the form"
            self.result.value = (
                f'<div class="wb-error-box">{esc(refused)}: check {esc(fields)}.</div>'
            )
            return None
        return data

    def submit(self) -> AlertRule | None:
        """Create the rule when the form is valid; return it (None when not created)."""
        self.result.value = ""
        data = self.validate()
        if data is None:
            return None
        self.create_button.disabled = True
        self.create_button.description = "Creating…"
        try:
            with store.session_for(self.page.ctx.settings) as session:
                rule = store.create_rule(session, data, now=self.page.ctx.now())
        except Exception as exc:
            if hasattr(exc, "details"):
                self.fields.show_errors(exc)
            self.result.value = f'<div class="wb-error-box">Not created: {esc(friendly_error(exc, self.page.ctx.settings))}</div>'
            return None
        finally:
            self.create_button.disabled = False
            self.create_button.description = "Create rule"
        self.result.value = (
            f'<div class="wb-ok-box">Created rule “{esc(rule.name or rule.service)}”: '
            f"{esc(condition_text(rule))}.</div>"
        )
        self.backtest_result.value = ""
        self.backtest_chart.outputs = ()
        self.name.value = ""
        self.message.value = ""
        self.auto_resolve.value = ""
        self.fields.set_values(dict.fromkeys(ADVANCED, ""))
        self.page.safe_reload()
        return rule

    def preview(self) -> Any:
        """Run the unsaved rule over the last 24 hours and show when it would have fired."""
        return self.try_backtest(PREVIEW_SPAN, self.preview_button)

    def try_backtest(
        self, span: timedelta = timedelta(days=BACKTEST_DAYS), button: widgets.Button | None = None
    ) -> Any:
        """Run the unsaved rule over the last ``span`` of logs and show what it would have done."""
        button = button or self.backtest_button
        self.backtest_result.value = ""
        self.backtest_chart.outputs = ()
        data = self.validate("Not tried")
        if data is None:
            return None
        self.result.value = ""
        now = self.page.ctx.now()
        rule = store.unsaved_rule(data, now=now)
        label = button.description
        button.disabled = True
        button.description = "Running…"
        try:
            result = store.backtest(self.page.ctx.settings, rule, now - span, now)
        except Exception as exc:
            self.backtest_result.value = f'<div class="wb-error-box">Backtest failed: {esc(friendly_error(exc, self.page.ctx.settings))}</div>'
            return None
        finally:
            button.disabled = False
            button.description = label
        self.backtest_result.value = backtest_html(result, rule, span)
        self.backtest_figure = backtest_figure(result, rule) if result is not None else None
        if self.backtest_figure is not None:
            show_figure(self.backtest_chart, self.backtest_figure)
        else:
            self.backtest_chart.outputs = ()
        return result


def _span_text(span: timedelta) -> str:
    hours = int(span.total_seconds() // 3600)
    return f"{hours // 24} days" if hours % 24 == 0 and hours > 24 else f"{hours} h"


def backtest_html(
    result: Any, rule: AlertRule, span: timedelta = timedelta(days=BACKTEST_DAYS)
) -> str:
    """Return the summary of a backtest: how many incidents and notifications, and when (a table)."""
    if result is None:
        return (
            '<div class="wb-info-box">Backtests are not available in this installation yet.</div>'
        )
    episodes = list(result.incidents)
    notes = list(result.notifications)
    levels = "" if (rule.kind or "threshold") == "absence" else f" ({'/'.join(rule.levels)})"
    head = (
        f"Over the last {_span_text(span)} (checked every minute), “{esc(condition_text(rule))}"
        f"{esc(levels)}” on <b>{esc(rule.service)}</b> "
        f"would have opened <b>{len(episodes)}</b> incident(s) and sent <b>{len(notes)}</b> "
        "notification(s)."
    )
    simulated = getattr(result, "resolved_by", "") == "simulated"
    closed = "resolved (assumed)" if simulated else "auto-resolved"
    rows = "".join(
        f"<tr><td>{esc(fmt_ts(ep.opened_at))}{' (reopened)' if ep.reopened else ''}</td>"
        f"<td>{ep.peak_count}</td><td>{esc(fmt_ts(ep.last_seen_error_at))}</td>"
        f"<td>{esc(fmt_ts(ep.resolved_at)) if ep.resolved_at else 'still open'}</td></tr>"
        for ep in episodes[:10]
    )
    items = (
        [
            '<table class="wb-preview-table"><tr><th>would fire at</th><th>peak in the window</th>'
            f"<th>last breach</th><th>{esc(closed)}</th></tr>{rows}</table>"
        ]
        if episodes
        else []
    )
    more = f"<div>… and {len(episodes) - 10} more</div>" if len(episodes) > 10 else ""
    suppressed = {
        k: v
        for k, v in (result.reasons or {}).items()
        if "suppress" in k or "cooldown" in k or "quiet" in k
    }
    why = (
        "<div class='wb-muted'>Held back: "
        + esc(", ".join(f"{k.replace('_', ' ')} ×{v}" for k, v in sorted(suppressed.items())))
        + "</div>"
        if suppressed
        else ""
    )
    verdict = (
        "Quiet: it would not have paged. Lower the threshold if it should have."
        if not episodes
        else "Noisy? Raise the threshold, widen the window or add a cooldown."
        if len(notes) > 20
        else "Without auto-resolve, an incident is assumed resolved by on-call "
        f"{_minutes(result.resolve_after)} min after its last breach (the quiet period)."
        if simulated
        else "Incidents close by the rule's auto-resolve."
    )
    return (
        f'<div class="wb-info-box wb-backtest">{head}{"".join(items)}{more}{why}'
        f'<span class="wb-muted">{esc(verdict)}</span></div>'
    )


def _minutes(delta: timedelta | None) -> int:
    return int(delta.total_seconds() // 60) if delta else 0


def backtest_figure(result: Any, rule: AlertRule) -> go.Figure | None:
    """Return the rule's observed value at every tick against its threshold, incidents marked.

    The value is the window count (a percent for ``ratio``: the series' ``value``
    column when the backtest gives one); the seasonal bar of an ``anomaly`` rule
    (``baseline``) is drawn too.
    """
    series = getattr(result, "series", None)
    if series is None or series.height == 0:
        return None
    kind = rule.kind or "threshold"
    column = "value" if "value" in series.columns and kind != "threshold" else "count"
    unit = "% of events" if kind == "ratio" else "in window"
    fig = go.Figure(
        go.Scatter(
            x=series["at"].to_list(),
            y=series[column].to_list(),
            mode="lines",
            line={"color": "#dc2626", "width": 1.5},
            name=unit,
            hovertemplate=f"%{{x|%Y-%m-%d %H:%M}} UTC<br>%{{y}} {unit}<extra></extra>",
        )
    )
    if kind == "anomaly" and "baseline" in series.columns:
        fig.add_trace(
            go.Scatter(
                x=series["at"].to_list(),
                y=series["baseline"].to_list(),
                mode="lines",
                line={"color": "#6b7280", "dash": "dot", "width": 1},
                name="seasonal bar",
                hovertemplate="bar %{y:.1f}<extra></extra>",
            )
        )
    fig.add_hline(y=rule.threshold, line={"color": "#374151", "dash": "dash", "width": 1})
    opened = [ep.opened_at for ep in result.incidents]
    if opened:
        fig.add_trace(
            go.Scatter(
                x=opened,
                y=[rule.threshold] * len(opened),
                mode="markers",
                marker={"symbol": "triangle-up", "size": 10, "color": "#2563eb"},
                name="incident opened",
                hovertemplate="incident opened %{x|%Y-%m-%d %H:%M} UTC<extra></extra>",
            )
        )
    what = {
        "ratio": "percent of the service's events of the levels",
        "absence": "events of any level in the window",
    }.get(kind, "matching events in the window")
    fig.update_layout(
        height=240,
        margin={"l": 40, "r": 16, "t": 28, "b": 30},
        showlegend=False,
        title={
            "text": f"{what}, every minute (dashed: threshold)",
            "x": 0.01,
            "font": {"size": 13},
        },
        plot_bgcolor="#ffffff",
        paper_bgcolor="#ffffff",
        xaxis={"gridcolor": "#f3f4f6"},
        yaxis={"gridcolor": "#f3f4f6", "rangemode": "tozero"},
    )
    return fig


class RuleEditor:
    """The editor of an existing rule, under its row: the :data:`EDITABLE` fields, save, cancel."""

    def __init__(self, row: RuleRow, names: Sequence[str] = EDITOR_FIELDS) -> None:
        self.row = row
        self.fields = RuleFields(
            names, {"kind": row.rule.kind or "threshold"}, css="wb-edit", error_css="wb-edit-error"
        )
        f = self.fields.inputs  # shortcuts to the usual inputs (None when a kind has no such field)
        self.threshold: Any = f.get("threshold")
        self.window: Any = f.get("window_minutes")
        self.cooldown: Any = f.get("cooldown_minutes")
        self.auto_resolve: Any = f.get("auto_resolve_minutes")
        self.levels: Any = f.get("levels")
        self.errors = self.fields.errors
        self.note = widgets.HTML(
            '<span class="wb-muted">Threshold, window, cooldown, auto-resolve and the advanced '
            "fields keep an open incident (the next evaluation decides); changing the levels "
            "resolves its open "
            "incident, as the rule then watches something else.</span>"
        )
        self.save_button = widgets.Button(
            description="Save",
            button_style="primary",
            icon="check",
            layout=widgets.Layout(width="90px"),
        )
        self.save_button.add_class("wb-rule-save")
        self.cancel_button = widgets.Button(
            description="Cancel", layout=widgets.Layout(width="80px")
        )
        self.cancel_button.add_class("wb-rule-cancel-edit")
        self.save_button.on_click(lambda _b: self.save())
        self.preview_button = widgets.Button(
            description="Preview (last 24 h)", icon="eye", layout=widgets.Layout(width="180px")
        )
        self.preview_button.add_class("wb-rule-edit-preview")
        self.preview_button.on_click(lambda _b: self.preview())
        self.preview_result = widgets.HTML()
        self.preview_result.add_class("wb-backtest-result")
        self.preview_chart = widgets.Output()
        self.preview_chart.add_class("wb-backtest-chart")
        self.preview_figure: go.Figure | None = None
        self.cancel_button.on_click(lambda _b: self.close())
        self.result = widgets.HTML()
        self.result.add_class("wb-edit-result")
        self.widget = widgets.VBox(
            [
                widgets.HTML('<div class="wb-section">Edit rule</div>'),
                *self.fields.rows,
                self.note,
                widgets.HBox([self.save_button, self.preview_button, self.cancel_button]),
                self.result,
                self.preview_result,
                self.preview_chart,
            ],
            layout=widgets.Layout(
                display="none", border="1px solid #e5e7eb", padding="8px 12px", margin="4px 0 8px 0"
            ),
        )
        self.widget.add_class("wb-rule-editor")

    @property
    def is_open(self) -> bool:
        """Return True while the editor is shown."""
        return self.widget.layout.display != "none"

    def open(self) -> None:
        """Show the editor filled with the rule as stored."""
        self.fields.set_values(rule_values(self.row.rule, self.fields.names))
        self.result.value = ""
        self.widget.layout.display = None

    def close(self) -> None:
        """Hide the editor; nothing is saved."""
        self.widget.layout.display = "none"
        self.result.value = ""
        self.preview_result.value = ""
        self.preview_chart.outputs = ()

    def preview(self) -> Any:
        """Replay the rule as edited (not saved) over the last 24 hours; show when it would fire."""
        self.fields.clear_errors()
        self.result.value = ""
        self.preview_result.value = ""
        self.preview_chart.outputs = ()
        self.preview_figure = None
        rule = self.row.rule
        try:
            data = store.validate_rule_update(self.fields.values())
            edited = rule.model_copy(update=kind_changes(rule, data))
        except Exception as exc:
            fields = ", ".join(self.fields.show_errors(exc)) or "the form"
            self.result.value = f'<div class="wb-error-box">Not tried: check {esc(fields)}.</div>'
            return None
        page = self.row.page
        now = page.ctx.now()
        self.preview_button.disabled = True
        try:
            result = store.backtest(page.ctx.settings, edited, now - PREVIEW_SPAN, now)
        except Exception as exc:
            self.preview_result.value = f'<div class="wb-error-box">Preview failed: {esc(friendly_error(exc, page.ctx.settings))}</div>'
            return None
        finally:
            self.preview_button.disabled = False
        self.preview_result.value = backtest_html(result, edited, PREVIEW_SPAN)
        self.preview_figure = backtest_figure(result, edited)
        if self.preview_figure is not None:
            show_figure(self.preview_chart, self.preview_figure)
        return result

    def changes(self, data: RuleUpdate) -> dict[str, Any]:
        """Return the validated fields whose values differ from the stored rule."""
        rule = self.row.rule
        out = {}
        for name, value in data.changes().items():
            current = getattr(rule, name)
            same = set(current or ()) == set(value or ()) if name == "levels" else current == value
            if not same:
                out[name] = value
        return out

    def save(self) -> AlertRule | None:
        """Validate, save what changed and close; return the saved rule (None when not saved)."""
        self.fields.clear_errors()
        self.result.value = ""
        try:
            data = store.validate_rule_update(self.fields.values())
        except Exception as exc:
            fields = ", ".join(self.fields.show_errors(exc)) or "the form"
            self.result.value = f'<div class="wb-error-box">Not saved: check {esc(fields)}.</div>'
            return None
        changes = self.changes(data)
        if not changes:
            self.result.value = '<div class="wb-info-box">Nothing changed.</div>'
            return None
        page = self.row.page
        self.save_button.disabled = True
        try:
            with store.session_for(page.ctx.settings) as session:
                done = store.update_rule(
                    session,
                    self.row.rule.id,
                    RuleUpdate.model_validate(changes),
                    actor=page.ctx.actor,
                    now=page.ctx.now(),
                )
        except Exception as exc:
            if hasattr(exc, "details"):
                self.fields.show_errors(exc)
            self.result.value = f'<div class="wb-error-box">Not saved: {esc(friendly_error(exc, page.ctx.settings))}</div>'
            return None
        finally:
            self.save_button.disabled = False
        rule = done.rule
        auto = f"{rule.auto_resolve_minutes} min" if rule.auto_resolve_minutes else "off"
        resolved = (
            f" Its open incident was resolved ({esc(done.reason or '')})." if done.resolved else ""
        )
        self.close()
        self.row.rule = rule
        self.row.message.value = (
            f'<div class="wb-ok-box">Saved: {esc(condition_text(rule))} '
            f"({esc('/'.join(rule.levels))}), cooldown {rule.cooldown_minutes} min, auto-resolve "
            f"{auto}.{resolved}</div>"
        )
        self.row.render()
        page.safe_reload()
        return rule


class RuleRow:
    """One rule in the list: its condition, an enable toggle, edit, and delete with confirmation."""

    def __init__(self, rule: AlertRule, page: RulesPage) -> None:
        self.page = page
        self.rule = rule
        self.enable = EnableToggle(
            rule.enabled, "wb-rule-toggle", persist=self._set_enabled, failed=self._toggle_failed
        )
        self.toggle = self.enable.button
        self.delete_button = widgets.Button(
            description="Delete", icon="trash", layout=widgets.Layout(width="90px")
        )
        self.delete_button.add_class("wb-rule-delete")
        self.confirm_button = widgets.Button(
            description="Yes, delete", button_style="danger", layout=widgets.Layout(width="110px")
        )
        self.confirm_button.add_class("wb-rule-confirm-delete")
        self.cancel_button = widgets.Button(
            description="Cancel", layout=widgets.Layout(width="80px")
        )
        self.cancel_button.add_class("wb-rule-cancel-delete")
        self.delete_button.on_click(lambda _b: self.ask_delete())
        self.confirm_button.on_click(lambda _b: self.delete())
        self.cancel_button.on_click(lambda _b: self.cancel_delete())
        self.confirm = widgets.HBox(
            [
                widgets.HTML(
                    '<span class="wb-field-error">Delete this rule? Its open incidents are resolved; all stay as history.</span>'
                ),
                self.confirm_button,
                self.cancel_button,
            ],
            layout=widgets.Layout(display="none", align_items="center"),
        )
        self.edit_button = widgets.Button(
            description="Edit", icon="pencil", layout=widgets.Layout(width="80px")
        )
        self.edit_button.add_class("wb-rule-edit")
        self.edit_button.on_click(lambda _b: self.edit())
        self.message = widgets.HTML()
        self.cells = widgets.HBox()
        self.editor = RuleEditor(self)
        self.widget = widgets.VBox([self.cells, self.editor.widget, self.confirm, self.message])
        self.widget.add_class("wb-row")
        self.widget.add_class("wb-rule-row")
        self.widget.add_class(f"wb-rule-{rule.id}")
        self.render()

    def render(self) -> None:
        """Redraw the row from ``self.rule``."""
        r = self.rule
        now = self.page.ctx.now()
        self.enable.show(r.enabled)
        self.cells.children = [
            cell(
                f"<b>{esc(r.name or '(unnamed)')}</b><div class='wb-muted'>{esc(r.service)}</div>",
                _COLS[0],
            ),
            cell(
                badge(condition_text(r), "#374151")
                + f"<div class='wb-muted'>{esc(KIND_LABELS.get(r.kind or 'threshold', r.kind).split(':')[0])}"
                + f" · {esc(', '.join(r.levels))}"
                + (f" · “{esc(r.message_contains)}”" if r.message_contains else "")
                + "</div>",
                _COLS[1],
            ),
            cell(f"{r.cooldown_minutes} min", _COLS[2]),
            cell(badge(r.severity, SEVERITY_COLOURS.get(r.severity, "#6b7280")), _COLS[3]),
            cell(
                f'<span title="{esc(fmt_ts(r.last_triggered_at))}">{esc(ago(r.last_triggered_at, now))}</span>',
                _COLS[4],
            ),
            widgets.HBox([self.toggle, self.edit_button, self.delete_button]),
        ]

    def _set_enabled(self, enabled: bool) -> None:
        self.message.value = ""
        with store.session_for(self.page.ctx.settings) as session:
            self.rule = store.set_rule_enabled(
                session, self.rule.id, enabled, now=self.page.ctx.now()
            )
        self.render()
        self.page.safe_summary()

    def _toggle_failed(self, exc: BaseException) -> None:
        self.message.value = f'<span class="wb-field-error">Could not change: {esc(friendly_error(exc, self.page.ctx.settings))}</span>'

    def edit(self) -> None:
        """Open the editor (or close it when it is open)."""
        self.message.value = ""
        if self.editor.is_open:
            self.editor.close()
        else:
            self.editor.open()

    def ask_delete(self) -> None:
        """Ask for confirmation before deleting."""
        self.confirm.layout.display = None

    def cancel_delete(self) -> None:
        """Forget the delete request."""
        self.confirm.layout.display = "none"

    def delete(self) -> bool:
        """Delete the rule (after confirmation); return whether it was deleted."""
        try:
            with store.session_for(self.page.ctx.settings) as session:
                store.delete_rule(
                    session, self.rule.id, actor=self.page.ctx.actor, now=self.page.ctx.now()
                )
        except Exception as exc:
            self.message.value = f'<span class="wb-field-error">Could not delete: {esc(friendly_error(exc, self.page.ctx.settings))}</span>'
            return False
        self.page.safe_reload()
        return True


class RulesPage(Page):
    """Alert rules: what pages whom, and a safe way to change it."""

    key = "rules"
    title = "Alert rules"

    def __init__(
        self, settings: Settings, clock: Clock | None = None, *, service: str = ""
    ) -> None:
        super().__init__(settings, clock)
        self.rows: dict[uuid.UUID, RuleRow] = {}
        self.summary = widgets.HTML()
        self.summary.add_class("wb-summary")
        self.form = RuleForm(self, service=service)
        self.table = widgets.VBox()
        self.table.add_class("wb-rule-table")
        self.empty = widgets.HTML()
        self.body.children = [
            self.summary,
            widgets.HTML('<div class="wb-section">Rules</div>'),
            header_row(
                ("Rule", "Condition", "Cooldown", "Severity", "Last triggered", "Enabled"), _COLS
            ),
            self.table,
            self.empty,
            self.form.widget,
        ]

    def load(self) -> None:
        """Reload the rules and the service suggestions."""
        with store.session_for(self.ctx.settings) as session:
            rules = store.list_rules(session)
        self._draw(rules)
        # Suggestions only: when the lake is unreadable the form still works.
        with contextlib.suppress(Exception):
            self.form.service.options = store.services(self.ctx.settings)

    def _draw(self, rules: list[AlertRule]) -> None:
        rows: dict[uuid.UUID, RuleRow] = {}
        for rule in rules:
            row = self.rows.get(rule.id)
            if row is None:
                row = RuleRow(rule, self)
            elif row.confirm.layout.display != "none":
                pass  # a delete confirmation is pending; leave the row alone
            else:
                row.rule = rule
                row.render()
            rows[rule.id] = row
        self.rows = rows
        self.table.children = [r.widget for r in rows.values()]
        enabled = sum(1 for r in rules if r.enabled)
        self.summary.value = cards(
            [
                card("rules", len(rules), css_class="wb-card-total"),
                card("enabled", enabled, colour="#16a34a", css_class="wb-card-enabled"),
                card(
                    "disabled", len(rules) - enabled, colour="#6b7280", css_class="wb-card-disabled"
                ),
            ]
        )
        self.empty.value = (
            '<div class="wb-empty">No alert rules yet. Create one below: for example, alert when '
            "<b>auth-service</b> logs 10 errors within 5 minutes.</div>"
            if not rules
            else ""
        )

    def safe_reload(self) -> None:
        """Reload the list, showing a message instead of failing."""
        try:
            self.load()
        except Exception as exc:
            self.error.show(friendly_error(exc, self.ctx.settings))

    def safe_summary(self) -> None:
        """Recount the summary cards after a toggle."""
        self.safe_reload()


def build_rules(settings: Settings, *, service: str = "", clock: Clock | None = None) -> RulesPage:
    """Return the Alert rules page, the form pre-filled with ``service``."""
    return RulesPage(settings, clock, service=service)
