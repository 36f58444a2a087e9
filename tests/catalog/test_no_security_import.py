"""The catalog sits below security: security reads API-key rows from the catalog, never the reverse."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench.catalog

CATALOG = Path(workbench.catalog.__file__).parent


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_catalog_never_imports_security() -> None:
    offenders = {
        str(path.relative_to(CATALOG)): sorted(
            n for n in _imports(path) if n.startswith("workbench.security")
        )
        for path in CATALOG.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}
