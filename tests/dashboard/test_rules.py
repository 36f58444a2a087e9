"""The Alert rules page: inline validation, create, toggle, delete with confirmation, backtest."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest_api.app import create_app
from tests.dashboard.seed import Seeded, seed_catalog
from workbench.catalog.db import dispose_engine
from workbench.catalog.models import AlertIncident, AlertRule, IncidentEvent
from workbench.catalog.schemas import RuleUpdate
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.rules import RulesPage, build_rules, condition_text


@pytest.fixture
def page(settings: Settings, world: Seeded, clock: Callable[[], datetime]) -> RulesPage:
    """The Alert rules page over the seeded world, loaded once."""
    page = build_rules(settings, clock=clock)
    page.refresh()
    return page


def _rules(settings: Settings) -> list[AlertRule]:
    with store.session_for(settings) as s:
        return store.list_rules(s)


def test_bad_threshold_shows_inline_error_and_creates_nothing(
    settings: Settings, page: RulesPage
) -> None:
    page.form.service.value = "auth-service"
    page.form.threshold.value = "0"
    page.form.create_button.click()
    assert "greater than or equal to 1" in page.form.errors["threshold"].value
    assert "Not created" in page.form.result.value and "threshold" in page.form.result.value
    assert len(_rules(settings)) == 2
    page.form.threshold.value = "ten"
    page.form.create_button.click()
    assert "must be a whole number" in page.form.errors["threshold"].value
    assert len(_rules(settings)) == 2


def test_valid_rule_is_created_and_listed(settings: Settings, page: RulesPage) -> None:
    page.form.name.value = "api burst"
    page.form.service.value = "api"
    page.form.threshold.value = "25"
    page.form.window.value = "10"
    page.form.create_button.click()
    assert "Created rule" in page.form.result.value
    assert page.form.errors["threshold"].value == ""
    created = [r for r in _rules(settings) if r.service == "api"]
    assert len(created) == 1 and created[0].threshold == 25 and created[0].window_minutes == 10
    assert len(page.rows) == 3 and ">3<" in page.summary.value


def test_toggle_persists(settings: Settings, world: Seeded, page: RulesPage) -> None:
    row = page.rows[world.rules[0]]
    assert row.toggle.value is True
    row.toggle.value = False
    assert {r.id: r.enabled for r in _rules(settings)}[world.rules[0]] is False
    assert row.toggle.description == "Disabled"


def test_delete_needs_confirmation(settings: Settings, world: Seeded, page: RulesPage) -> None:
    row = page.rows[world.rules[1]]
    row.delete_button.click()
    assert row.confirm.layout.display is None
    assert len(_rules(settings)) == 2  # nothing deleted yet
    row.cancel_button.click()
    assert row.confirm.layout.display == "none"
    row.delete_button.click()
    row.confirm_button.click()
    assert [r.id for r in _rules(settings)] == [world.rules[0]]
    assert list(page.rows) == [world.rules[0]]


def test_backtest_runs_the_unsaved_rule_and_saves_nothing(
    settings: Settings, page: RulesPage
) -> None:
    page.form.service.value = "auth-service"
    page.form.threshold.value = "5"
    page.form.window.value = "5"
    page.form.backtest_button.click()
    text = page.form.backtest_result.value
    assert "would have opened <b>1</b> incident(s) and sent <b>1</b> notification(s)" in text
    assert "assumed resolved by on-call 15 min after its last breach" in text
    assert page.form.backtest_figure is not None
    counts = list(page.form.backtest_figure.data[0].y)  # type: ignore[arg-type]
    assert len(counts) == 7 * 24 * 60 + 1 and max(counts) >= 5
    assert page.form.backtest_chart.outputs
    assert len(_rules(settings)) == 2
    assert not page.form.backtest_button.disabled


def test_backtest_with_bad_form_shows_errors(settings: Settings, page: RulesPage) -> None:
    page.form.service.value = ""
    page.form.backtest_button.click()
    assert page.form.errors["service"].value != ""
    assert page.form.backtest_result.value == ""


def _incident(settings: Settings, incident_id: object) -> AlertIncident:
    with store.session_for(settings) as s:
        inc = s.get(AlertIncident, incident_id)
        assert inc is not None
        return inc


def _last_event(settings: Settings, incident_id: uuid.UUID) -> IncidentEvent:
    with store.session_for(settings) as s:
        return store.incident_timeline(s, incident_id)[-1]


def test_deleting_a_rule_resolves_its_open_incident_as_the_api_does(
    settings: Settings, world: Seeded, clock: Callable[[], datetime], page: RulesPage
) -> None:
    row = page.rows[world.rules[0]]  # the rule behind world.open_incident
    row.delete_button.click()
    row.confirm_button.click()
    assert world.open_incident is not None
    inc = _incident(settings, world.open_incident)
    assert (inc.status, inc.resolved_at, inc.resolved_by, inc.rule_id) == (
        "resolved",
        clock(),
        "dashboard",
        None,
    )
    assert _last_event(settings, world.open_incident).data["reason"] == "rule deleted"


@pytest.mark.postgres
def test_store_changes_and_deletes_rules_on_postgres(
    postgres_url: str, data_dir: Path, clock: Callable[[], datetime]
) -> None:
    settings = Settings(WORKBENCH_DATA_DIR=data_dir, DATABASE_URL=postgres_url)  # type: ignore[call-arg]
    try:
        world = seed_catalog(settings, clock(), lake=False)
        assert world.open_incident is not None
        with store.session_for(settings) as s:  # tuning keeps it, a levels change resolves it
            kept = store.update_rule(
                s, world.rules[0], RuleUpdate(threshold=50), actor="dashboard", now=clock()
            )
            changed = store.update_rule(
                s, world.rules[0], RuleUpdate(levels=["fatal"]), actor="dashboard", now=clock()
            )
        assert kept.resolved == [] and changed.resolved == [world.open_incident]
        assert _last_event(settings, world.open_incident).data["reason"] == "rule changed: levels"
        with store.session_for(settings) as s:
            store.delete_rule(s, world.rules[1], actor="dashboard", now=clock())
        assert world.resolved_incident is not None
        assert _incident(settings, world.resolved_incident).resolved_by == "bob"  # history kept
        assert [r.id for r in _rules(settings)] == [world.rules[0]]
    finally:
        dispose_engine(postgres_url)


# -- editing an existing rule (issue 17 item 9) ------------------------------


def _rule(settings: Settings, rule_id: uuid.UUID) -> AlertRule:
    return {r.id: r for r in _rules(settings)}[rule_id]


def test_edit_opens_prefilled_and_saves_threshold_window_cooldown_auto_resolve(
    settings: Settings, world: Seeded, clock: Callable[[], datetime], page: RulesPage
) -> None:
    row = page.rows[world.rules[0]]
    assert row.editor.widget.layout.display == "none"
    row.edit_button.click()
    ed = row.editor
    assert ed.widget.layout.display is None
    assert (ed.threshold.value, ed.window.value, ed.cooldown.value, ed.auto_resolve.value) == (
        "10",
        "5",
        "15",
        "",
    )
    assert ed.levels.value == ("error", "fatal")
    ed.threshold.value = "20"
    ed.window.value = "10"
    ed.cooldown.value = "0"
    ed.auto_resolve.value = "30"
    ed.save_button.click()
    rule = _rule(settings, world.rules[0])
    assert (rule.threshold, rule.window_minutes, rule.cooldown_minutes) == (20, 10, 0)
    assert rule.auto_resolve_minutes == 30 and rule.updated_at == clock()
    assert "Saved" in row.message.value and ed.widget.layout.display == "none"
    assert "≥ 20 in 10 min" in page.rows[world.rules[0]].cells.children[1].value
    assert world.open_incident is not None  # tuning keeps the incident: next tick decides
    assert _incident(settings, world.open_incident).status == "open"


def test_edit_levels_resolves_the_open_incident_and_says_so(
    settings: Settings, world: Seeded, page: RulesPage
) -> None:
    row = page.rows[world.rules[0]]
    row.edit_button.click()
    assert "resolves its open incident" in row.editor.note.value
    row.editor.levels.value = ("fatal",)
    row.editor.save_button.click()
    assert _rule(settings, world.rules[0]).levels == ["fatal"]
    assert world.open_incident is not None
    inc = _incident(settings, world.open_incident)
    assert (inc.status, inc.resolved_by) == ("resolved", "dashboard")
    assert _last_event(settings, world.open_incident).data["reason"] == "rule changed: levels"
    assert "Saved" in row.message.value and "resolved" in row.message.value


def test_edit_with_bad_values_shows_inline_errors_and_saves_nothing(
    settings: Settings, world: Seeded, page: RulesPage
) -> None:
    row = page.rows[world.rules[0]]
    row.edit_button.click()
    ed = row.editor
    ed.threshold.value = "0"
    ed.window.value = "2000"
    ed.save_button.click()
    assert "greater than or equal to 1" in ed.errors["threshold"].value
    assert "1440" in ed.errors["window_minutes"].value
    assert "Not saved" in ed.result.value
    assert ed.widget.layout.display is None  # still open for a fix
    ed.threshold.value = "5"
    ed.window.value = "5"
    ed.levels.value = ()
    ed.save_button.click()
    assert ed.errors["threshold"].value == "" and ed.errors["levels"].value != ""
    rule = _rule(settings, world.rules[0])
    assert (rule.threshold, rule.window_minutes, rule.levels) == (10, 5, ["error", "fatal"])


def test_edit_cancel_and_unchanged_save_change_nothing(
    settings: Settings, world: Seeded, page: RulesPage
) -> None:
    row = page.rows[world.rules[1]]
    before = _rule(settings, world.rules[1])
    row.edit_button.click()
    row.editor.threshold.value = "99"
    row.editor.cancel_button.click()
    assert row.editor.widget.layout.display == "none"
    row.edit_button.click()  # reopened: the stored values again, not the abandoned edit
    assert row.editor.threshold.value == "3"
    row.editor.save_button.click()
    assert "Nothing changed" in row.editor.result.value
    assert _rule(settings, world.rules[1]).updated_at == before.updated_at


def test_the_create_form_and_the_editor_share_one_field_builder(
    settings: Settings, world: Seeded, page: RulesPage
) -> None:
    row = page.rows[world.rules[0]]
    shared = {"threshold", "window_minutes", "cooldown_minutes", "auto_resolve_minutes", "levels"}
    kind = {"kind", "match", "min_events", "baseline_days", "sensitivity"}
    flap = {"pending_minutes", "repeat_minutes", "recovery_threshold"}
    assert shared | kind | flap <= set(page.form.fields.inputs)
    assert set(row.editor.fields.inputs) == shared | kind | flap
    assert type(page.form.fields) is type(row.editor.fields)
    page.form.service.value = "api"
    page.form.threshold.value = "3"
    page.form.auto_resolve.value = "45"
    page.form.create_button.click()
    (created,) = [r for r in _rules(settings) if r.service == "api"]
    assert created.auto_resolve_minutes == 45


# -- rule kinds on the page (issue 14 item 4) --------------------------------

_KIND_ONLY = {
    "min_events": {"ratio"},
    "match": {"match"},
    "baseline_days": {"new_pattern", "anomaly"},
    "sensitivity": {"anomaly"},
    "message_contains": {"threshold"},
}


def _shown(fields: object, name: str) -> bool:
    return fields.rows_by_name[name].layout.display != "none"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "kind", ["threshold", "ratio", "absence", "match", "new_pattern", "anomaly"]
)
def test_the_kind_selector_shows_the_fields_of_each_kind(page: RulesPage, kind: str) -> None:
    form = page.form
    form.kind.value = kind
    for name in ("service", "threshold", "window_minutes", "cooldown_minutes", "severity"):
        assert _shown(form.fields, name), name
    assert _shown(form.fields, "levels") is (kind != "absence")  # absence counts every level
    for name, kinds in _KIND_ONLY.items():
        assert _shown(form.fields, name) is (kind in kinds), name
    sent = set(form.values())
    assert sent.isdisjoint({n for n, kinds in _KIND_ONLY.items() if kind not in kinds})


def test_each_kind_is_created_with_its_fields(settings: Settings, page: RulesPage) -> None:
    form = page.form
    made = {
        "ratio": {"threshold": "25", "min_events": "40"},
        "absence": {"threshold": "1", "window_minutes": "30"},
        "match": {"match": "Failed to authenticate"},
        "new_pattern": {"baseline_days": "3"},
        "anomaly": {"sensitivity": "2.5", "baseline_days": "5"},
    }
    for kind, values in made.items():
        form.kind.value = kind
        form.service.value = "auth-service"
        form.name.value = f"{kind} rule"
        for name, value in values.items():
            form.fields.inputs[name].value = value
        form.create_button.click()
        assert "Created rule" in form.result.value, (kind, form.result.value)
    rules = {r.name: r for r in _rules(settings)}
    assert (rules["ratio rule"].kind, rules["ratio rule"].min_events) == ("ratio", 40)
    assert rules["absence rule"].levels == ["debug", "info", "warn", "error", "fatal"]
    assert rules["match rule"].match == "Failed to authenticate"
    assert rules["new_pattern rule"].baseline_days == 3
    assert (rules["anomaly rule"].sensitivity, rules["anomaly rule"].baseline_days) == (2.5, 5)
    assert rules["anomaly rule"].min_events is None and rules["ratio rule"].sensitivity is None
    row = next(r for r in page.rows.values() if r.rule.name == "ratio rule")
    assert "≥ 25% of events in 5 min" in row.cells.children[1].value


def test_kind_errors_are_shown_beside_their_field(settings: Settings, page: RulesPage) -> None:
    form = page.form
    form.service.value = "auth-service"
    form.kind.value = "match"
    form.create_button.click()
    assert "match is required for kind match" in form.errors["match"].value
    assert "Not created" in form.result.value and "match" in form.result.value
    form.kind.value = "ratio"
    form.threshold.value = "150"
    form.create_button.click()
    assert "at most 100" in form.errors["threshold"].value
    assert form.errors["match"].value == ""
    form.kind.value = "anomaly"
    form.threshold.value = "10"
    form.fields.inputs["sensitivity"].value = "-1"
    form.create_button.click()
    assert "greater than 0" in form.errors["sensitivity"].value
    assert len(_rules(settings)) == 2


def test_preview_shows_when_the_unsaved_rule_would_have_fired_in_24_h(
    settings: Settings, page: RulesPage, clock: Callable[[], datetime]
) -> None:
    form = page.form
    form.kind.value = "match"
    form.service.value = "auth-service"
    form.fields.inputs["match"].value = "failed to AUTHENTICATE"
    form.threshold.value = "5"
    form.preview_button.click()
    text = form.backtest_result.value
    assert "Over the last 24 h" in text and "would have opened <b>1</b> incident(s)" in text
    assert "wb-preview-table" in text and "2026-11-20 11:4" in text  # the burst, 20 min ago
    assert form.backtest_figure is not None
    assert len(list(form.backtest_figure.data[0].y)) == 24 * 60 + 1  # type: ignore[arg-type]
    assert len(_rules(settings)) == 2 and not form.preview_button.disabled
    form.fields.inputs["match"].value = "no such message"
    form.preview_button.click()
    assert "would have opened <b>0</b> incident(s)" in form.backtest_result.value


def test_preview_with_a_bad_kind_field_shows_the_error_and_runs_nothing(page: RulesPage) -> None:
    form = page.form
    form.kind.value = "match"
    form.service.value = "auth-service"
    form.preview_button.click()
    assert "match is required" in form.errors["match"].value
    assert form.backtest_result.value == ""


def test_the_editor_of_a_kind_rule_shows_and_saves_its_fields(
    settings: Settings, page: RulesPage
) -> None:
    form = page.form
    form.kind.value = "ratio"
    form.service.value = "api"
    form.threshold.value = "30"
    form.fields.inputs["min_events"].value = "50"
    form.create_button.click()
    (rule,) = [r for r in _rules(settings) if r.service == "api"]
    row = page.rows[rule.id]
    row.edit_button.click()
    ed = row.editor
    assert ed.fields.inputs["kind"].value == "ratio"
    assert _shown(ed.fields, "min_events") and not _shown(ed.fields, "sensitivity")
    assert ed.fields.inputs["min_events"].value == "50"
    ed.fields.inputs["min_events"].value = "10"
    ed.threshold.value = "120"
    ed.save_button.click()
    assert "at most 100" in ed.errors["threshold"].value and "Not saved" in ed.result.value
    ed.threshold.value = "40"
    ed.save_button.click()
    assert "Saved" in row.message.value, ed.result.value
    stored = _rule(settings, rule.id)
    assert (stored.threshold, stored.min_events) == (40, 10)
    row.edit_button.click()  # change its kind: the new kind's fields, the old one's cleared
    ed.fields.inputs["kind"].value = "anomaly"
    assert _shown(ed.fields, "sensitivity") and not _shown(ed.fields, "min_events")
    ed.fields.inputs["sensitivity"].value = "4"
    ed.save_button.click()
    stored = _rule(settings, rule.id)
    assert (stored.kind, stored.sensitivity, stored.min_events) == ("anomaly", 4.0, None)


def test_preview_of_a_ratio_rule_plots_the_percent(page: RulesPage) -> None:
    form = page.form
    form.kind.value = "ratio"
    form.service.value = "auth-service"
    form.threshold.value = "50"
    form.fields.inputs["min_events"].value = "5"
    form.preview_button.click()
    assert "≥ 50% of events in 5 min" in form.backtest_result.value
    assert "would have opened <b>1</b> incident(s)" in form.backtest_result.value
    fig = form.backtest_figure
    assert fig is not None and max(fig.data[0].y) == 100.0  # type: ignore[arg-type]


def test_the_editor_previews_the_edited_rule_over_24_h_and_saves_nothing(
    settings: Settings, world: Seeded, page: RulesPage
) -> None:
    row = page.rows[world.rules[0]]  # auth burst: ≥ 10 in 5 min; 30 errors 20 min ago
    row.edit_button.click()
    ed = row.editor
    ed.threshold.value = "500"
    ed.preview_button.click()
    assert "Over the last 24 h" in ed.preview_result.value
    assert "would have opened <b>0</b> incident(s)" in ed.preview_result.value
    ed.fields.inputs["kind"].value = "match"
    ed.fields.inputs["match"].value = "AUTHENTICATE user"
    ed.threshold.value = "5"
    ed.preview_button.click()
    assert "“AUTHENTICATE user” ≥ 5 in 5 min" in ed.preview_result.value
    assert "would have opened <b>1</b> incident(s)" in ed.preview_result.value
    assert ed.preview_figure is not None and ed.preview_chart.outputs
    ed.fields.inputs["match"].value = ""
    ed.preview_button.click()
    assert "match is required" in ed.errors["match"].value and "Not tried" in ed.result.value
    stored = _rule(settings, world.rules[0])
    assert (stored.kind, stored.threshold, stored.match) == ("threshold", 10, None)


# -- flap control and reminders on the page (issue 15) -----------------------

_FLAP = ("pending_minutes", "repeat_minutes", "recovery_threshold")


def test_flap_fields_sit_in_a_collapsed_advanced_section_and_are_sent_only_when_set(
    page: RulesPage,
) -> None:
    form = page.form
    advanced = form.fields.advanced
    assert advanced is not None and advanced.selected_index is None  # collapsed
    assert "flap control and reminders" in advanced.get_title(0)
    assert advanced in form.widget.children
    for name in _FLAP:
        assert form.fields.rows_by_name[name] not in form.widget.children  # inside the section
    form.service.value = "api"
    assert set(form.values()).isdisjoint(_FLAP)  # blank: not sent
    form.fields.inputs["pending_minutes"].value = "2"
    assert form.values()["pending_minutes"] == "2"
    assert "repeat_minutes" not in form.values()


def test_flap_fields_round_trip_create_edit_clear_and_get_shows_null(
    settings: Settings, page: RulesPage
) -> None:
    form = page.form
    form.service.value = "api"
    form.threshold.value = "5"
    inputs = form.fields.inputs
    inputs["pending_minutes"].value = "2"
    inputs["repeat_minutes"].value = "30"
    inputs["recovery_threshold"].value = "3"
    form.create_button.click()
    assert "Created rule" in form.result.value, form.result.value
    (rule,) = [r for r in _rules(settings) if r.service == "api"]
    assert (rule.pending_minutes, rule.repeat_minutes, rule.recovery_threshold) == (2, 30, 3.0)
    assert all(inputs[n].value == "" for n in _FLAP)  # the form is ready for the next rule
    cond = page.rows[rule.id].cells.children[1].value
    assert "≥ 5 in 5 min for 2 min · repeats every 30 min · recovers below 3" in cond
    row = page.rows[rule.id]
    row.edit_button.click()
    ed = row.editor
    shown = {n: ed.fields.inputs[n].value for n in _FLAP}
    assert shown == {"pending_minutes": "2", "repeat_minutes": "30", "recovery_threshold": "3"}
    assert ed.fields.advanced is not None and ed.fields.advanced.selected_index == 0  # set: open
    ed.fields.inputs["repeat_minutes"].value = ""  # never remind again
    ed.save_button.click()
    assert "Saved" in row.message.value, ed.result.value
    stored = _rule(settings, rule.id)
    assert (stored.pending_minutes, stored.repeat_minutes, stored.recovery_threshold) == (
        2,
        None,
        3.0,
    )
    assert "repeats" not in page.rows[rule.id].cells.children[1].value
    client = TestClient(create_app(settings))  # the API's GET; no lifespan (no ingestor) needed
    got = client.get(f"/api/alerts/rules/{rule.id}").json()
    assert (got["pendingMinutes"], got["repeatMinutes"], got["recoveryThreshold"]) == (2, None, 3)


def test_the_api_error_on_a_flap_field_is_shown_beside_it_and_opens_the_section(
    settings: Settings, page: RulesPage
) -> None:
    form = page.form
    form.kind.value = "absence"
    form.service.value = "api"
    form.threshold.value = "5"
    assert "at or above" in form.fields.hints["recovery_threshold"].value
    form.fields.inputs["pending_minutes"].value = "0"
    form.create_button.click()
    assert "greater than or equal to 1" in form.errors["pending_minutes"].value
    assert form.fields.advanced is not None and form.fields.advanced.selected_index == 0
    form.fields.advanced.selected_index = None
    form.fields.inputs["pending_minutes"].value = ""
    form.fields.inputs["recovery_threshold"].value = "2"  # absence recovers at or above
    form.create_button.click()
    assert "at least threshold (5) for kind absence" in form.errors["recovery_threshold"].value
    assert "Not created" in form.result.value and form.fields.advanced.selected_index == 0
    form.kind.value = "threshold"
    assert "below" in form.fields.hints["recovery_threshold"].value
    assert not [r for r in _rules(settings) if r.service == "api"]
    form.fields.inputs["recovery_threshold"].value = ""
    form.create_button.click()
    (rule,) = [r for r in _rules(settings) if r.service == "api"]
    row = page.rows[rule.id]
    row.edit_button.click()
    ed = row.editor
    assert ed.fields.advanced is not None and ed.fields.advanced.selected_index is None
    ed.fields.inputs["recovery_threshold"].value = "8"  # above the threshold: refused on save
    ed.save_button.click()
    assert "at most threshold (5)" in ed.errors["recovery_threshold"].value
    assert "Not saved" in ed.result.value and ed.fields.advanced.selected_index == 0
    assert _rule(settings, rule.id).recovery_threshold is None


def test_the_condition_of_an_absence_rule_recovers_at_or_above() -> None:
    rule = AlertRule(
        service="api",
        threshold=3,
        window_minutes=10,
        kind="absence",
        recovery_threshold=5,
        pending_minutes=4,
    )
    assert condition_text(rule) == "< 3 events in 10 min for 4 min · recovers at or above 5"
