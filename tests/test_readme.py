"""The README's own commands work as written: every shell block, ``workbench`` command and Python snippet.

Parsed from README.md, so a README edit is tested the moment it is made:

* each fenced ``bash`` block runs under ``bash -eu`` against a fresh data directory
  and a live ``workbench serve`` (its ``http://127.0.0.1:4000`` is rewritten to the
  live server's URL, and ``curl`` fails on any HTTP error), unless listed in
  ``SKIPPED_BLOCKS`` with its reason;
* each ``workbench ...`` command, in a block or inline, runs against a data
  directory seeded with demo data and the demo's alert rules; long-running
  commands (``LONG_RUNNING``) run with ``--help`` only, and ``SKIPPED_COMMANDS``
  lists the rest with their reason;
* each ``python`` block runs in a fresh interpreter against the same demo data.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.live_server import LiveServer
from workbench import demo
from workbench.catalog.db import dispose_engine
from workbench.config import Settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BIN = Path(sys.executable).parent
API_URL = "http://127.0.0.1:4000"

#: Blocks not run, by their first line: why.
SKIPPED_BLOCKS = {
    "scripts/up": "installs into ./.venv and starts the whole system until Ctrl-C "
    "(tests/faults/test_kill_up.py and tests/test_cli_up.py start `workbench up` themselves)",
}
#: Subcommands that run until stopped: only their ``--help`` is run.
LONG_RUNNING = ("up", "serve", "lab", "dashboard", "scheduler", "demo-traffic", "mirror run")
#: Commands not run, by their text: why.
SKIPPED_COMMANDS = {
    "workbench investigate ID": "ID stands for an incident id; the demo data has no incident "
    "(tests/test_analysis_notebooks.py runs it on one)",
}

_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_LEADING_WORKBENCH = re.compile(r"^\s*((?:\.venv/bin/)?workbench) ([^#]*)")
_INLINE = re.compile(r"`((?:\.venv/bin/)?workbench [^`]*)`")


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in _FENCE.findall(README) if kind == lang]


def _logical_lines(block: str) -> list[str]:
    """Return a shell block's commands: continuation lines joined, comments and blanks dropped."""
    lines = re.sub(r"\\\n", " ", block).splitlines()
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _workbench_commands() -> list[str]:
    found: list[str] = []
    for block in _blocks("bash"):
        for line in _logical_lines(block):
            for part in re.findall(r"(?:\.venv/bin/)?workbench(?: [^#;|&)]*)?", line):
                if part.split()[0].endswith("workbench"):
                    found.append(part.strip())
    outside_blocks = _FENCE.sub("", README)
    found += [m.strip() for m in _INLINE.findall(outside_blocks)]
    commands = []
    for command in found:
        text = command.removeprefix(".venv/bin/")
        if text not in commands:
            commands.append(text)
    return commands


def _is_long_running(args: list[str]) -> bool:
    joined = " ".join(args)
    return any(joined == c or joined.startswith(c + " ") for c in LONG_RUNNING)


def test_the_readme_shows_what_this_test_runs() -> None:
    commands = _workbench_commands()
    assert "workbench --help" in commands
    assert any(c.startswith("workbench keys create") for c in commands)
    assert _blocks("python") and _blocks("bash")
    assert any("curl" in b for b in _blocks("bash"))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A data directory with a week of demo logs and the demo's alert rules."""
    data = tmp_path_factory.mktemp("readme") / "data"
    data.mkdir()
    settings = Settings(WORKBENCH_DATA_DIR=data)  # type: ignore[call-arg]
    now = datetime.now(UTC)
    demo.generate(settings.lake_url, events=20_000, days=7, services=8, now=now, seed=42)
    demo.seed_rules(settings.database_url, now)
    dispose_engine(settings.database_url)
    yield data


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "DATABASE_URL"))}
    env.update(
        WORKBENCH_DATA_DIR=str(data),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        WORKBENCH_ALLOW_PRIVATE_WEBHOOKS="true",
    )
    env.pop("ELASTIC_URL", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("command", _workbench_commands())
def test_readme_workbench_command_runs(command: str, demo_dir: Path) -> None:
    if command in SKIPPED_COMMANDS:
        pytest.skip(SKIPPED_COMMANDS[command])
    args = shlex.split(command)[1:]
    if _is_long_running(args):
        args = [*args, "--help"]
    result = subprocess.run(
        [str(BIN / "workbench"), *args],
        env=_env(demo_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
@pytest.mark.parametrize("block", _blocks("python"), ids=lambda b: b.splitlines()[0][:40])
def test_readme_python_block_runs(block: str, demo_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", block],
        env=_env(demo_dir),
        cwd=demo_dir.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"README python block failed:\n{result.stderr}"


def _runnable(block: str) -> str:
    """Return the block as a script against the live server: curl fails on HTTP errors."""
    script = re.sub(r"\bcurl ", "curl -sS --fail-with-body ", block)
    return script


@pytest.mark.slow
@pytest.mark.parametrize("block", _blocks("bash"), ids=lambda b: b.splitlines()[0][:40])
def test_readme_shell_block_runs(block: str, data_dir: Path) -> None:
    first = block.splitlines()[0]
    for start, reason in SKIPPED_BLOCKS.items():
        if first.startswith(start):
            pytest.skip(reason)
    lines = []
    for line in block.splitlines():  # a quoted JSON body may span lines: rewrite whole lines only
        match = _LEADING_WORKBENCH.match(line)
        if match and _is_long_running(shlex.split(match.group(2))):
            line = f"{match.group(1)} {match.group(2).strip()} --help"
        lines.append(line)
    server = LiveServer(data_dir).start() if API_URL in block else None
    try:
        script = _runnable("\n".join(lines))
        if server is not None:
            script = script.replace(API_URL, server.url)
        result = subprocess.run(
            ["bash", "-eu", "-o", "pipefail", "-c", script],
            env=_env(data_dir),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"README block failed:\n{script}\n{result.stdout}\n{result.stderr}"
    finally:
        if server is not None:
            server.stop()


def test_the_command_list_names_every_command() -> None:
    from workbench.cli import COMMANDS

    sentence = README[README.index("`workbench --help` lists every command:") :].split(".\n")[0]
    listed = re.findall(r"`([a-z-]+)`", sentence)
    assert sorted(listed) == sorted(COMMANDS), "README's command list differs from `workbench --help`"
