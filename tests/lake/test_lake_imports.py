"""The lake depends on nothing of ingest: events flow down into it, never back up.

``workbench.events`` (validation) may use the lake's schema; the lake (WAL
records, ingestor, writer) must not import validation, the Arrow lane or the
ingest call. Read from the source with :mod:`ast`, so a deferred import inside
a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

LAKE = Path(__file__).resolve().parents[2] / "workbench" / "lake"
INGEST_SIDE = (
    "workbench.events",
    "workbench.events_arrow",
    "workbench.ingest",
    "workbench.ingest_body",
)


def _imports(path: Path) -> set[str]:
    """Return the dotted names ``path`` imports (``from a import b`` gives ``a`` and ``a.b``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _is_ingest_side(name: str) -> bool:
    return any(name == side or name.startswith(side + ".") for side in INGEST_SIDE)


def test_the_lake_imports_nothing_from_ingest() -> None:
    offenders = {
        f"{path.relative_to(LAKE.parent.parent)}: {name}"
        for path in sorted(LAKE.rglob("*.py"))
        for name in _imports(path)
        if _is_ingest_side(name)
    }
    assert not offenders, sorted(offenders)


def test_the_check_sees_an_ingest_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f():\n    from workbench.events import to_us\n    from workbench import ingest\n"
    )
    assert {n for n in _imports(module) if _is_ingest_side(n)} == {
        "workbench.events",
        "workbench.events.to_us",
        "workbench.ingest",
    }
