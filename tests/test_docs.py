"""The docs stay true: every command, setting, link and error they promise exists, and back.

* every ``workbench`` command and subcommand (``workbench/cli/__init__.py``'s
  ``COMMANDS`` and the click groups behind them) is named in the README or ``docs/``;
* every environment variable ``workbench/config.py`` reads is named there too;
* every relative link (``[text](path#anchor)``) and every repository path the docs
  quote in backticks (``docs/security.md``, ``tests/test_cli_up.py::test_name``)
  resolves to a file, an anchor to a heading of it, a ``::name`` to a definition in it;
* the exception tree in ``workbench/errors.py``'s docstring is the classes defined
  there, and each of them is raised (or subclassed) somewhere;
* the notifier's retry horizon in ``docs/alerting.md`` is the one the code computes.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from datetime import timedelta
from pathlib import Path

import click
import pytest
from pydantic_settings import BaseSettings

from workbench import config
from workbench.cli import COMMANDS, load_command

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXT = "\n".join(page.read_text() for page in PAGES)
#: Paths git ignores (``/bench/out/``): quoted in the docs, made when something runs.
IGNORED = {
    line.strip("/") for line in (ROOT / ".gitignore").read_text().splitlines() if line[:1] == "/"
}
#: Top-level folders whose paths the docs quote in backticks (checked to exist).
REPO_FOLDERS = (
    "docs",
    "tests",
    "workbench",
    "ingest_api",
    "scheduled",
    "notebooks",
    "bench",
    "scripts",
    "clients",
)


def _command_names() -> list[str]:
    """Return every command line of ``workbench``: ``up``, ``keys create``, ``mirror run``, ..."""
    names: list[str] = []

    def walk(prefix: str, command: click.Command) -> None:
        names.append(prefix)
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(f"{prefix} {name}", sub)

    for name, (target, _help) in COMMANDS.items():
        walk(name, load_command(target))
    return names


@pytest.mark.parametrize("command", _command_names())
def test_every_command_is_documented(command: str) -> None:
    # As `workbench keys create`, or quoted on its own as `keys create` / `rules`.
    pattern = rf"(?:workbench |`){re.escape(command)}(?![\w-])"
    assert re.search(pattern, TEXT), f"`workbench {command}` is in no page of README.md or docs/"


def _environment_names() -> list[str]:
    names: set[str] = set()
    for value in vars(config).values():
        if (
            isinstance(value, type)
            and issubclass(value, BaseSettings)
            and value is not BaseSettings
        ):
            names |= {f.alias for f in value.model_fields.values() if f.alias}
    source = (ROOT / "workbench" / "config.py").read_text()
    names |= set(re.findall(r"""environ(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]+)["']""", source))
    return sorted(names)


def test_the_settings_are_found() -> None:
    names = _environment_names()
    assert {"WORKBENCH_DATA_DIR", "DATABASE_URL", "ELASTIC_API_KEY"} <= set(names)


@pytest.mark.parametrize("name", _environment_names())
def test_every_setting_is_documented(name: str) -> None:
    assert re.search(rf"\b{name}\b", TEXT), f"{name} (workbench/config.py) is in no doc page"


def _slug(heading: str) -> str:
    """Return GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", text))


def _anchors(page: Path) -> set[str]:
    body = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    return {_slug(h) for h in re.findall(r"^#{1,6}\s+(.*)$", body, flags=re.M)}


def _links(page: Path) -> list[str]:
    """Return the relative link targets of ``page`` (Markdown links, outside code blocks)."""
    body = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.S | re.M)
    targets = re.findall(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", body)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def _quoted_paths(page: Path) -> list[str]:
    """Return the repository paths ``page`` quotes in backticks (``tests/x.py::name`` too)."""
    folders = "|".join(REPO_FOLDERS)
    found = []
    for quoted in re.findall(r"`([^`\n]+)`", page.read_text()):
        for word in quoted.split():
            word = word.strip("(),;:'\"")
            if re.match(rf"^(?:\./)?(?:{folders})/[\w./*:\[\]-]*$", word) or word == "README.md":
                found.append(word.removeprefix("./"))
    return found


def _problems(page: Path) -> list[str]:
    problems = []
    for target in _links(page):
        path_part, _, anchor = target.partition("#")
        file = (page.parent / path_part).resolve() if path_part else page
        if not file.exists():
            problems.append(f"link {target}: no file {path_part}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            problems.append(f"link {target}: no heading #{anchor} in {file.name}")
    for quoted in _quoted_paths(page):
        path_part, _, name = quoted.partition("::")
        path_part = path_part.rstrip(".:")
        if any(path_part.rstrip("/") == ig or path_part.startswith(ig + "/") for ig in IGNORED):
            continue  # made when something runs (bench/out/, and what is under it): git ignores it
        matches = list(ROOT.glob(path_part)) if "*" in path_part else [ROOT / path_part]
        if not any(m.exists() for m in matches):
            problems.append(f"`{quoted}`: no such file")
        elif name:
            # ``::test_name``, ``::Class::test``, ``::test[param]``, ``::test_prefix_*``, ``::*``
            wanted = re.sub(r"\[.*$", "", name).split("::")[-1]
            source = (ROOT / path_part).read_text()
            defined = re.findall(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)", source, re.M)
            if not fnmatch.filter(defined, wanted):
                problems.append(f"`{quoted}`: no {wanted} in {path_part}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_links_and_quoted_paths_resolve(page: Path) -> None:
    assert _problems(page) == []


def test_the_link_checker_catches_what_it_should(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# A title\n\n## Second `one`\n")
    page.write_text(
        "[ok](other.md#second-one) [gone](missing.md) [bad anchor](other.md#nope)\n"
        "[web](https://example.com) `tests/test_docs.py::test_links_and_quoted_paths_resolve`\n"
        "`tests/test_docs.py::no_such_test` `docs/nowhere.md` `notebooks/dashboard/*.ipynb`\n"
    )
    assert _problems(page) == [
        "link missing.md: no file missing.md",
        "link other.md#nope: no heading #nope in other.md",
        "`tests/test_docs.py::no_such_test`: no no_such_test in tests/test_docs.py",
        "`docs/nowhere.md`: no such file",
    ]


# -- the exception tree ---------------------------------------------------------

ERRORS = ROOT / "workbench" / "errors.py"


def _error_classes() -> list[str]:
    tree = ast.parse(ERRORS.read_text())
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


def _tree() -> dict[str, str]:
    """Return the exception tree of ``errors.py``'s docstring: class -> module defining it."""
    docstring = ast.get_docstring(ast.parse(ERRORS.read_text())) or ""
    # Indented lines: ``    ├── MirrorUnavailable   meaning (workbench.mirror.bulk)``.
    rows = re.findall(r"^[ │]+(?:[├└]── )?([A-Z][A-Za-z]+)\b(.*)$", docstring, re.M)
    return {
        name: (
            m.group(1)
            if (m := re.search(r"\((workbench[.\w]*)\)\s*$", rest))
            else "workbench.errors"
        )
        for name, rest in rows
    }


def _subclasses_in_source(roots: set[str]) -> dict[str, str]:
    """Return every class under ``workbench/`` deriving (by base name) from ``roots``: name -> file."""
    classes: list[tuple[str, set[str], str]] = []
    for path in sorted((ROOT / "workbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {
                    b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases
                }
                classes.append((node.name, bases, str(path.relative_to(ROOT))))
    found: dict[str, str] = {}
    known = set(roots)
    while True:
        new = {n: f for n, bases, f in classes if bases & known and n not in found}
        if not new:
            return found
        found |= new
        known |= set(new)


def test_the_exception_tree_lists_every_error_and_where_it_lives() -> None:
    tree = _tree()
    assert set(_error_classes()) <= set(tree), "a class of errors.py is missing from its tree"
    for name, module in tree.items():
        path = ROOT / (module.replace(".", "/") + ".py")
        assert re.search(rf"^class {name}\(", path.read_text(), re.M), f"{name} is not in {module}"
    derived = _subclasses_in_source({"WorkbenchError"})
    unlisted = sorted(set(derived) - set(tree))
    assert unlisted == [], f"errors deriving from WorkbenchError missing from the tree: {unlisted}"


@pytest.mark.parametrize("name", sorted(_tree()))
def test_every_error_is_raised_somewhere(name: str) -> None:
    """An error class nobody raises (nor subclasses) is a promise the code does not keep."""
    if name == "WorkbenchError":
        return  # the root: caught by the entry points, raised through its subclasses
    used = re.compile(rf"\b{name}\(|class \w+\({name}\)|raise {name}\b")
    defined_in = re.compile(rf"^class {name}\(", re.M)
    for folder in ("workbench", "ingest_api", "scheduled"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text()
            if used.search(defined_in.sub("", text)):
                return
    pytest.fail(
        f"{name} (workbench/errors.py) is never raised: raise it where it belongs or remove it"
    )


# -- figures the docs quote -------------------------------------------------------


def _clock(seconds: float) -> str:
    """Return ``seconds`` as the docs write a duration: ``4 h 8 min 40 s``."""
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return " ".join(f"{v} {u}" for v, u in ((h, "h"), (m, "min"), (s, "s")) if v)


def test_the_retry_horizon_in_the_alerting_doc_is_the_codes() -> None:
    from workbench.alerting.notify import MAX_ATTEMPTS, backoff

    waits = [backoff(tries) for tries in range(1, MAX_ATTEMPTS)]  # no wait after the last
    total = sum(waits, timedelta()).total_seconds()
    alerting = " ".join((ROOT / "docs" / "alerting.md").read_text().split())
    assert f"**{MAX_ATTEMPTS} attempts**" in alerting
    assert f"**{_clock(total)}** of backoff" in alerting
    # At the scheduler's minute ticks, each wait lasts at least a minute.
    ticked = sum(max(60.0, w.total_seconds()) for w in waits)
    assert f"about {_clock(ticked)} after the first" in alerting
