"""Page kernels: freed when their page is gone, capped, and only for this server's Host names.

The slow tests run a real Voilà (``start_dashboard``, pre-heated as ``workbench
dashboard`` runs it) with a short ``WORKBENCH_DASHBOARD_PAGE_GRACE_SECONDS`` so the
same mechanism as the 45 s default shows in seconds, and count kernels as the
server's child processes (Voilà 0.5 serves no ``/api/kernels`` list). The browser
ones use Debian's Chromium. The default timings are measured by
``bench/bench_dashboard.py`` (figures in ``docs/dashboard.md``).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.dashboard.seed import seed_catalog
from tests.live_server import free_port, stop_process
from workbench.catalog.db import dispose_engine
from workbench.config import Settings
from workbench.dashboard.kernels import KernelView, kernels_to_free
from workbench.dashboard.serve import dashboard_command, start_dashboard
from workbench.notebooks import dashboard_dir as notebooks_dir
from workbench.security import host_header_allowed as host_allowed

GRACE_S = 15.0  # WORKBENCH_DASHBOARD_PAGE_GRACE_SECONDS for the live server (default 45)
PAGE = "/voila/render/overview.ipynb"
SETTLE_S = 90.0  # bound on waiting for kernels to go (grace + reaping + shutdown, loaded CI)
LOAD_MS = 60_000


# ---------------------------------------------------------------- the rule, pure


def _view(kid: str = "k", **kw: Any) -> KernelView:
    base: dict[str, Any] = {"handed_out_at": 100.0, "connections": 0, "ever_connected": False,
                            "last_disconnect_at": None, "idle": True}
    return KernelView(kernel_id=kid, **{**base, **kw})


def _free(views: list[KernelView], now: float) -> list[str]:
    return kernels_to_free(views, now, unconnected_grace=45, disconnected_grace=10)


def test_a_page_no_browser_connected_to_goes_after_the_grace_once_idle() -> None:
    assert _free([_view()], now=144) == []
    assert _free([_view()], now=145) == ["k"]
    assert _free([_view(idle=False)], now=1000) == []  # still rendering its page
    rendered_late = _view(last_busy_at=130.0)  # the grace counts from the end of the render
    assert _free([rendered_late], now=174) == [] and _free([rendered_late], now=175) == ["k"]


def test_a_closed_tab_goes_soon_after_its_last_websocket() -> None:
    closed = _view(ever_connected=True, last_disconnect_at=500.0, idle=False)
    assert _free([closed], now=509) == []
    assert _free([closed], now=510) == ["k"]  # busy or not: nobody is watching


def test_open_tabs_and_the_pool_are_never_freed() -> None:
    views = [
        _view("open", connections=1, ever_connected=True, last_disconnect_at=1.0),
        _view("pooled", handed_out_at=None),
        _view("gone"),
    ]
    assert _free(views, now=10_000) == ["gone"]


@pytest.mark.parametrize("host", [
    "localhost", "localhost:8866", "127.0.0.1:8866", "127.0.0.2", "[::1]:8866", "[::1]", "::1",
    "LOCALHOST:1", "dash.example:443", "dash.example", "app.localhost:8866",
])
def test_loopback_and_allowed_hosts_pass(host: str) -> None:
    assert host_allowed(host, ["dash.example"])


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:8866", "127.0.0.1.evil.example", "localhost.evil.example:80",
    "10.0.0.5:8866", "[::2]:8866", "", ":8866", "dash.example.evil:1",
])
def test_other_hosts_are_refused(host: str) -> None:
    assert not host_allowed(host, ["dash.example"])


def test_command_frees_caps_and_checks_hosts(settings: Settings) -> None:
    custom = settings.model_copy(update={
        "dashboard_page_grace_s": 30.0, "dashboard_max_kernels": 5,
        "allowed_hosts": "dash.example, Other.Example",
    })
    argv = dashboard_command(custom, "127.0.0.1", 9999)
    for flag in (
        "--VoilaConfiguration.multi_kernel_manager_class="
        "workbench.dashboard.kernels.PageKernelManager",
        "--PageKernelManager.unconnected_grace=30", "--PageKernelManager.disconnected_grace=10",
        "--DashboardVoila.max_kernels=5", "--DashboardVoila.allowed_hosts=dash.example,other.example",
    ):
        assert flag in argv
    short = dashboard_command(settings.model_copy(update={"dashboard_page_grace_s": 3.0}))
    assert "--PageKernelManager.disconnected_grace=3" in short


# ---------------------------------------------------------------- a live server


@dataclass
class Live:
    base: str
    port: int
    proc: subprocess.Popen[bytes]
    pool: int  # pre-heated kernels: one per page notebook

    def kernels(self) -> int:
        """Return how many kernel processes the server runs now."""
        try:
            children = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        count = 0
        for child in children:
            try:
                if "ipykernel" in " ".join(child.cmdline()):
                    count += 1
            except psutil.Error:
                continue
        return count

    def wait_kernels(self, ok: Any, what: str, timeout: float = SETTLE_S) -> int:
        """Poll the kernel count until ``ok(count)``; fail after ``timeout`` saying ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, "voila exited"
            count = self.kernels()
            if ok(count):
                return count
            if time.monotonic() > deadline:
                pytest.fail(f"{what}: still {count} kernels after {timeout:.0f} s (pool {self.pool})")
            time.sleep(0.5)

    def get(self, path: str, host: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        try:
            conn.putrequest("GET", path, skip_host=True)
            conn.putheader("Host", host or f"127.0.0.1:{self.port}")
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            res = conn.getresponse()
            return res.status, res.read().decode("utf-8", "replace")
        finally:
            conn.close()


@contextlib.contextmanager
def _start(tmp: Path, **overrides: Any) -> Iterator[Live]:
    data = tmp / "data"
    data.mkdir()
    settings = Settings(WORKBENCH_DATA_DIR=data, WORKBENCH_DASHBOARD_TOKEN="",  # type: ignore[call-arg]
                        WORKBENCH_REFRESH_SECONDS=2)
    settings = settings.model_copy(update=overrides)
    seed_catalog(settings, datetime.now(UTC))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "DATABASE_URL"))}
    env["WORKBENCH_REFRESH_SECONDS"] = "2"
    log = (tmp / "voila.log").open("wb")
    proc = start_dashboard(settings, "127.0.0.1", port, env=env, stdout=log,
                           stderr=subprocess.STDOUT)
    pool = sum(1 for p in notebooks_dir().rglob("*.ipynb") if ".ipynb_checkpoints" not in str(p))
    live = Live(f"http://127.0.0.1:{port}", port, proc, pool)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, "voila exited: " + (tmp / "voila.log").read_text()[-2000:]
            try:
                if live.get("/")[0] == 302:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "voila did not start"
            time.sleep(0.3)
        live.wait_kernels(lambda n: n >= pool, "the pool did not fill", timeout=120)
        yield live
    finally:
        kernels = []
        with contextlib.suppress(psutil.NoSuchProcess):
            kernels = psutil.Process(proc.pid).children(recursive=True)
        stop_process(proc, timeout=20)
        for child in kernels:  # a server killed hard leaves its kernels: never leak them
            with contextlib.suppress(psutil.Error):
                child.kill()
        log.close()
        dispose_engine(settings.database_url)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A dashboard with a 15 s page grace, room for 6 page kernels, and one extra allowed host."""
    with _start(tmp_path_factory.mktemp("kernels"), dashboard_page_grace_s=GRACE_S,
                dashboard_max_kernels=6, allowed_hosts="dash.example") as server:
        yield server


def _back_to_the_pool(live: Live, what: str) -> None:
    live.wait_kernels(lambda n: n <= live.pool + 2, what)


@pytest.mark.slow
def test_plain_gets_leave_no_kernels_behind(live: Live) -> None:
    """Proves: 30 plain GETs of a page (probes, link previews: no websocket ever) start
    kernels that go again after the grace -- the count falls back to the pool (+2)."""
    _back_to_the_pool(live, "before")
    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = list(pool.map(lambda _: live.get(PAGE)[0], range(30)))
    assert set(statuses) <= {200, 503} and 200 in statuses
    _back_to_the_pool(live, "after 30 plain GETs")


@pytest.mark.slow
@pytest.mark.browser
def test_closed_browser_tabs_leave_no_kernels_behind(live: Live, browser: Any) -> None:
    """Proves: 5 browser visits, each opened until its widgets show data and then closed,
    leave no kernels behind: the count falls back to the pool (+2)."""
    _back_to_the_pool(live, "before")
    ctx = browser.new_context()
    try:
        for _ in range(5):
            tab = ctx.new_page()
            tab.goto(live.base + PAGE, timeout=LOAD_MS)
            tab.wait_for_selector(".wb-page-overview .wb-updated >> text=updated", timeout=LOAD_MS)
            tab.close()
    finally:
        ctx.close()
    _back_to_the_pool(live, "after 5 closed visits")


@pytest.mark.slow
@pytest.mark.browser
def test_a_tab_left_open_keeps_working_past_the_grace(live: Live, browser: Any) -> None:
    """Proves: a tab that stays open is not freed: while it is open a plain GET's kernel
    is freed (so the grace has passed and the reaper ran), and a click in the tab
    afterwards still redraws the chart."""
    _back_to_the_pool(live, "before")
    ctx = browser.new_context()
    try:
        tab = ctx.new_page()
        tab.goto(live.base + PAGE, timeout=LOAD_MS)
        tab.wait_for_selector(".wb-page-overview .wb-updated >> text=updated", timeout=LOAD_MS)
        tab.wait_for_selector(".wb-trend .js-plotly-plot .scatterlayer .trace", timeout=LOAD_MS)
        with_tab = live.wait_kernels(lambda n: n >= live.pool + 1, "the tab's kernel")
        assert live.get("/voila/render/logs.ipynb")[0] == 200
        live.wait_kernels(lambda n: n > with_tab, "the GET's kernel", timeout=30)
        live.wait_kernels(lambda n: n <= with_tab, "the GET's kernel was not freed")
        tab.click(".wb-range-picker button:has-text('1h')")
        tab.wait_for_function(
            "document.querySelector('.wb-trend .js-plotly-plot')"
            " && document.querySelector('.wb-trend .js-plotly-plot').data[0].y.length <= 61",
            timeout=30_000,
        )
        assert live.kernels() >= live.pool + 1
    finally:
        ctx.close()


@pytest.mark.slow
def test_a_foreign_host_gets_400_and_no_kernel(live: Live) -> None:
    """Proves (DNS rebinding): with ``Host: evil.example`` the landing page, a page, the
    kernel websocket and the login page answer 400 and start no kernel; loopback names
    and WORKBENCH_ALLOWED_HOSTS are served."""
    _back_to_the_pool(live, "before")
    settled = live.wait_kernels(lambda n: n == live.pool, "pool only")
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for host in ("evil.example", f"evil.example:{live.port}", f"127.0.0.1.nip.io:{live.port}"):
        for path, headers in (("/", None), (PAGE, None), ("/login", None), ("/voila/tree", None),
                              ("/api/kernels/00000000-0000-0000-0000-000000000000/channels",
                               upgrade)):
            status, body = live.get(path, host=host, headers=headers)
            assert status == 400, (host, path, status)
            assert "WORKBENCH_ALLOWED_HOSTS" in body
    assert live.kernels() == settled
    for host in (f"localhost:{live.port}", f"127.0.0.1:{live.port}", f"[::1]:{live.port}",
                 "dash.example", f"dash.example:{live.port}"):
        status, _ = live.get("/", host=host)
        assert status == 302, host
    assert live.get("/no/such/route")[0] == 404  # allowed host, unknown path: Voila's 404


@pytest.mark.slow
def test_past_the_cap_pages_answer_busy(tmp_path: Path) -> None:
    """Proves: with WORKBENCH_DASHBOARD_MAX_KERNELS=2, ten page requests at once get at
    most 2 kernels; the others get a readable 503 "busy, try again" page."""
    with _start(tmp_path, dashboard_max_kernels=2, dashboard_page_grace_s=600.0) as live:
        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(
                lambda i: live.get(f"/voila/render/{('overview', 'logs')[i % 2]}.ipynb"),
                range(10),
            ))
        statuses = [status for status, _ in answers]
        assert 1 <= statuses.count(200) <= 2 and set(statuses) <= {200, 503}, statuses
        busy = next(body for status, body in answers if status == 503)
        assert "busy, try again" in busy and "WORKBENCH_DASHBOARD_MAX_KERNELS" in busy
        # Page kernels never pass the cap (the pool refills what pages took).
        assert live.kernels() <= live.pool + 2
        status, body = live.get(PAGE)
        assert status == 503 and "busy" in body
