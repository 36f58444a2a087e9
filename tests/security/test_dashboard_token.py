"""The dashboard token beyond loopback: refused when short, and when long but easy to guess."""

from __future__ import annotations

import secrets

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.config import Settings, get_settings
from workbench.dashboard.serve import dashboard_token
from workbench.errors import ConfigError
from workbench.security import weak_secret_reason

GUESSABLE = [
    "a" * 16,  # one repeated character
    "a" * 64,
    "0" * 40 + "1",  # all but one the same
    "abababababababab",  # a short unit repeated
    "qwertyuiqwertyui",
    "ab12ab12ab12ab12ab12ab12",
    "0123456789abcdef",  # a run
    "abcdefghijklmnopqrstuvwxyz",
    "aabbccddeeffgghh",  # few distinct characters
]


@pytest.mark.parametrize("token", GUESSABLE)
def test_long_but_guessable_tokens_are_refused(settings: Settings, token: str) -> None:
    with pytest.raises(ConfigError, match="WORKBENCH_DASHBOARD_TOKEN") as err:
        dashboard_token(settings.model_copy(update={"dashboard_token": token}), "0.0.0.0")
    assert "entropy" in str(err.value) and "0.0.0.0" in str(err.value)


def test_short_tokens_are_still_refused_as_short() -> None:
    assert "too short" in (weak_secret_reason("x7Q!p2", min_chars=16) or "")


@pytest.mark.parametrize(
    "token",
    [
        "dash-token-0123456789abcdef",
        "correct-horse-battery-staple",
        "p2Vx9qLm4TzR8kWb",
    ],
)
def test_reasonable_tokens_are_accepted(settings: Settings, token: str) -> None:
    assert weak_secret_reason(token, min_chars=16) is None
    assert dashboard_token(settings.model_copy(update={"dashboard_token": token}), "0.0.0.0") == token


def test_generated_tokens_are_never_refused() -> None:
    """Proves: what the error message suggests (and shorter random tokens) always passes."""
    for _ in range(2000):
        for token in (secrets.token_urlsafe(32), secrets.token_urlsafe(12), secrets.token_hex(16)):
            assert weak_secret_reason(token, min_chars=16) is None, token


def test_loopback_keeps_any_token(settings: Settings) -> None:
    assert dashboard_token(settings.model_copy(update={"dashboard_token": "a" * 16}), "127.0.0.1")


def test_cli_refuses_a_guessable_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves: ``workbench dashboard --host 0.0.0.0`` exits 2 naming the setting and the reason."""
    monkeypatch.setenv("WORKBENCH_DASHBOARD_TOKEN", "a" * 32)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["dashboard", "--host", "0.0.0.0", "--port", "9"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "WORKBENCH_DASHBOARD_TOKEN" in result.output and "entropy" in result.output
