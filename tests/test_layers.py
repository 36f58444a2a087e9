"""The unit layer stays what it says: listed paths exist, and nothing slow hides in it.

The layer is defined in ``tests/conftest.py`` (``UNIT_PATHS``, ``UNIT_EXCLUDED``);
``scripts/test -m unit`` runs it.
"""

from __future__ import annotations

import ast
import types
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.conftest import (
    ROOT,
    SLOW_LAYER_MARKS,
    UNIT_EXCLUDED,
    UNIT_MAX_EXAMPLES,
    UNIT_PATHS,
    unit_mode,
)

#: Names whose use in a test body means a process, a server or PostgreSQL.
SPAWNING_NAMES = frozenset(
    {
        "LiveServer",
        "subprocess",
        "Popen",
        "multiprocessing",
        "ThreadingHTTPServer",
        "HTTPServer",
        "postgres_url",
        "execute_notebook",
        "sync_playwright",
    }
)


def _unit_modules() -> list[Path]:
    modules: list[Path] = []
    for entry in UNIT_PATHS:
        path = ROOT / entry
        modules += sorted(path.rglob("test_*.py")) if entry.endswith("/") else [path]
    return [m for m in modules if m.exists()]  # a missing one fails the test above


def test_every_unit_path_exists() -> None:
    missing = [entry for entry in UNIT_PATHS if not (ROOT / entry).exists()]
    assert missing == [], f"UNIT_PATHS in tests/conftest.py names missing paths: {missing}"
    stray = [
        node
        for node in UNIT_EXCLUDED
        if not any(
            node.split("::")[0].startswith(entry)
            if entry.endswith("/")
            else node.split("::")[0] == entry
            for entry in UNIT_PATHS
        )
    ]
    assert stray == [], f"UNIT_EXCLUDED names tests outside UNIT_PATHS: {stray}"


def _module_marks(tree: ast.Module) -> set[str]:
    """Return the slow-layer marks a module's ``pytestmark`` applies to all its tests."""
    marks: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Attribute) and sub.attr in SLOW_LAYER_MARKS:
                    marks.add(sub.attr)
    return marks


@pytest.mark.parametrize("module", _unit_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_unit_module_is_marked_slow_postgres_or_browser(module: Path) -> None:
    marks = _module_marks(ast.parse(module.read_text()))
    assert not marks, (
        f"{module.relative_to(ROOT)} is marked {sorted(marks)} as a whole: "
        "take it out of UNIT_PATHS in tests/conftest.py"
    )


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names) | set(code.co_varnames)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def test_unit_tests_carry_no_slow_mark_and_spawn_nothing(request: pytest.FixtureRequest) -> None:
    """Every test of this run marked ``unit``: no slow-layer mark, no process or server in its body."""
    problems: list[str] = []
    for item in request.session.items:
        if item.get_closest_marker("unit") is None:
            continue
        marks = [m for m in SLOW_LAYER_MARKS if item.get_closest_marker(m)]
        if marks:
            problems.append(f"{item.nodeid}: marked {marks}")
        function = getattr(item, "function", None)
        code = getattr(getattr(function, "hypothesis", None), "inner_test", function)
        used = _names(code.__code__) & SPAWNING_NAMES if code is not None else set()
        fixtures = set(getattr(item, "fixturenames", ())) & SPAWNING_NAMES
        if used | fixtures:
            problems.append(f"{item.nodeid}: uses {sorted(used | fixtures)}")
    assert problems == [], "add these to UNIT_EXCLUDED (or mark them slow):\n" + "\n".join(problems)


def test_unit_runs_use_the_small_hypothesis_profile(request: pytest.FixtureRequest) -> None:
    if not unit_mode(request.config):
        pytest.skip("only a unit-layer run (-m unit) loads the unit profile")
    assert hypothesis_settings.default.max_examples == UNIT_MAX_EXAMPLES
