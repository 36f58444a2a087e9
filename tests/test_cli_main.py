"""``workbench --help`` stays light: commands are imported only when run or asked for their help."""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from workbench.cli import COMMANDS, main

HEAVY = ("polars", "pyarrow", "fastapi", "papermill", "plotly", "voila", "numpy", "sqlalchemy",
         "elasticsearch", "uvicorn", "ipywidgets")

_PROBE = """
import json, sys
sys.argv = ["workbench", *json.loads(sys.argv[1])]
try:
    from workbench.cli import main
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "heavy": sorted(m for m in HEAVY if m in sys.modules)}))
""".replace("HEAVY", repr(HEAVY))


def _run(*argv: str) -> tuple[int, list[str], str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(list(argv))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    last = json.loads(result.stdout.strip().splitlines()[-1])
    return last["code"], last["heavy"], result.stdout


def test_top_level_help_imports_no_heavy_module() -> None:
    code, heavy, out = _run("--help")
    assert code == 0, out
    assert heavy == [], f"`workbench --help` imported {heavy}"
    for name in COMMANDS:
        assert f"  {name} " in out, f"{name} missing from the command list"


def test_a_command_s_help_imports_only_what_it_needs() -> None:
    code, heavy, out = _run("keys", "--help")
    assert code == 0 and "create" in out
    assert "polars" not in heavy and "fastapi" not in heavy and "papermill" not in heavy


def test_listed_help_is_each_command_s_own() -> None:
    ctx = click.Context(main)
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name, name
        assert COMMANDS[name][1] == command.get_short_help_str(limit=200), (
            f"the short help of `{name}` in workbench/cli/__init__.py drifted from its docstring"
        )


def test_every_area_command_is_registered() -> None:
    import importlib
    import pkgutil

    import workbench.cli

    registered = {target for target, _ in COMMANDS.values()}
    for info in pkgutil.iter_modules(workbench.cli.__path__):
        module = importlib.import_module(f"workbench.cli.{info.name}")
        for command in getattr(module, "COMMANDS", []):
            attribute = next(k for k, v in vars(module).items() if v is command)
            assert f"{module.__name__}:{attribute}" in registered, (
                f"`workbench {command.name}` ({module.__name__}) is not in workbench.cli.COMMANDS"
            )


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["nosuch"])
    assert result.exit_code == 2 and "No such command 'nosuch'" in result.output
