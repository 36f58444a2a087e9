"""Meta-tests that keep the house conventions true (notebooks, CLI help, public surface)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import workbench
from workbench.cli import main

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(
    p for p in [*ROOT.glob("notebooks/**/*.ipynb"), *ROOT.glob("scheduled/*.ipynb")]
    if ".ipynb_checkpoints" not in p.parts
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_has_parameters_cell_kernelspec_and_no_outputs(path: Path) -> None:
    nb = json.loads(path.read_text())
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", "kernelspec python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert any("parameters" in c.get("metadata", {}).get("tags", []) for c in code)
    for cell in code:
        assert not cell.get("outputs"), "committed with outputs"
        assert cell.get("execution_count") is None
        assert "os.environ" not in "".join(cell["source"])


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, cmd in group.commands.items():
        found.append((f"{prefix}{name}", cmd))
        if isinstance(cmd, click.Group):
            found.extend(_commands(cmd, f"{prefix}{name} "))
    return found


@pytest.mark.parametrize("name,command", _commands(main), ids=lambda x: str(x) if isinstance(x, str) else "")
def test_every_cli_command_has_help(name: str, command: click.Command) -> None:
    assert command.help, f"`workbench {name}` has no help text"
    result = CliRunner().invoke(main, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output


def test_public_surface_is_pinned() -> None:
    for name in workbench.__all__:
        assert hasattr(workbench, name), name
    assert (ROOT / "workbench" / "py.typed").exists()
