"""The Alert rules page: summary, create form with inline errors, backtest, toggle, delete."""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go

from workbench.catalog.models import AlertRule
from workbench.catalog.schemas import RuleCreate
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.charts import show_figure
from workbench.dashboard.common import (
    SEVERITY_COLOURS,
    Clock,
    EnableToggle,
    Page,
    ago,
    badge,
    card,
    cards,
    cell,
    esc,
    field_error,
    fmt_ts,
    friendly_error,
    header_row,
    validation_messages,
)
from workbench.lake.schema import LEVELS

_COLS = ("240px", "220px", "120px", "140px", "120px", "auto")
BACKTEST_DAYS = 7


class RuleForm:
    """The new-rule form: fields, one inline error line per field, create and backtest buttons."""

    FIELDS = ("name", "service", "threshold", "window_minutes", "cooldown_minutes",
              "levels", "message_contains", "severity")

    def __init__(self, page: RulesPage, service: str = "") -> None:
        self.page = page
        lay = widgets.Layout(width="360px")
        style = {"description_width": "150px"}
        self.name = widgets.Text(description="Name", placeholder="e.g. auth error burst",
                                 layout=lay, style=style)
        self.service = widgets.Combobox(description="Service", value=service,
                                        placeholder="service name as in the logs",
                                        ensure_option=False, layout=lay, style=style)
        self.threshold = widgets.Text(description="Threshold (errors)", value="10", layout=lay, style=style)
        self.window = widgets.Text(description="Window (minutes)", value="5", layout=lay, style=style)
        self.cooldown = widgets.Text(description="Cooldown (minutes)", value="15", layout=lay, style=style)
        self.levels = widgets.SelectMultiple(options=list(LEVELS), value=("error", "fatal"),
                                             description="Levels", rows=5, layout=lay, style=style)
        self.message = widgets.Text(description="Message contains", placeholder="optional",
                                    layout=lay, style=style)
        self.severity = widgets.Dropdown(options=list(SEVERITY_COLOURS), value="warning",
                                         description="Severity", layout=lay, style=style)
        inputs: dict[str, widgets.Widget] = {
            "name": self.name, "service": self.service, "threshold": self.threshold,
            "window_minutes": self.window, "cooldown_minutes": self.cooldown, "levels": self.levels,
            "message_contains": self.message, "severity": self.severity,
        }
        helps = {
            "threshold": "alert when at least this many matching events fall in the window",
            "window_minutes": "1 to 1440",
            "cooldown_minutes": "minimum time between two alerts of this rule (0 to 10080)",
        }
        self.errors: dict[str, widgets.HTML] = {}
        rows = []
        for name, w in inputs.items():
            w.add_class(f"wb-rule-{name.replace('_', '-')}")
            err = widgets.HTML()
            err.add_class(f"wb-error-{name.replace('_', '-')}")
            self.errors[name] = err
            hint = widgets.HTML(f'<span class="wb-muted">{esc(helps.get(name, ""))}</span>')
            rows.append(widgets.HBox([w, widgets.VBox([err, hint])],
                                     layout=widgets.Layout(align_items="center")))
        self.create_button = widgets.Button(description="Create rule", button_style="primary",
                                            icon="plus")
        self.create_button.add_class("wb-rule-create")
        self.backtest_button = widgets.Button(description=f"Try on last {BACKTEST_DAYS} days",
                                              icon="history", layout=widgets.Layout(width="200px"))
        self.backtest_button.add_class("wb-rule-backtest")
        self.create_button.on_click(lambda _b: self.submit())
        self.backtest_button.on_click(lambda _b: self.try_backtest())
        self.result = widgets.HTML()
        self.result.add_class("wb-form-result")
        self.backtest_result = widgets.HTML()
        self.backtest_result.add_class("wb-backtest-result")
        self.backtest_chart = widgets.Output()
        self.backtest_chart.add_class("wb-backtest-chart")
        self.backtest_figure: go.Figure | None = None
        self.widget = widgets.VBox(
            [widgets.HTML('<div class="wb-section">New rule</div>'), *rows,
             widgets.HBox([self.create_button, self.backtest_button]), self.result,
             self.backtest_result, self.backtest_chart],
            layout=widgets.Layout(border="1px solid #e5e7eb", padding="8px 12px", margin="8px 0"),
        )
        self.widget.add_class("wb-rule-form")

    def values(self) -> dict[str, Any]:
        """Return the form as the dict RuleCreate validates (numbers still as typed)."""
        return {
            "name": self.name.value.strip(),
            "service": self.service.value.strip(),
            "threshold": self.threshold.value.strip(),
            "window_minutes": self.window.value.strip(),
            "cooldown_minutes": self.cooldown.value.strip() or "0",
            "levels": list(self.levels.value),
            "message_contains": self.message.value.strip() or None,
            "severity": self.severity.value,
        }

    def validate(self, refused: str = "Not created") -> RuleCreate | None:
        """Return the validated rule, or None after showing each field's error inline."""
        for err in self.errors.values():
            err.value = ""
        try:
            data = store.validate_rule(self.values())
        except Exception as exc:
            messages = validation_messages(exc)
            for name, msgs in messages.items():
                target = self.errors.get(name)
                if target is not None:
                    target.value = field_error(msgs)
            fields = ", ".join(sorted(k for k in messages if k)) or "the form"
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
            msgs = validation_messages(exc) if hasattr(exc, "details") else {}
            for name, m in msgs.items():
                if name in self.errors:
                    self.errors[name].value = field_error(m)
            self.result.value = f'<div class="wb-error-box">Not created: {esc(friendly_error(exc, self.page.ctx.settings))}</div>'
            return None
        finally:
            self.create_button.disabled = False
            self.create_button.description = "Create rule"
        self.result.value = (
            f'<div class="wb-ok-box">Created rule “{esc(rule.name or rule.service)}”: '
            f"≥ {rule.threshold} in {rule.window_minutes} min.</div>"
        )
        self.backtest_result.value = ""
        self.backtest_chart.outputs = ()
        self.name.value = ""
        self.message.value = ""
        self.page.safe_reload()
        return rule

    def try_backtest(self) -> Any:
        """Run the unsaved rule over the last 7 days of logs and show what it would have done."""
        self.backtest_result.value = ""
        self.backtest_chart.outputs = ()
        data = self.validate("Not tried")
        if data is None:
            return None
        self.result.value = ""
        now = self.page.ctx.now()
        rule = store.unsaved_rule(data, now=now)
        self.backtest_button.disabled = True
        self.backtest_button.description = "Running…"
        try:
            result = store.backtest(self.page.ctx.settings, rule, now - timedelta(days=BACKTEST_DAYS), now)
        except Exception as exc:
            self.backtest_result.value = (
                f'<div class="wb-error-box">Backtest failed: {esc(friendly_error(exc, self.page.ctx.settings))}</div>'
            )
            return None
        finally:
            self.backtest_button.disabled = False
            self.backtest_button.description = f"Try on last {BACKTEST_DAYS} days"
        self.backtest_result.value = backtest_html(result, rule)
        self.backtest_figure = backtest_figure(result, rule) if result is not None else None
        if self.backtest_figure is not None:
            show_figure(self.backtest_chart, self.backtest_figure)
        else:
            self.backtest_chart.outputs = ()
        return result


def backtest_html(result: Any, rule: AlertRule) -> str:
    """Return the summary of a backtest: how many incidents and notifications, and when."""
    if result is None:
        return '<div class="wb-info-box">Backtests are not available in this installation yet.</div>'
    episodes = list(result.incidents)
    notes = list(result.notifications)
    head = (
        f"Over the last {BACKTEST_DAYS} days (checked every minute), “≥ {rule.threshold} "
        f"{esc('/'.join(rule.levels))} in {rule.window_minutes} min” on <b>{esc(rule.service)}</b> "
        f"would have opened <b>{len(episodes)}</b> incident(s) and sent <b>{len(notes)}</b> "
        "notification(s)."
    )
    simulated = getattr(result, "resolved_by", "") == "simulated"
    closed = "resolved (assumed)" if simulated else "auto-resolved"
    items = []
    for ep in episodes[:10]:
        items.append(
            f"<li>{esc(fmt_ts(ep.opened_at))}{' (reopened)' if ep.reopened else ''}"
            f" · peak {ep.peak_count} in the window · last error {esc(fmt_ts(ep.last_seen_error_at))}"
            + (f" · {closed} {esc(fmt_ts(ep.resolved_at))}" if ep.resolved_at else "")
            + "</li>"
        )
    more = f"<li>… and {len(episodes) - 10} more</li>" if len(episodes) > 10 else ""
    suppressed = {k: v for k, v in (result.reasons or {}).items() if "suppress" in k or "cooldown" in k or "quiet" in k}
    why = (
        "<div class='wb-muted'>Held back: "
        + esc(", ".join(f"{k.replace('_', ' ')} ×{v}" for k, v in sorted(suppressed.items())))
        + "</div>" if suppressed else ""
    )
    verdict = (
        "Quiet: it would not have paged. Lower the threshold if it should have."
        if not episodes else
        "Noisy? Raise the threshold, widen the window or add a cooldown." if len(notes) > 20 else
        "Without auto-resolve, an incident is assumed resolved by on-call "
        f"{_minutes(result.resolve_after)} min after its last breach (the quiet period)."
        if simulated else
        "Incidents close by the rule's auto-resolve."
    )
    return (
        f'<div class="wb-info-box wb-backtest">{head}<ul>{"".join(items)}{more}</ul>{why}'
        f'<span class="wb-muted">{esc(verdict)}</span></div>'
    )


def _minutes(delta: timedelta | None) -> int:
    return int(delta.total_seconds() // 60) if delta else 0


def backtest_figure(result: Any, rule: AlertRule) -> go.Figure | None:
    """Return the window count at every tick against the threshold, incidents marked."""
    series = getattr(result, "series", None)
    if series is None or series.height == 0:
        return None
    fig = go.Figure(
        go.Scatter(x=series["at"].to_list(), y=series["count"].to_list(), mode="lines",
                   line={"color": "#dc2626", "width": 1.5}, name="count in window",
                   hovertemplate="%{x|%Y-%m-%d %H:%M} UTC<br>%{y} in window<extra></extra>")
    )
    fig.add_hline(y=rule.threshold, line={"color": "#374151", "dash": "dash", "width": 1})
    opened = [ep.opened_at for ep in result.incidents]
    if opened:
        fig.add_trace(go.Scatter(x=opened, y=[rule.threshold] * len(opened), mode="markers",
                                 marker={"symbol": "triangle-up", "size": 10, "color": "#2563eb"},
                                 name="incident opened",
                                 hovertemplate="incident opened %{x|%Y-%m-%d %H:%M} UTC<extra></extra>"))
    fig.update_layout(
        height=240, margin={"l": 40, "r": 16, "t": 28, "b": 30}, showlegend=False,
        title={"text": "matching events in the window, every minute (dashed: threshold)",
               "x": 0.01, "font": {"size": 13}},
        plot_bgcolor="#ffffff", paper_bgcolor="#ffffff",
        xaxis={"gridcolor": "#f3f4f6"}, yaxis={"gridcolor": "#f3f4f6", "rangemode": "tozero"},
    )
    return fig


class RuleRow:
    """One rule in the list: its condition, an enable toggle and delete with confirmation."""

    def __init__(self, rule: AlertRule, page: RulesPage) -> None:
        self.page = page
        self.rule = rule
        self.enable = EnableToggle(
            rule.enabled, "wb-rule-toggle", persist=self._set_enabled, failed=self._toggle_failed
        )
        self.toggle = self.enable.button
        self.delete_button = widgets.Button(description="Delete", icon="trash",
                                            layout=widgets.Layout(width="90px"))
        self.delete_button.add_class("wb-rule-delete")
        self.confirm_button = widgets.Button(description="Yes, delete", button_style="danger",
                                             layout=widgets.Layout(width="110px"))
        self.confirm_button.add_class("wb-rule-confirm-delete")
        self.cancel_button = widgets.Button(description="Cancel", layout=widgets.Layout(width="80px"))
        self.cancel_button.add_class("wb-rule-cancel-delete")
        self.delete_button.on_click(lambda _b: self.ask_delete())
        self.confirm_button.on_click(lambda _b: self.delete())
        self.cancel_button.on_click(lambda _b: self.cancel_delete())
        self.confirm = widgets.HBox(
            [widgets.HTML('<span class="wb-field-error">Delete this rule? Its open incidents are resolved; all stay as history.</span>'),
             self.confirm_button, self.cancel_button],
            layout=widgets.Layout(display="none", align_items="center"),
        )
        self.message = widgets.HTML()
        self.cells = widgets.HBox()
        self.widget = widgets.VBox([self.cells, self.confirm, self.message])
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
            cell(f"<b>{esc(r.name or '(unnamed)')}</b>"
                 f"<div class='wb-muted'>{esc(r.service)}</div>", _COLS[0]),
            cell(badge(f"≥ {r.threshold} in {r.window_minutes} min", "#374151")
                 + f"<div class='wb-muted'>{esc(', '.join(r.levels))}"
                 + (f" · “{esc(r.message_contains)}”" if r.message_contains else "") + "</div>",
                 _COLS[1]),
            cell(f"{r.cooldown_minutes} min", _COLS[2]),
            cell(badge(r.severity, SEVERITY_COLOURS.get(r.severity, "#6b7280")), _COLS[3]),
            cell(f'<span title="{esc(fmt_ts(r.last_triggered_at))}">{esc(ago(r.last_triggered_at, now))}</span>', _COLS[4]),
            widgets.HBox([self.toggle, self.delete_button]),
        ]

    def _set_enabled(self, enabled: bool) -> None:
        self.message.value = ""
        with store.session_for(self.page.ctx.settings) as session:
            self.rule = store.set_rule_enabled(session, self.rule.id, enabled, now=self.page.ctx.now())
        self.render()
        self.page.safe_summary()

    def _toggle_failed(self, exc: BaseException) -> None:
        self.message.value = f'<span class="wb-field-error">Could not change: {esc(friendly_error(exc, self.page.ctx.settings))}</span>'

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

    def __init__(self, settings: Settings, clock: Clock | None = None, *, service: str = "") -> None:
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
            header_row(("Rule", "Condition", "Cooldown", "Severity", "Last triggered", "Enabled"), _COLS),
            self.table, self.empty, self.form.widget,
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
        self.summary.value = cards([
            card("rules", len(rules), css_class="wb-card-total"),
            card("enabled", enabled, colour="#16a34a", css_class="wb-card-enabled"),
            card("disabled", len(rules) - enabled, colour="#6b7280", css_class="wb-card-disabled"),
        ])
        self.empty.value = (
            '<div class="wb-empty">No alert rules yet. Create one below: for example, alert when '
            "<b>auth-service</b> logs 10 errors within 5 minutes.</div>" if not rules else ""
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
