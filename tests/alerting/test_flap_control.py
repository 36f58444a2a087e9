"""Flap control and re-notify (issue 15 items 3, 4): the rule fields at the API edge
(defaults, 400s naming the field, the direction per kind), then the pure decision on
hand-made tick sequences through :func:`decide`, carrying the state a catalog keeps
between ticks, and properties over random sequences (hypothesis).

End to end through ``workbench evaluate --now``: ``test_flap_evaluate.py``, ``test_repeat.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.alerting.decide import (
    ALERT,
    REPEAT,
    RESOLVED,
    Decision,
    IncidentState,
    RuleState,
    decide,
)
from workbench.alerting.kinds import absence_breach
from workbench.catalog.db import dispose_engine, get_engine, init_db
from workbench.config import Settings

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)

RULE = RuleState(
    rule_id="r1",
    service="auth",
    threshold=5,
    window=timedelta(minutes=10),
    cooldown=timedelta(0),
)


# --- the API edge -------------------------------------------------------------------

BASE = {"service": "auth-service", "threshold": 10, "windowMinutes": 5}


@pytest.fixture
def api(settings: Settings) -> Iterator[TestClient]:
    """A client of the alerts routes on a fresh, migrated SQLite catalog."""
    from ingest_api.app import _install_error_handlers
    from ingest_api.routes import alerts

    init_db(get_engine(settings.database_url))
    app = FastAPI()
    app.state.settings = settings
    _install_error_handlers(app)
    app.include_router(alerts.router)
    with TestClient(app) as client:
        yield client
    dispose_engine(settings.database_url)


def _post(api: TestClient, **fields: Any) -> Any:
    return api.post("/api/alerts/rules", json={**BASE, **fields})


def test_the_fields_are_optional_and_absent_means_todays_behaviour(api: TestClient) -> None:
    rule = _post(api).json()
    assert (rule["pendingMinutes"], rule["repeatMinutes"], rule["recoveryThreshold"]) == (
        None,
        None,
        None,
    )
    rule = _post(api, pendingMinutes=2, repeatMinutes=30, recoveryThreshold=6).json()
    assert (rule["pendingMinutes"], rule["repeatMinutes"], rule["recoveryThreshold"]) == (
        2,
        30,
        6.0,
    )
    # Clearing one with null goes back to today's behaviour.
    r = api.patch(f"/api/alerts/rules/{rule['id']}", json={"repeatMinutes": None})
    assert r.status_code == 200, r.text
    assert api.get(f"/api/alerts/rules/{rule['id']}").json()["repeatMinutes"] is None


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"recoveryThreshold": 11}, "recoveryThreshold", "at most threshold (10)"),
        ({"kind": "ratio", "threshold": 20, "recoveryThreshold": 25}, "recoveryThreshold", "ratio"),
        (
            {"kind": "absence", "threshold": 5, "recoveryThreshold": 4},
            "recoveryThreshold",
            "at least",
        ),
        ({"recoveryThreshold": -1}, "recoveryThreshold", ""),
        ({"pendingMinutes": 0}, "pendingMinutes", ""),
        ({"repeatMinutes": 0}, "repeatMinutes", ""),
        ({"repeatMinutes": "soon"}, "repeatMinutes", ""),
    ],
)
def test_invalid_values_are_400_naming_the_field(
    api: TestClient, body: dict[str, Any], field: str, words: str
) -> None:
    r = _post(api, **body)
    assert r.status_code == 400, r.text
    details = r.json()["details"]
    assert field in details and words in str(details[field][0]), details


def test_the_direction_per_kind(api: TestClient) -> None:
    assert _post(api, recoveryThreshold=10).status_code == 201  # equal: no hysteresis
    absence = _post(api, kind="absence", threshold=5, recoveryThreshold=8)
    assert absence.status_code == 201, absence.text
    # A change is checked against the rule after it: lowering the threshold below the
    # recovery threshold names recoveryThreshold.
    r = api.patch(
        f"/api/alerts/rules/{_post(api, recoveryThreshold=8).json()['id']}", json={"threshold": 6}
    )
    assert r.status_code == 400 and "recoveryThreshold" in r.json()["details"], r.text


# --- the decision on tick sequences ------------------------------------------------


@dataclass
class Replay:
    """The catalog between ticks: the rule (its pending start) and the latest incident."""

    rule: RuleState
    incident: IncidentState | None = None
    decisions: list[Decision] = field(default_factory=list)

    def tick(
        self, count: int, at: datetime, *, silenced: bool = False, absence: bool = False
    ) -> Decision:
        breach = absence_breach(self.rule.threshold, count, True) if absence else None
        d = decide(self.rule, count, self.incident, silenced, at, breach=breach)
        self.rule = replace(
            self.rule, pending_since=d.pending_since, last_triggered_at=d.last_triggered_at
        )
        if d.changes_state:
            self.incident = d.incident
        self.decisions.append(d)
        return d

    def run(self, counts: Sequence[int], start: datetime = T0, **kw: bool) -> list[str]:
        return [self.tick(c, start + i * MIN, **kw).reason for i, c in enumerate(counts)]

    def ack(self, at: datetime) -> None:
        assert self.incident is not None
        self.incident = replace(self.incident, status="acknowledged", acknowledged_at=at)


# --- pendingMinutes ---------------------------------------------------------------


def test_a_one_tick_spike_opens_nothing_with_pending() -> None:
    r = Replay(replace(RULE, pending=2 * MIN))
    assert r.run([9, 0, 9, 0]) == ["pending", "below_threshold", "pending", "below_threshold"]
    assert r.incident is None
    assert r.rule.pending_since is None


def test_a_breach_held_for_the_pending_period_opens_once() -> None:
    r = Replay(replace(RULE, pending=2 * MIN))
    assert r.run([9, 9, 9, 9]) == ["pending", "pending", "created", "updated"]
    created = r.decisions[2]
    assert created.notify == ALERT
    # The incident knows since when the breach was pending (its timeline records it).
    assert created.pending_held_since == T0
    assert r.rule.pending_since is None


def test_without_pending_a_spike_opens_at_once() -> None:
    r = Replay(RULE)
    assert r.run([9, 0]) == ["created", "below_threshold"]


def test_a_broken_breach_starts_the_pending_period_again() -> None:
    r = Replay(replace(RULE, pending=2 * MIN))
    assert r.run([9, 9, 0, 9, 9, 9]) == [
        "pending",
        "pending",
        "below_threshold",
        "pending",
        "pending",
        "created",
    ]
    assert r.decisions[-1].pending_held_since == T0 + 3 * MIN


def test_pending_also_holds_back_a_reopen() -> None:
    rule = replace(RULE, pending=2 * MIN, auto_resolve=2 * MIN)
    r = Replay(rule)
    r.run([9, 9, 9, 0, 0])
    assert r.incident is not None and r.incident.status == "resolved"
    later = T0 + 60 * MIN  # well after the quiet period
    assert r.run([9, 9, 9], later) == ["pending", "pending", "reopened"]


def test_pending_is_kept_through_a_silence() -> None:
    r = Replay(replace(RULE, pending=2 * MIN))
    assert r.run([9, 9, 9], silenced=True) == ["pending", "pending", "silenced"]
    assert r.rule.pending_since == T0
    assert r.run([9], T0 + 3 * MIN) == ["created"]


# --- recoveryThreshold ------------------------------------------------------------


def test_hovering_resolves_and_refires_without_hysteresis() -> None:
    rule = replace(RULE, auto_resolve=MIN, window=timedelta(minutes=1))
    r = Replay(rule)
    reasons = r.run([5, 4, 5, 4, 5, 4, 5] + [5] * 20)
    assert "auto_resolved" in reasons


def test_hovering_keeps_one_incident_open_with_recovery_threshold() -> None:
    rule = replace(RULE, auto_resolve=MIN, recovery_threshold=3.0)
    r = Replay(rule)
    reasons = r.run([5, 4, 5, 4, 3, 5, 4])
    assert reasons == [
        "created",
        "held_above_recovery",
        "updated",
        "held_above_recovery",
        "held_above_recovery",
        "updated",
        "held_above_recovery",
    ]
    assert [d.notify for d in r.decisions] == [ALERT] + [None] * 6
    assert r.incident is not None and r.incident.status == "open"
    # Held ticks count as still firing: auto-resolve waits from the last held tick.
    assert r.incident.last_seen_error_at == T0 + 6 * MIN


def test_resolves_once_below_the_recovery_threshold() -> None:
    rule = replace(RULE, auto_resolve=MIN, recovery_threshold=3.0)
    r = Replay(rule)
    assert r.run([5, 4, 2]) == ["created", "held_above_recovery", "auto_resolved"]
    assert r.decisions[-1].notify == RESOLVED


def test_absence_recovers_only_once_back_to_the_recovery_threshold() -> None:
    # absence: breach = fewer than 5 events; recovered only once >= 8 events again.
    rule = replace(RULE, kind="absence", auto_resolve=MIN, recovery_threshold=8.0)
    r = Replay(rule)
    reasons = r.run([0, 6, 7, 2, 9], absence=True)
    assert reasons == [
        "created",
        "held_above_recovery",
        "held_above_recovery",
        "updated",
        "auto_resolved",
    ]


# --- repeatMinutes ----------------------------------------------------------------


def test_repeat_every_n_minutes_until_acknowledged() -> None:
    r = Replay(replace(RULE, repeat=2 * MIN))
    reasons = r.run([9] * 6)
    assert reasons == ["created", "updated", "repeated", "updated", "repeated", "updated"]
    assert [d.notify for d in r.decisions if d.notify] == [ALERT, REPEAT, REPEAT]
    r.ack(T0 + 6 * MIN)
    assert r.run([9] * 5, T0 + 6 * MIN) == ["updated"] * 5


def test_repeat_goes_on_while_open_after_the_errors_stop() -> None:
    r = Replay(replace(RULE, repeat=2 * MIN))
    assert r.run([9, 0, 0, 0]) == ["created", "below_threshold", "repeated", "below_threshold"]
    # A repeat of a quiet incident does not pretend errors were seen.
    assert r.incident is not None and r.incident.last_seen_error_at == T0


def test_no_repeat_inside_a_silence_and_one_after_it() -> None:
    r = Replay(replace(RULE, repeat=2 * MIN))
    r.run([9])
    assert r.run([9] * 4, T0 + MIN, silenced=True) == ["updated"] * 4
    assert r.run([9], T0 + 5 * MIN) == ["repeated"]


def test_no_repeat_without_repeat_minutes() -> None:
    r = Replay(RULE)
    assert set(r.run([9] * 30)[1:]) == {"updated"}


# --- properties -------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    counts=st.lists(st.integers(0, 12), min_size=1, max_size=40),
    pending=st.integers(0, 4),
    recovery=st.one_of(st.none(), st.integers(1, 5)),
    repeat=st.one_of(st.none(), st.integers(1, 5)),
)
def test_properties(
    counts: list[int], pending: int, recovery: int | None, repeat: int | None
) -> None:
    rule = replace(
        RULE,
        pending=pending * MIN if pending else None,
        recovery_threshold=None if recovery is None else float(recovery),
        repeat=repeat * MIN if repeat else None,
        auto_resolve=MIN,
    )
    r = Replay(rule)
    r.run(counts)
    opened = [d for d in r.decisions if d.action in ("create", "reopen")]
    for d in opened:
        # An incident opens only after a breach held on consecutive ticks for the period.
        i = r.decisions.index(d)
        held = 1 + (pending if pending else 0)
        assert i + 1 >= held
        assert all(c >= rule.threshold for c in counts[i + 1 - held : i + 1])
    for i, d in enumerate(r.decisions):
        if d.action == "auto_resolve" and recovery is not None:
            # Resolved only when the value was below the recovery threshold.
            assert counts[i] < recovery
        if d.notify == REPEAT:
            assert repeat is not None
            prev = [
                x.at for x in r.decisions[:i] if x.notify in (ALERT, REPEAT, "error_alert_reopened")
            ]
            assert prev and d.at - prev[-1] >= repeat * MIN
