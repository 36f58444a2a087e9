"""Reproducible installs: every dependency is locked in ``constraints.txt``, which the scripts use.

``constraints.txt`` is ``pip freeze --exclude-editable`` of a working ``.venv``
(docs/dependencies.md says how to refresh it); ``scripts/bootstrap`` installs
with ``-c constraints.txt`` and re-installs when it changes.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


def _name(requirement: str) -> str:
    """Return the normalised project name of a requirement (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[_name(name)] = version
    return pins


DECLARED = [
    *PYPROJECT["project"]["dependencies"],
    *[r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra],
]


@pytest.mark.parametrize("requirement", DECLARED)
def test_every_declared_dependency_is_locked_in_constraints(requirement: str) -> None:
    assert _name(requirement) in _pins(), f"{requirement} is not pinned in constraints.txt"


@pytest.mark.parametrize("tool", ["ruff", "mypy"])
def test_lint_and_type_checkers_are_pinned_in_pyproject(tool: str) -> None:
    # A new ruff or mypy release adds rules: the test command's verdict must not change by itself.
    dev = PYPROJECT["project"]["optional-dependencies"]["dev"]
    pinned = [r for r in dev if _name(r) == tool]
    assert pinned and "==" in pinned[0], pinned
    assert pinned[0].split("==", 1)[1] == _pins()[tool]


def test_bootstrap_installs_with_the_constraints_and_reinstalls_when_they_change() -> None:
    script = (ROOT / "scripts" / "bootstrap").read_text()
    assert "-c constraints.txt" in script
    stamp = next(line for line in script.splitlines() if line.startswith("stamp="))
    assert "constraints.txt" in stamp and "pyproject.toml" in stamp


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_point_only_at_files_inside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    for outside in ("../shared", "/work/", "shared/", "original-", "file://"):
        assert outside not in text, f"{doc.name} refers to {outside!r} outside the repository"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_that_mention_the_original_system_say_what_it_is(doc: Path) -> None:
    text = doc.read_text()
    if re.search(r"original (system|API|contract|keys)", text):
        assert "Node/TypeScript Express" in text, f"{doc.name}: say what the original system is"
