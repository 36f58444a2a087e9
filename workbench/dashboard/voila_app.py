"""The Voilà server of the dashboard: stock Voilà plus a landing page, a kernel cap and a Host check.

Voilà 0.5 serves a directory with its file tree at ``/`` and has no setting for a
landing page, and the standalone ``voila`` binary loads no server extensions. This
subclass otherwise *is* Voilà (same flags, pre-heated kernels, culling), so
``python -m workbench.dashboard.voila_app`` is a drop-in for ``voila``; its PID is the
server's: SIGTERM stops it and its kernels. What it adds:

* ``/`` redirects to the Overview (``landing_page``);
* a page request while ``max_kernels`` page kernels exist answers 503 "busy, try
  again" instead of starting another (``--DashboardVoila.max_kernels``);
* every request whose ``Host`` is not a loopback name, the bound address or one of
  ``--DashboardVoila.allowed_hosts`` gets 400 (DNS rebinding; Voilà turns off
  jupyter_server's own check with ``allow_remote_access=True``).

Freeing the kernels of pages that are gone is :class:`workbench.dashboard.kernels.PageKernelManager`.
"""

from __future__ import annotations

import html
import tempfile
from typing import Any

import tornado.web
from jupyter_server.utils import url_path_join
from tornado.httputil import HTTPServerRequest
from tornado.routing import Matcher, Rule
from tornado.web import RedirectHandler, RequestHandler
from traitlets import Integer, Unicode
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler

from workbench.security import host_header_allowed

BUSY_RETRY_AFTER_S = 15


class CappedVoilaHandler(TornadoVoilaHandler):  # type: ignore[misc]
    """Voilà's page handler that refuses to start a page past ``workbench_max_kernels``."""

    async def get(self, path: str | None = None) -> None:
        km = self.kernel_manager
        cap = int(self.settings.get("workbench_max_kernels") or 0)
        if not cap or not hasattr(km, "page_count") or not (path or "").endswith(".ipynb"):
            await super().get(path)
            return
        if km.page_count() >= cap:
            self._busy(cap)
            return
        handle = km.admit(path)
        try:
            await super().get(path)
        finally:
            km.release(handle)

    def _busy(self, cap: int) -> None:
        self.set_status(503)
        self.set_header("Retry-After", str(BUSY_RETRY_AFTER_S))
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(
            "<!doctype html><html><head><meta charset='utf-8'><title>Dashboard busy</title>"
            "</head><body style='font-family:sans-serif;margin:3em'>"
            "<h1>The dashboard is busy, try again</h1>"
            f"<p>All {cap} page slots are in use (each open page holds a Python kernel; "
            "<code>WORKBENCH_DASHBOARD_MAX_KERNELS</code> sets how many). A slot frees itself "
            "seconds after a tab is closed.</p>"
            f"<p>Try again in {BUSY_RETRY_AFTER_S} seconds: "
            f"<a href='{html.escape(self.request.uri or '', quote=True)}'>reload</a>.</p>"
            "</body></html>"
        )


class _HostIs(Matcher):
    """Matches requests whose Host is allowed (``allowed=True``) or is not (``False``)."""

    def __init__(self, hosts: list[str], *, allowed: bool) -> None:
        self.hosts = hosts
        self.allowed = allowed

    def match(self, request: HTTPServerRequest) -> dict[str, Any] | None:
        return {} if host_header_allowed(request.host or "", self.hosts) == self.allowed else None


class ForeignHostHandler(RequestHandler):
    """Answers 400 to any request (pages, API, websockets) for a Host this server is not."""

    def prepare(self) -> None:
        self.set_status(400)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(
            f"400: Host {self.request.host!r} is not allowed. Open the dashboard at "
            "127.0.0.1 or localhost, or add the name to WORKBENCH_ALLOWED_HOSTS.\n"
        )


class DashboardVoila(Voila):  # type: ignore[misc]
    """Voilà with a landing page, a cap on page kernels and a Host check."""

    landing_page = Unicode(
        "voila/render/overview.ipynb", config=True, help="Path that / redirects to."
    )
    max_kernels = Integer(
        12, config=True, help="Most page kernels at once; past it pages answer 503 (0: no cap)."
    )
    allowed_hosts = Unicode(
        "", config=True,
        help="Comma-separated Host names accepted besides loopback names and the bound address.",
    )

    def host_list(self) -> list[str]:
        """Return the accepted non-loopback Host names: ``allowed_hosts`` and the bound address."""
        names = [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]
        ip = (self.ip or "").strip("[]").lower()
        if ip and ip not in ("0.0.0.0", "::"):
            names.append(ip)
        return names

    def init_handlers(self) -> list[Any]:
        """Return Voilà's handlers with the landing-page redirect first and pages capped."""
        handlers: list[Any] = [
            (h[0], CappedVoilaHandler, *h[2:]) if len(h) > 1 and h[1] is TornadoVoilaHandler
            else h
            for h in super().init_handlers()
        ]
        if self.notebook_path:  # serving a single notebook: it is already the landing page
            return handlers
        target = url_path_join(self.base_url, self.landing_page)
        return [(self.server_url, RedirectHandler, {"url": target, "permanent": False}), *handlers]

    def start(self) -> None:
        """Voilà's ``start`` with the handlers behind the Host check (its own uses ``.*``)."""
        self.connection_dir = tempfile.mkdtemp(prefix="voila_", dir=self.connection_dir_root)
        self.log.info("Storing connection files in %s.", self.connection_dir)
        settings = self.init_settings()
        settings["workbench_max_kernels"] = self.max_kernels
        self.app = tornado.web.Application(**settings)
        self.app.settings.update(self.tornado_settings)
        hosts, router = self.host_list(), self.app.default_router
        # Before the catch-all rule (404s): Voila's handlers for allowed hosts, 400 for others.
        for matcher, handlers in (
            (_HostIs(hosts, allowed=True), self.init_handlers()),
            (_HostIs(hosts, allowed=False), [(r".*", ForeignHostHandler)]),
        ):
            router.rules.insert(-1, router.process_rule(Rule(matcher, handlers)))
        self.listen()


main = DashboardVoila.launch_instance

if __name__ == "__main__":
    main()
