"""``pip install ./clients/python`` in a fresh venv: no polars, pyarrow, numpy or Jupyter, and it ships.

Slow: creates a venv and builds the client (the build backend comes from the pip cache or the index).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.request
import venv
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.live_server import free_port, stop_process
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

#: What a build of the server distribution reads (copied: a build writes build/ and egg-info beside it).
SOURCES = ("pyproject.toml", "README.md", "workbench", "ingest_api", "scheduled", "clients/python")
HEAVY = ("polars", "pyarrow", "numpy", "httpx", "orjson", "workbench")

SHIP = """
import json, logging, sys, time
started = time.perf_counter()
import workbench_client
import_s = time.perf_counter() - started
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r} or "jupyter" in m)
handler = workbench_client.WorkbenchHandler(sys.argv[1], service="pinger", api_key="k")
logger = logging.getLogger("fresh")
logger.addHandler(handler)
logger.error("from a fresh venv", extra={{"n": 1}})
flushed = handler.flush(10)
print(json.dumps({{"import_s": import_s, "heavy": heavy, "flushed": flushed, "stats": handler.stats(),
                  "file": workbench_client.__file__}}))
"""


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), body))
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status":"queued","rejected":[]}')

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _copy(sources: tuple[str, ...], into: Path) -> Path:
    into.mkdir(parents=True)
    for source in sources:
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source,
                into / source,
                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"),
            )
        else:
            shutil.copy2(ROOT / source, into / source)
    return into


def test_the_client_installs_alone_imports_light_and_ships(tmp_path: Path, receiver: str) -> None:
    source = _copy(("clients/python",), tmp_path / "src") / "clients" / "python"
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            str(source),
        ],
        check=True,
        timeout=600,
        cwd=tmp_path,
    )
    out = subprocess.run(
        [python, "-c", SHIP.format(heavy=set(HEAVY)), receiver],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    report = json.loads(out.stdout)
    print(
        f"import workbench_client in a fresh venv: {report['import_s'] * 1000:.1f} ms",
        file=sys.stderr,
    )
    assert str(tmp_path) in report["file"]  # the installed copy, not the checkout
    assert report["heavy"] == []
    assert report["flushed"] and report["stats"]["sent"] == 1
    [(headers, body)] = _Receiver.received
    assert headers["Authorization"] == "Bearer k"
    event = json.loads(body)
    assert (event["service"], event["level"], event["message"]) == (
        "pinger",
        "error",
        "from a fresh venv",
    )
    assert event["meta"]["n"] == 1


@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_the_server_distribution_carries_the_client_module(tmp_path: Path, editable: bool) -> None:
    # --no-deps: only what this distribution itself puts on the path is checked.
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    source = _copy(SOURCES, tmp_path / "src")
    target = ["-e", str(source)] if editable else [str(source)]
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps", *target],
        check=True,
        timeout=600,
        cwd=tmp_path,
    )
    out = subprocess.run(
        [
            python,
            "-c",
            "import workbench_client; print(workbench_client.WorkbenchHandler.__name__)",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert out.stdout.strip() == "WorkbenchHandler"


def test_the_server_installs_without_the_notebook_stack(tmp_path: Path) -> None:
    # `pip install .` with the locked versions: serve, evaluate (the scheduler's notebook run)
    # and investigate's HTML export work; the dashboard names its extra.
    source = _copy((*SOURCES, "constraints.txt"), tmp_path / "src")
    venv.create(tmp_path / "venv", with_pip=True)
    bin_dir = tmp_path / "venv" / "bin"
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(source / "constraints.txt"), str(source)],
        check=True, timeout=1200, cwd=tmp_path,
    )  # fmt: skip
    probe = (
        "import importlib.util as u\n"
        "print(sorted(m for m in ('jupyterlab', 'voila', 'ipywidgets', 'anywidget', 'notebook')"
        " if u.find_spec(m)), bool(u.find_spec('nbconvert')))"
    )
    found = subprocess.run(
        [str(bin_dir / "python"), "-c", probe], check=True, capture_output=True, text=True
    )
    assert found.stdout.split() == ["[]", "True"]
    env = {**os.environ, "WORKBENCH_DATA_DIR": str(tmp_path / "data")}
    evaluate = subprocess.run(
        [str(bin_dir / "workbench"), "evaluate"], env=env, capture_output=True, text=True,
        timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stderr
    assert "evaluated at" in evaluate.stdout
    port = free_port()
    server = subprocess.Popen(
        [str(bin_dir / "workbench"), "serve", "--port", str(port)], env=env, cwd=tmp_path
    )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/health"), 120, what="/health")
    finally:
        stop_process(server)
    dashboard = subprocess.run(
        [str(bin_dir / "workbench"), "dashboard"], env=env, capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert dashboard.returncode == 2
    assert "pip install 'log-workbench[dashboard]'" in dashboard.stderr


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except OSError:
        return False
