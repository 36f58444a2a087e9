"""``workbench keys create|list|revoke``: the key is printed once, as the last line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from workbench.catalog.db import dispose_engine, get_engine, session_scope
from workbench.cli import main
from workbench.config import Settings, get_settings
from workbench.security.keys import authenticate


@pytest.fixture
def cli_settings(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Point the CLI's settings at the test's data directory."""
    monkeypatch.setenv("WORKBENCH_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    get_settings.cache_clear()
    settings = get_settings()
    try:
        yield settings
    finally:
        dispose_engine(settings.database_url)
        get_settings.cache_clear()


def test_create_prints_the_key_last_and_it_authenticates(cli_settings: Settings) -> None:
    result = CliRunner().invoke(
        main, ["keys", "create", "--name", "checkout", "--scope", "ingest", "--scope", "READ"]
    )
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("wb_") and result.stdout.strip() == token  # stdout holds only the key
    from datetime import UTC, datetime

    with session_scope(get_engine(cli_settings.database_url)) as s:
        key = authenticate(session=s, token=token, now=datetime.now(UTC))
        assert key is not None and key.scopes == ["ingest", "read"]


def test_create_needs_a_known_scope(cli_settings: Settings) -> None:
    result = CliRunner().invoke(main, ["keys", "create", "--name", "x", "--scope", "root"])
    assert result.exit_code != 0
    assert "root" in result.output


def test_list_then_revoke_by_prefix(cli_settings: Settings) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["keys", "list"])
    assert empty.exit_code == 0 and "no API keys" in empty.output
    token = runner.invoke(main, ["keys", "create", "--name", "ci", "--scope", "read"]).stdout.strip()
    listed = runner.invoke(main, ["keys", "list"])
    assert listed.exit_code == 0
    assert token[:11] in listed.output and "ci" in listed.output and token not in listed.output
    revoked = runner.invoke(main, ["keys", "revoke", token[:11]])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked" in revoked.output
    assert runner.invoke(main, ["keys", "list", "--active"]).output.startswith("no API keys")
    unknown = runner.invoke(main, ["keys", "revoke", "wb_unknown"])
    assert unknown.exit_code == 2 and "not found" in unknown.output


def test_serve_and_up_refuse_a_public_bind_without_keys(cli_settings: Settings) -> None:
    for argv in (["serve", "--host", "0.0.0.0"], ["up", "--host", "0.0.0.0", "--no-dashboard"]):
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 2, result.output
        assert "refusing to listen on '0.0.0.0' without API keys" in result.output


def test_the_first_key_says_the_api_now_requires_keys(cli_settings: Settings) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["keys", "create", "--name", "svc", "--scope", "ingest"])
    assert first.exit_code == 0, first.output
    assert "the API now requires keys" in first.stderr
    assert "Authorization: Bearer" in first.stderr and "demo-traffic" in first.stderr
    second = runner.invoke(main, ["keys", "create", "--name", "svc2", "--scope", "read"])
    assert second.exit_code == 0 and "now requires keys" not in second.stderr


def test_revoking_the_last_key_says_the_api_stays_keyed(cli_settings: Settings) -> None:
    runner = CliRunner()
    a = runner.invoke(main, ["keys", "create", "--name", "a", "--scope", "ingest"]).stdout.strip()
    b = runner.invoke(main, ["keys", "create", "--name", "b", "--scope", "read"]).stdout.strip()
    one_left = runner.invoke(main, ["keys", "revoke", a[:11]])
    assert one_left.exit_code == 0 and "stays keyed" not in one_left.output
    none_left = runner.invoke(main, ["keys", "revoke", b[:11]])
    assert none_left.exit_code == 0, none_left.output
    assert "no active API key is left: the API stays keyed" in none_left.output
    listed = runner.invoke(main, ["keys", "list", "--active"])
    assert "the API stays keyed" in listed.output and "open on loopback" not in listed.output
