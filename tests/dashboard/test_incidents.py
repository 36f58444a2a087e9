"""The Incidents page: cards, acknowledge/resolve by button, per-row failure, the detail."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from tests.dashboard.seed import Seeded
from workbench.catalog.models import AlertIncident
from workbench.config import Settings
from workbench.dashboard import store
from workbench.dashboard.incidents import build_incidents, incident_link


def _status(settings: Settings, incident_id: object) -> str:
    with store.session_for(settings) as s:
        inc = s.get(AlertIncident, incident_id)
        assert inc is not None
        return inc.status


def test_cards_and_rows(settings: Settings, world: Seeded, clock: Callable[[], datetime]) -> None:
    page = build_incidents(settings, clock=clock)
    page.refresh()
    assert page.error.message == ""
    assert len(page.rows) == 3
    assert "resolved today (UTC)" in page.summary.value
    row = page.rows[world.open_incident]  # type: ignore[index]
    assert "wb-status-open" in row.cells.children[0].value


def test_acknowledge_button_updates_catalog_and_badge(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(settings, clock=clock)
    page.refresh()
    row = page.rows[world.open_incident]  # type: ignore[index]
    row.ack_button.click()
    assert _status(settings, world.open_incident) == "acknowledged"
    assert "wb-status-acknowledged" in row.cells.children[0].value
    assert "by dashboard" in row.cells.children[0].value
    assert not row.busy and not row.ack_button.disabled and row.message.value == ""
    assert "acknowledged" in page.summary.value


def test_resolve_button_updates_catalog(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(settings, clock=clock)
    page.refresh()
    row = page.rows[world.acked_incident]  # type: ignore[index]
    row.resolve_button.click()
    assert _status(settings, world.acked_incident) == "resolved"
    assert "wb-status-resolved" in row.cells.children[0].value


def test_failed_action_leaves_the_row_and_says_why(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(settings, clock=clock)
    page.refresh()
    row = page.rows[world.open_incident]  # type: ignore[index]
    # Someone else resolved it meanwhile: the page still shows it open.
    with store.session_for(settings) as s:
        store.resolve(s, world.open_incident, actor="cli", now=clock())  # type: ignore[arg-type]
    row.ack_button.click()
    assert "Could not acknowledge" in row.message.value
    assert not row.busy and row.ack_button.description == "Acknowledge"
    assert _status(settings, world.open_incident) == "resolved"


def test_busy_state_disables_the_row_while_acting(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(settings, clock=clock)
    page.refresh()
    row = page.rows[world.open_incident]  # type: ignore[index]
    seen: list[tuple[bool, str]] = []
    original = page.apply

    def spy(incident_id, action):  # type: ignore[no-untyped-def]
        seen.append((row.ack_button.disabled, row.ack_button.description))
        return original(incident_id, action)

    page.apply = spy  # type: ignore[method-assign]
    row.act("acknowledge")
    assert seen == [(True, "Acknowledging…")]


def test_query_parameter_opens_the_detail_with_timeline_and_mini_trend(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(settings, incident=str(world.open_incident), clock=clock)
    page.refresh()
    d = page.detail
    assert d.widget.children == (d.panel,) and d.incident_id == world.open_incident
    assert "auth-service" in d.info.value and "created" in d.timeline.value
    assert d.figure is not None and sum(d.figure.data[0].y) == 30  # type: ignore[arg-type]
    assert 0 in list(d.figure.data[0].y)  # type: ignore[arg-type]


def test_unknown_or_malformed_incident_link_says_so(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(settings, incident="not-an-id", clock=clock)
    page.refresh()
    assert "not an incident id" in page.detail.error.message
    page.open_detail("00000000-0000-0000-0000-000000000000")
    assert "Not found" in page.detail.error.message
    assert page.error.message == ""


def test_status_filter(settings: Settings, world: Seeded, clock: Callable[[], datetime]) -> None:
    page = build_incidents(settings, clock=clock)
    page.refresh()
    page.status_filter.value = "resolved"
    assert list(page.rows) == [world.resolved_incident]


def test_incident_link_shape() -> None:
    assert incident_link("http://h:8866/", "abc") == (
        "http://h:8866/voila/render/incidents.ipynb?incident=abc"
    )


# -- a filtered list says which filter is empty (issue 17 item 9) ------------


def test_empty_status_filter_says_it_is_the_status_and_what_else_there_is(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    with store.session_for(settings) as s:  # nothing open any more
        store.resolve(s, world.open_incident, actor="cli", now=clock())  # type: ignore[arg-type]
    page = build_incidents(settings, status="open", clock=clock)
    page.refresh()
    assert page.rows == {}
    text = page.empty.value
    assert "No open incidents" in text and "status filter" in text
    assert "3 incidents in other states" in text
    assert page.clear_filters.layout.display is None
    page.clear_filters.click()
    assert page.status_filter.value == "" and len(page.rows) == 3
    assert page.empty.value == "" and page.clear_filters.layout.display == "none"


def test_empty_service_and_status_filters_name_each_one(
    settings: Settings, world: Seeded, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(settings, clock=clock, service="billing")
    page.refresh()
    assert ("billing", "billing") in page.service_filter.options
    assert page.service_filter.value == "billing"
    assert list(page.rows) == [world.resolved_incident]
    page.status_filter.value = "open"
    assert page.rows == {}
    text = page.empty.value
    assert "No open incidents for service <b>billing</b>" in text
    assert "1 billing incident in other states" in text  # the status filter empties it
    assert "1 open incident on other services" in text  # and so does the service filter
    page.service_filter.value = ""
    assert list(page.rows) == [world.open_incident]


def test_no_incidents_at_all_keeps_the_first_run_message(
    empty: Settings, clock: Callable[[], datetime]
) -> None:
    page = build_incidents(empty, status="open", clock=clock)
    page.refresh()
    assert "When a rule breaches its threshold" in page.empty.value
    assert "filter" not in page.empty.value
