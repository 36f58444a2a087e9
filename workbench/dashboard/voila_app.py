"""The Voilà server of the dashboard: stock Voilà plus one route, ``/`` → the Overview page.

Voilà 0.5 serves a directory with its file tree at ``/`` and has no setting for a
landing page, and the standalone ``voila`` binary loads no server extensions. This
subclass prepends a redirect for exactly ``/`` and otherwise *is* Voilà (same
flags, pre-heated kernels, culling), so ``python -m workbench.dashboard.voila_app``
is a drop-in for ``voila``. Its PID is the server's: SIGTERM stops it and its kernels.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.utils import url_path_join
from tornado.web import RedirectHandler
from traitlets import Unicode
from voila.app import Voila


class DashboardVoila(Voila):
    """Voilà with a landing page: ``/`` redirects to ``landing_page`` (relative to base_url)."""

    landing_page = Unicode(
        "voila/render/overview.ipynb", config=True, help="Path that / redirects to."
    )

    def init_handlers(self) -> list[Any]:
        """Return Voilà's handlers with the landing-page redirect first (first match wins)."""
        handlers: list[Any] = super().init_handlers()
        if self.notebook_path:  # serving a single notebook: it is already the landing page
            return handlers
        target = url_path_join(self.base_url, self.landing_page)
        return [(self.server_url, RedirectHandler, {"url": target, "permanent": False}), *handlers]


main = DashboardVoila.launch_instance

if __name__ == "__main__":
    main()
