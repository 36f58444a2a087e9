"""The analyst surface (``import workbench``) over a small lake and catalog in tmp_path."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
import polars as pl
import pytest
from sqlmodel import Session

import workbench
from tests.factories import write_events
from workbench import api, plots
from workbench.catalog import frames
from workbench.catalog import models as m
from workbench.catalog.db import get_engine, init_db
from workbench.config import Settings
from workbench.errors import NotFound, ValidationError

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def lake(settings: Settings) -> Settings:
    """A lake with errors of two services over the last hours, and one event 3 days ago."""
    rows = []
    for i in range(60):
        rows.append(
            {
                "timestamp": NOW - timedelta(minutes=i),
                "service": "api" if i % 3 else "db",
                "level": "error" if i % 2 else "info",
                "message": f"timeout after {i} ms for user {i * 7}",
            }
        )
    rows.append(
        {
            "timestamp": NOW - timedelta(minutes=5),
            "service": "api",
            "level": "fatal",
            "message": 'config "x" missing',
        }
    )
    rows.append(
        {
            "timestamp": NOW - timedelta(days=3),
            "service": "api",
            "level": "error",
            "message": "old news",
        }
    )
    write_events(settings.lake_url, rows)
    return settings


@pytest.fixture
def catalog(lake: Settings) -> tuple[Settings, m.AlertRule, m.AlertIncident]:
    """The lake plus a catalog holding one rule and two incidents of it."""
    engine = get_engine(lake.database_url)
    init_db(engine)
    rule = m.AlertRule(name="api errors", service="api", threshold=5, window_minutes=10)
    first = m.AlertIncident(
        rule_id=rule.id,
        service="api",
        fingerprint=f"api:{rule.id}",
        status="resolved",
        first_triggered_at=NOW - timedelta(days=2),
        triggered_at=NOW - timedelta(days=2),
        last_seen_error_at=NOW - timedelta(days=2),
        resolved_at=NOW - timedelta(days=2, hours=-1),
        error_count=9,
    )
    second = m.AlertIncident(
        rule_id=rule.id,
        service="api",
        fingerprint=f"api:{rule.id}",
        status="open",
        first_triggered_at=NOW - timedelta(minutes=30),
        triggered_at=NOW - timedelta(minutes=30),
        last_seen_error_at=NOW - timedelta(minutes=1),
        error_count=12,
    )
    with Session(engine, expire_on_commit=False) as session:
        session.add(rule)
        session.commit()
        session.add_all([first, second])
        session.commit()
    return lake, rule, second


def test_import_is_cheap() -> None:
    code = (
        "import sys, workbench; "
        "heavy = [m for m in ('plotly', 'sqlmodel', 'sqlalchemy', 'workbench.query.search') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_functions_have_docstrings() -> None:
    for name in workbench.__all__:
        obj = getattr(workbench, name)
        assert obj.__doc__ and obj.__doc__.strip(), name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("24h", NOW - timedelta(hours=24)),
        ("15m", NOW - timedelta(minutes=15)),
        ("2w", NOW - timedelta(weeks=2)),
        (timedelta(days=1), NOW - timedelta(days=1)),
        ("2026-11-20T12:00:00Z", datetime(2026, 11, 20, 12, tzinfo=UTC)),
        ("2026-11-20T13:00:00+01:00", datetime(2026, 11, 20, 12, tzinfo=UTC)),
        (datetime(2026, 11, 20, 12), datetime(2026, 11, 20, 12, tzinfo=UTC)),
        (None, None),
    ],
)
def test_relative_and_absolute_times(value: api.TimeLike | None, expected: datetime | None) -> None:
    assert api.time_range(value, value, NOW) == (expected, expected)


def test_bad_time_names_the_problem() -> None:
    # The one parser's wording (workbench.times): the field and the value.
    with pytest.raises(ValidationError, match="since: .*'yesterday-ish'") as err:
        api.time_range("yesterday-ish", None, NOW)
    assert list(err.value.details) == ["since"]


def test_logs_relative_and_absolute_ranges(lake: Settings) -> None:
    assert workbench.logs(settings=lake).collect().height == 62
    assert workbench.logs("1d", settings=lake).collect().height == 61
    absolute = workbench.logs(
        NOW - timedelta(days=4), (NOW - timedelta(days=2)).isoformat(), settings=lake
    ).collect()
    assert absolute["message"].to_list() == ["old news"]


def test_top_messages_groups_errors_into_patterns(lake: Settings) -> None:
    df = workbench.top_messages("24h", settings=lake)
    assert df["pattern"].to_list() == [
        "timeout after <num> ms for user <num>",
        "config <str> missing",
    ]
    assert df["count"].to_list() == [30, 1]
    assert df.row(0, named=True)["services"] == ["api", "db"]
    only_db = workbench.top_messages("24h", service="db", levels=None, settings=lake)
    assert only_db["count"].to_list() == [20]


def test_error_counts_per_service(lake: Settings) -> None:
    df = workbench.error_counts("2h", every="1h", settings=lake)
    assert df.columns == ["time", "service", "count"]
    assert df.group_by("service").agg(pl.col("count").sum()).sort("service").rows() == [
        ("api", 21),
        ("db", 10),
    ]


def test_incidents_and_rules_from_the_catalog(
    catalog: tuple[Settings, m.AlertRule, m.AlertIncident],
) -> None:
    settings, rule, open_incident = catalog
    every = workbench.incidents(settings=settings)
    assert every.height == 2 and every["status"].to_list() == ["open", "resolved"]
    assert every.schema == frames.INCIDENT_SCHEMA
    assert workbench.incidents("open", settings=settings)["id"].to_list() == [str(open_incident.id)]
    assert workbench.incidents(since="1d", settings=settings).height == 1
    with pytest.raises(ValidationError):
        workbench.incidents("closed", settings=settings)
    rules = workbench.rules(settings=settings)
    assert rules.schema == frames.RULE_SCHEMA
    assert rules.row(0, named=True)["levels"] == ["error", "fatal"]
    one = workbench.incident(str(open_incident.id), settings=settings)
    assert one["error_count"] == 12
    start, end = workbench.incident_window(open_incident.id, settings=settings)
    assert start == NOW - timedelta(minutes=150) and end == NOW + timedelta(minutes=59)
    with pytest.raises(NotFound):
        workbench.incident(uuid.uuid4(), settings=settings)


def test_empty_catalog_gives_empty_frames(settings: Settings) -> None:
    assert workbench.incidents(settings=settings).height == 0
    assert workbench.rules(settings=settings).height == 0


def test_backtest_by_rule_name_with_overrides(
    catalog: tuple[Settings, m.AlertRule, m.AlertIncident],
) -> None:
    settings, rule, _ = catalog
    result = workbench.backtest("api errors", "2h", settings=settings)
    assert result.ticks == 121 and len(result.incidents) >= 1
    assert workbench.find_rule(str(rule.id), settings=settings).name == "api errors"
    never = workbench.backtest(rule, "2h", settings=settings, threshold=10_000)
    assert never.incidents == []
    table = workbench.compare_thresholds(rule.id, [1, 5, 10_000], "2h", settings=settings)
    assert table["threshold"].to_list() == [1, 5, 10_000]
    assert table["incidents"].to_list()[-1] == 0
    assert table["incidents"].to_list()[0] >= 1


def test_plot_helpers_return_figures(lake: Settings) -> None:
    trend = workbench.error_trend(range="24h", settings=lake)
    fig = plots.trend_figure(trend, marks=[NOW], shade=(NOW - timedelta(hours=1), NOW))
    assert isinstance(fig, go.Figure) and sum(fig.data[0].y) == 31
    levels = plots.levels_figure(workbench.logs("1d", settings=lake))
    assert {t.name for t in levels.data} == {"info", "error", "fatal"}
    patterns = plots.patterns_figure(workbench.top_messages(settings=lake))
    assert list(patterns.data[0].x) == [1, 30]  # drawn bottom-up: most frequent on top
    services = plots.services_figure(workbench.error_counts(settings=lake))
    assert {t.name for t in services.data} == {"api", "db"}
    table = pl.DataFrame({"threshold": [1, 5], "incidents": [3, 1], "notifications": [4, 1]})
    assert len(plots.thresholds_figure(table).data) == 2
    assert workbench.plots is plots
