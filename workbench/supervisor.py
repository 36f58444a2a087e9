"""The supervisor behind ``workbench up``: which processes make the system, and keeping them up.

Each part runs as its own process; one that dies is restarted (with a growing
delay: 1 s, 2 s, 4 s … up to 30 s, back to 1 s after a minute of good health), and
SIGTERM or Ctrl-C stops them all. On Linux each part also gets SIGTERM when the
supervisor itself dies (``kill -9``), so no part is left holding its port; kernels
of a killed part exit on their own (ipykernel polls for its parent). The
supervisor holds no state: the WAL, the lake and the catalog are on disk.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from workbench.config import Settings
from workbench.errors import ConfigError

Say = Callable[[str], None]


@dataclass
class Part:
    """One supervised process of the system."""

    name: str
    argv: list[str]
    url: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = field(default=0.0)

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(  # noqa: S603 - argv built here
            self.argv, env=env, preexec_fn=_terminate_with_parent(os.getpid())
        )
        self.started_at = time.monotonic()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()


def _terminate_with_parent(parent: int) -> Callable[[], None] | None:
    """Return a pre-exec hook asking Linux to SIGTERM the child when ``parent`` dies (else None)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not between fork and exec
    pr_set_pdeathsig = 1

    def hook() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before the request took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return hook


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer: the server is up


_probe = urllib.request.build_opener(_NoRedirect)


def _answers(url: str) -> bool:
    """Return whether ``url`` answers below 500 now (redirects are not followed).

    Not following matters for the dashboard: its ``/`` redirects to the Overview,
    and rendering that page would spend a pre-heated kernel on every probe.
    """
    try:
        with _probe.open(url, timeout=2) as resp:
            return int(resp.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except Exception:
        return False


def port_in_use(host: str, port: int) -> bool:
    """Return True if a server could not bind ``host:port`` now (someone else listens there).

    Binds the way uvicorn does (``SO_REUSEADDR``), so a port only lingering in
    TIME_WAIT after our own last run counts as free.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False  # the bind itself will report an unusable host
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError:
                return True
    return False


def check_ports(host: str, ports: dict[str, int]) -> None:
    """Raise ConfigError naming the option if one of ``ports`` (option -> port) is taken or repeated."""
    seen: dict[int, str] = {}
    for option, port in ports.items():
        if port in seen:
            raise ConfigError(f"{option} {port} is the same port as {seen[port]}: choose another")
        seen[port] = option
        if port_in_use(host, port):
            raise ConfigError(
                f"port {port} on {host} is already in use (another server, or a workbench "
                f"already running?): stop it, or choose another port with {option}"
            )


def seed_demo(settings: Settings, now: datetime, say: Say) -> str | None:
    """Write demo logs and example rules when the lake is empty; return what was done."""
    from workbench.catalog.db import catalog_engine
    from workbench.lake.reader import visible_files

    catalog_engine(settings.database_url)
    if visible_files(settings.lake_url):
        return None
    from workbench import demo

    say("workbench: seeding demo data (200,000 events over 7 days; about a minute)")
    n = demo.generate(
        settings.lake_url, events=200_000, days=7, services=8, now=now, seed=42, cases=True
    )
    demo.seed_rules(settings.database_url, now)
    return f"seeded {n:,} demo events over 7 days and example alert rules"


def parts_of(
    settings: Settings,
    *,
    host: str,
    port: int,
    dashboard_port: int,
    demo_traffic: bool,
    scheduler: bool,
    dashboard: bool,
) -> list[Part]:
    """Return the processes of the system: API, demo traffic, scheduler, mirror, dashboard."""
    py = [sys.executable, "-m", "workbench"]
    parts = [
        Part(
            "api",
            [*py, "serve", "--host", host, "--port", str(port)],
            url=f"http://{host}:{port}/health",
        )
    ]
    if demo_traffic:
        parts.append(Part("demo-traffic", [*py, "demo-traffic", "--url", f"http://{host}:{port}"]))
    if scheduler:
        parts.append(Part("scheduler", [*py, "scheduler"]))
    if settings.elastic_url:
        parts.append(Part("mirror", [*py, "mirror", "run"]))
    if dashboard:
        from workbench.dashboard.serve import dashboard_command

        parts.append(
            Part(
                "dashboard",
                dashboard_command(settings, host=host, port=dashboard_port),
                url=f"http://{host}:{dashboard_port}/",
            )
        )
    return parts


def parts_env(settings: Settings, *, host: str, port: int, dashboard_port: int) -> dict[str, str]:
    """Return the environment every part starts with: ours, plus where the others are."""
    env = dict(os.environ)
    env["WORKBENCH_DATA_DIR"] = str(settings.data_dir)
    env.setdefault("WORKBENCH_DASHBOARD_URL", f"http://{host}:{dashboard_port}")
    # Links to the API (investigation reports) from the scheduler's payloads and the dashboard.
    env.setdefault("WORKBENCH_API_URL", f"http://{host}:{port}")
    return env


def supervise(
    parts: list[Part],
    env: dict[str, str],
    *,
    on_ready: Callable[[], None],
    say: Say = lambda line: print(line, file=sys.stderr, flush=True),
) -> None:
    """Start ``parts`` and keep them running until SIGTERM or SIGINT; then stop them all.

    ``on_ready`` is called once every part with a URL answers (or after 60 s, with a
    line per part that did not); ``say`` gets the restart lines.
    """
    stopping = False

    def _stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    for part in parts:
        part.start(env)
    # Waiting for the URLs is part of the supervision loop, so a part that dies while
    # another is still starting is restarted at once, not after the wait.
    waiting = [part for part in parts if part.url]
    announce_by = time.monotonic() + 60
    announced = False
    try:
        while not stopping:
            time.sleep(0.5)
            if not announced:
                waiting = [p for p in waiting if not (p.url and _answers(p.url))]
                if not waiting or time.monotonic() > announce_by:
                    for part in waiting:
                        say(f"workbench: {part.name} did not answer on {part.url} yet")
                    on_ready()
                    announced = True
            for part in parts:
                if part.proc is None or part.proc.poll() is None:
                    continue
                if part.next_start == 0.0:
                    delay = min(30.0, 2.0 ** min(part.restarts, 5))
                    if time.monotonic() - part.started_at > 60:
                        part.restarts, delay = 0, 1.0
                    part.next_start = time.monotonic() + delay
                    say(
                        f"workbench: {part.name} exited with {part.proc.returncode}; "
                        f"restarting in {delay:.0f}s"
                    )
                elif time.monotonic() >= part.next_start:
                    part.restarts += 1
                    part.next_start = 0.0
                    part.start(env)
    finally:
        for part in parts:
            part.stop()
        deadline = time.monotonic() + 10
        for part in parts:
            if part.proc is None:
                continue
            try:
                part.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                part.proc.kill()
