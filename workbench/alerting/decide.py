"""The alert decision: what one rule does to its incident at one tick. Pure: no I/O, no clock.

:func:`decide` implements the evaluation steps of ``design.md`` ("Alerting") over
plain frozen dataclasses. The caller (``evaluate.py`` against the catalog,
``backtest.py`` against a replay) counts the events, loads the latest incident of
the fingerprint and the silences, and applies the returned :class:`Decision`.

Order of the checks (first match wins):

1. rule disabled                         -> ``none/disabled``
2. no breach (``count < threshold``):
   an active incident, ``auto_resolve`` set, no breach seen for that long
                                         -> ``auto_resolve/auto_resolved``
   otherwise                             -> ``none/below_threshold``
3. breach, active incident               -> ``update/updated`` (no notification)
4. breach, silenced                      -> ``suppress/silenced``
5. breach, cooldown since ``last_triggered_at`` not over -> ``suppress/cooldown``
6. breach, latest incident resolved: ``now - last_seen_error_at >= quiet``
                                         -> ``reopen/reopened`` else ``suppress/quiet_period``
7. breach, no incident                   -> ``create/created``

Flap control and re-notify (rule fields, all optional; ``docs/alerting.md``, "Flap control"):

* ``pending``: a breach with no active incident opens one (create or reopen) only
  once it has held on consecutive ticks for that long; until then ``suppress/pending``.
  The start of the unbroken breach is ``rule.pending_since`` (kept in the catalog by
  the caller); ``Decision.pending_since`` is its value after the tick.
* ``recovery_threshold``: an active incident whose value stopped breaching but is
  not yet past the recovery threshold (below it; for ``absence``, at or above it) is
  held as if still breaching: ``update/held_above_recovery`` (auto-resolve waits).
* ``repeat``: an ``open`` (not acknowledged) incident not silenced pages again
  (``repeat/repeated``, ``error_alert_repeat``) once ``repeat`` has passed since its
  last page (``last_notified_at``, else ``triggered_at``).

Silences mute what would page (create, reopen, repeat) and the auto-resolve notification.
An incident that is already active keeps being tracked while silenced (its
``last_seen_error_at``/``error_count`` move, auto-resolve still resolves it, silently):
the silence hides new pages, it does not freeze or hide what on-call already has.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from workbench.lake.schema import ERROR_LEVELS

if TYPE_CHECKING:
    from workbench.alerting.kinds import Breach

ACTIVE = frozenset({"open", "acknowledged"})
MIN_QUIET = timedelta(minutes=15)

# Notification types (the original's payload ``type`` values).
ALERT = "error_alert"
REOPENED = "error_alert_reopened"
RESOLVED = "error_alert_resolved"
REPEAT = "error_alert_repeat"

# Actions that change the incident and are therefore written by the evaluator.
STATE_CHANGING = frozenset({"create", "update", "reopen", "auto_resolve", "repeat"})
#: The reason of an ``update`` that held an incident between threshold and recovery.
HELD = "held_above_recovery"


@dataclass(frozen=True, slots=True)
class RuleState:
    """What a decision needs to know about one rule (a catalog row or a draft)."""

    rule_id: str
    service: str
    threshold: int
    window: timedelta
    cooldown: timedelta = timedelta(0)
    enabled: bool = True
    auto_resolve: timedelta | None = None
    severity: str = "warning"
    last_triggered_at: datetime | None = None
    levels: tuple[str, ...] = ERROR_LEVELS
    message_contains: str | None = None
    name: str = ""
    kind: str = "threshold"
    min_events: int | None = None
    match: str | None = None
    baseline_days: int | None = None
    sensitivity: float | None = None
    pending: timedelta | None = None
    pending_since: datetime | None = None
    repeat: timedelta | None = None
    recovery_threshold: float | None = None

    @property
    def fingerprint(self) -> str:
        """Return the deduplication key ``{service}:{rule_id}``."""
        return fingerprint(self.service, self.rule_id)

    @property
    def quiet(self) -> timedelta:
        """Return the quiet period: ``max(2 * window, 15 min)``."""
        return quiet_period(self.window)


@dataclass(frozen=True, slots=True)
class IncidentState:
    """The latest incident of a fingerprint, as far as a decision cares."""

    id: uuid.UUID | None
    status: str
    first_triggered_at: datetime
    triggered_at: datetime
    last_seen_error_at: datetime
    error_count: int
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None
    reopen_count: int = 0
    last_notified_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Return True while the incident is open or acknowledged."""
        return self.status in ACTIVE


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do: ``action``/``reason``, the incident after the change and what to notify.

    ``incident`` is the incident state to write (None when there is none);
    ``notify`` is the payload ``type`` to send (None: no notification);
    ``last_triggered_at`` is the rule's value after the decision; ``previous`` is
    the incident as it was before.
    """

    action: str
    reason: str
    fingerprint: str
    count: int
    threshold: int
    at: datetime
    incident: IncidentState | None
    notify: str | None
    last_triggered_at: datetime | None
    silenced: bool = False
    previous: IncidentState | None = None
    kind: str = "threshold"
    value: float | None = None
    baseline: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    breached: bool = False
    #: The rule's pending start after this tick (None: no breach pending).
    pending_since: datetime | None = None
    #: On a create/reopen after a pending period: since when the breach was pending.
    pending_held_since: datetime | None = None

    @property
    def changes_state(self) -> bool:
        """Return True when the decision writes the incident (create, update, reopen, resolve)."""
        return self.action in STATE_CHANGING


def fingerprint(service: str, rule_id: str) -> str:
    """Return the deduplication key of a rule's incidents: ``{service}:{rule_id}``."""
    return f"{service}:{rule_id}"


def quiet_period(window: timedelta) -> timedelta:
    """Return how long errors must have stopped before a resolved incident may reopen."""
    return max(2 * window, MIN_QUIET)


def recovered(rule: RuleState, value: float) -> bool:
    """Return True when ``value`` is past the rule's recovery threshold (or none is set).

    Breach means "at least" for every kind but ``absence`` ("fewer than"): there the
    recovery threshold is at or above the threshold and recovery is ``value >=`` it;
    elsewhere it is at or below the threshold and recovery is ``value <`` it.
    """
    if rule.recovery_threshold is None:
        return True
    if rule.kind == "absence":
        return value >= rule.recovery_threshold
    return value < rule.recovery_threshold


def repeat_due(rule: RuleState, latest: IncidentState, silenced: bool, now: datetime) -> bool:
    """Return True when an open, unacknowledged, unsilenced incident is due a repeat page."""
    if rule.repeat is None or silenced or latest.status != "open":
        return False
    last = latest.last_notified_at or latest.triggered_at
    return now - last >= rule.repeat


def decide(
    rule: RuleState,
    count: int,
    latest: IncidentState | None,
    silenced: bool,
    now: datetime,
    breach: Breach | None = None,
) -> Decision:
    """Return the decision for ``rule`` seeing ``count`` matching events in its window at ``now``.

    ``latest`` is the active incident of the fingerprint if there is one, else the
    most recent resolved one, else None. ``breach`` is the rule kind's verdict
    (:func:`workbench.alerting.kinds.judge`); without it, a breach is
    ``count >= threshold`` (a threshold rule). A kind's own reason for not breaching
    (``never_seen``, ``no_baseline``, ``too_few_events``) replaces ``below_threshold``.
    """
    fp = rule.fingerprint
    breached = count >= rule.threshold if breach is None else breach.breached

    def out(
        action: str,
        reason: str,
        incident: IncidentState | None = latest,
        notify: str | None = None,
        last_triggered_at: datetime | None = rule.last_triggered_at,
        pending_since: datetime | None = None,
        pending_held_since: datetime | None = None,
    ) -> Decision:
        return Decision(
            action=action,
            reason=reason,
            fingerprint=fp,
            count=count,
            threshold=rule.threshold,
            at=now,
            incident=incident,
            notify=notify,
            last_triggered_at=last_triggered_at,
            silenced=silenced,
            previous=latest,
            kind=rule.kind,
            value=float(count) if breach is None else breach.value,
            baseline=None if breach is None else breach.baseline,
            detail={} if breach is None else breach.detail,
            breached=breached,
            pending_since=pending_since,
            pending_held_since=pending_held_since,
        )

    if not rule.enabled:
        return out("none", "disabled")

    active = latest is not None and latest.active
    value = float(count) if breach is None else breach.value
    measured = breach is None or breach.reason is None
    held = not breached and active and measured and not recovered(rule, value)
    if not breached and not held:
        if (
            active
            and latest is not None
            and rule.auto_resolve is not None
            and now - latest.last_seen_error_at >= rule.auto_resolve
        ):
            resolved = replace(latest, status="resolved", resolved_at=now)
            # Silenced: resolve anyway (the state is true), but do not page about it.
            return out("auto_resolve", "auto_resolved", resolved, None if silenced else RESOLVED)
        if active and latest is not None and repeat_due(rule, latest, silenced, now):
            return out("repeat", "repeated", replace(latest, last_notified_at=now), REPEAT)
        return out("none", (breach.reason if breach is not None else None) or "below_threshold")

    if active and latest is not None:
        seen = replace(latest, last_seen_error_at=now, error_count=count)
        if repeat_due(rule, latest, silenced, now):
            return out("repeat", "repeated", replace(seen, last_notified_at=now), REPEAT)
        return out("update", HELD if held else "updated", seen)

    since = rule.pending_since or now
    if rule.pending is not None and now - since < rule.pending:
        return out("suppress", "pending", pending_since=since)

    if silenced:
        return out("suppress", "silenced", pending_since=since)

    if rule.last_triggered_at is not None and now - rule.last_triggered_at < rule.cooldown:
        return out("suppress", "cooldown", pending_since=since)

    held_since = since if rule.pending is not None else None
    if latest is not None:  # resolved
        if now - latest.last_seen_error_at < rule.quiet:
            return out("suppress", "quiet_period", pending_since=since)
        reopened = replace(
            latest,
            status="open",
            triggered_at=now,
            last_seen_error_at=now,
            error_count=count,
            acknowledged_at=None,
            resolved_at=None,
            reopen_count=latest.reopen_count + 1,
            last_notified_at=now,
        )
        return out("reopen", "reopened", reopened, REOPENED, now, None, held_since)

    created = IncidentState(
        id=None,
        status="open",
        first_triggered_at=now,
        triggered_at=now,
        last_seen_error_at=now,
        error_count=count,
        last_notified_at=now,
    )
    return out("create", "created", created, ALERT, now, None, held_since)
