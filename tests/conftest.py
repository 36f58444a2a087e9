"""Shared fixtures (an isolated data directory and settings per test, a PostgreSQL database)
and the unit layer.

The unit layer (``scripts/test -m unit``, under a minute) is every test under
:data:`UNIT_PATHS` that is not marked ``slow``, ``postgres`` or ``browser`` and not
listed in :data:`UNIT_EXCLUDED`: the pure core and the edges that need nothing but
a temporary directory (SQLite catalog, Parquet lake, in-process widgets). One hook
marks them ``unit``, so a new test file joins by adding its path here, not a mark to
each file. Property tests run with the small ``unit`` hypothesis profile there (also
chosen by ``WORKBENCH_TEST_PROFILE=unit``); the full suite keeps their long runs.
``tests/test_layers.py`` keeps the list honest.

Area-specific fixtures live in the ``conftest.py`` of each test folder.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from workbench.config import Settings

# The tests' webhook receivers listen on 127.0.0.1: allow private targets, as local
# development does (tests of the refusal pass allow_private=False themselves). Set
# before any Settings is built; server subprocesses inherit it.
os.environ.setdefault("WORKBENCH_ALLOW_PRIVATE_WEBHOOKS", "true")

#: Test files and folders (relative to the repository) whose tests form the unit layer.
#: Nothing here may spawn a process, a server (even a thread on loopback), a kernel or a
#: browser, or touch PostgreSQL; tests marked slow, postgres or browser stay out by themselves.
UNIT_PATHS: tuple[str, ...] = (
    "tests/alerting/test_backtest.py",
    "tests/alerting/test_channel_types_templates.py",
    "tests/alerting/test_template_loops.py",
    "tests/alerting/test_decide.py",
    "tests/alerting/test_evaluate.py",
    "tests/alerting/test_flap_control.py",
    "tests/alerting/test_kinds.py",
    "tests/alerting/test_kinds_api.py",
    "tests/alerting/test_kinds_backtest.py",
    "tests/alerting/test_kinds_evaluate.py",
    "tests/alerting/test_race.py",
    "tests/api/test_outsider_evidence.py",
    "tests/catalog/",
    "tests/dashboard/test_api_mode.py",
    "tests/dashboard/test_channels.py",
    "tests/dashboard/test_errors.py",
    "tests/dashboard/test_incident_deliveries.py",
    "tests/dashboard/test_format.py",
    "tests/dashboard/test_imports.py",
    "tests/dashboard/test_incidents.py",
    "tests/dashboard/test_logs.py",
    "tests/dashboard/test_nav.py",
    "tests/dashboard/test_overview.py",
    "tests/dashboard/test_page.py",
    "tests/dashboard/test_rules.py",
    "tests/dashboard/test_widgets.py",
    "tests/lake/test_committed_facts.py",
    "tests/lake/test_compaction.py",
    "tests/lake/test_facts.py",
    "tests/lake/test_facts_bounded.py",
    "tests/lake/test_hot_path.py",
    "tests/lake/test_ingestor.py",
    "tests/lake/test_integrity.py",
    "tests/lake/test_lake_imports.py",
    "tests/lake/test_message_index_facts.py",
    "tests/lake/test_reader.py",
    "tests/lake/test_records.py",
    "tests/lake/test_retention.py",
    "tests/lake/test_wal.py",
    "tests/lake/test_wal_rotation.py",
    "tests/mirror/test_state_migrations.py",
    "tests/query/",
    "tests/security/test_dashboard_token.py",
    "tests/security/test_keys.py",
    "tests/security/test_outsider_rules_channels.py",
    "tests/security/test_ratelimit.py",
    "tests/security/test_webhooks.py",
    "tests/test_api.py",
    "tests/test_api_time_bounds.py",
    "tests/test_cli_keys.py",
    "tests/test_cli_mirror.py",
    "tests/test_conventions.py",
    "tests/test_demo.py",
    "tests/test_dependencies.py",
    "tests/test_docs.py",
    "tests/test_events.py",
    "tests/test_events_arrow.py",
    "tests/test_ingest.py",
    "tests/test_layers.py",
    "tests/test_logging_handler.py",
    "tests/test_otlp.py",
    "tests/test_package_graph.py",
    "tests/test_patterns.py",
    "tests/test_times.py",
)
#: Tests under UNIT_PATHS that stay out of the unit layer although unmarked: node id -> why.
UNIT_EXCLUDED: dict[str, str] = {
    "tests/test_api.py::test_import_is_cheap": "starts a fresh interpreter",
    "tests/lake/test_wal.py::test_folder_of_a_killed_process_is_an_orphan": "starts a process",
    "tests/security/test_webhooks.py::test_transport_refuses_a_real_loopback_server": (
        "serves HTTP on loopback"
    ),
}
#: Marks of the slower layers: a test carrying one is never a unit test.
SLOW_LAYER_MARKS = ("slow", "postgres", "browser")
#: The unit layer's property tests: a few examples each, enough to run every strategy.
UNIT_MAX_EXAMPLES = 25

hypothesis_settings.register_profile("unit", max_examples=UNIT_MAX_EXAMPLES, deadline=None)

ROOT = Path(__file__).resolve().parent.parent


def unit_mode(config: pytest.Config) -> bool:
    """Return whether this run selects the unit layer (``-m unit`` or ``WORKBENCH_TEST_PROFILE=unit``)."""
    expression = str(config.getoption("markexpr", "") or "")
    selected = re.search(r"(?<!not )\bunit\b", expression) is not None
    return selected or os.environ.get("WORKBENCH_TEST_PROFILE") == "unit"


def in_unit_layer(item: pytest.Item) -> bool:
    """Return whether ``item`` belongs to the unit layer (see the module docstring)."""
    if any(item.get_closest_marker(name) for name in SLOW_LAYER_MARKS):
        return False
    nodeid = item.nodeid
    if any(nodeid == ex or nodeid.startswith(ex + "[") for ex in UNIT_EXCLUDED):
        return False
    path = item.path.resolve().relative_to(ROOT).as_posix()
    return any(
        path.startswith(entry) if entry.endswith("/") else path == entry for entry in UNIT_PATHS
    )


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """With ``-m unit`` alone, do not even import the test files outside UNIT_PATHS."""
    if str(config.getoption("markexpr", "") or "").strip() != "unit":
        return None
    if not (collection_path.suffix == ".py" and collection_path.name.startswith("test_")):
        return None
    try:
        path = collection_path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return None
    inside = any(
        path.startswith(entry) if entry.endswith("/") else path == entry for entry in UNIT_PATHS
    )
    return None if inside else True


def pytest_configure(config: pytest.Config) -> None:
    if unit_mode(config):
        hypothesis_settings.load_profile("unit")


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unit = unit_mode(config)
    for item in items:
        if not in_unit_layer(item):
            continue
        item.add_marker(pytest.mark.unit)
        function = getattr(item, "function", None)
        if unit and hasattr(function, "hypothesis"):
            # A test's own @settings(max_examples=...) beats the profile: cap it here.
            own = function._hypothesis_internal_use_settings  # type: ignore[union-attr]
            capped = min(own.max_examples, UNIT_MAX_EXAMPLES)
            function._hypothesis_internal_use_settings = hypothesis_settings(  # type: ignore[union-attr]
                own, max_examples=capped
            )


PG_ADMIN_URL = os.environ.get(
    "WORKBENCH_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty data directory for one test."""
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    """Settings rooted in the test's own data directory (SQLite catalog, local lake)."""
    return Settings(WORKBENCH_DATA_DIR=data_dir)  # type: ignore[call-arg]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A freshly created PostgreSQL database (dropped afterwards); its SQLAlchemy URL."""
    import sqlalchemy as sa

    name = f"wb_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - only when the server is missing
        pytest.fail(f"PostgreSQL at {PG_ADMIN_URL} is required for this test: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"
                ),
                {"n": name},
            )
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
