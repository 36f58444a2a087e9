"""The base of the dashboard pages (navigation, heartbeat, error box, timed refresh) and their query string.

Pages are plain Python objects holding ipywidgets; nothing here needs a browser.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import ipywidgets as widgets
from IPython.display import display

from workbench.clock import Clock
from workbench.config import Settings
from workbench.dashboard.context import PageContext
from workbench.dashboard.errors import friendly_error
from workbench.dashboard.format import esc, fmt_ts
from workbench.dashboard.nav import ApiMode, Heartbeat, nav_bar
from workbench.dashboard.style import style_widget
from workbench.dashboard.widgets import AutoRefresher, ErrorBox

log = logging.getLogger(__name__)


def request_params(
    defaults: Mapping[str, str] | None = None, *, prepare: Settings | None = None
) -> dict[str, str]:
    """Return the page's query-string parameters (``?incident=…``), waiting for the request.

    With pre-heated kernels Voilà runs the notebook before any browser asks for
    it; ``wait_for_request`` pauses here until the request arrives, so the data
    below is loaded fresh and the query string is the visitor's. With
    ``prepare``, the catalog is opened first, while nobody is waiting.
    """
    import os
    from urllib.parse import parse_qsl

    if prepare is not None:
        from workbench.dashboard import store

        store.prepare(prepare)
    out = dict(defaults or {})
    try:
        from voila.utils import wait_for_request

        wait_for_request()
    except Exception:  # not under Voilà (JupyterLab, papermill, tests)
        pass
    query = os.environ.get("QUERY_STRING", "")
    for key, value in parse_qsl(query, keep_blank_values=False):
        out[key] = value
    return out


class Page:
    """Base of the dashboard pages: navigation, heartbeat, error box, content and timed refresh."""

    key = ""
    title = ""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.ctx = (
            PageContext(settings=settings) if clock is None
            else PageContext(settings=settings, clock=clock)
        )
        self.heartbeat = Heartbeat(self.ctx)
        self.api_mode = ApiMode(self.ctx)
        self.error = ErrorBox()
        self.status = widgets.HTML(value="")
        self.status.add_class("wb-updated")
        self.body = widgets.VBox([])
        self.body.add_class("wb-body")
        header = widgets.HTML(value=f'<h1 class="wb-title">{esc(self.title)}</h1>')
        self.widget = widgets.VBox(
            [style_widget(), nav_bar(self.key, self.heartbeat.widget, self.api_mode.widget),
             header, self.error.widget,
             self.body, self.status]
        )
        self.widget.add_class("wb-page")
        self.widget.add_class(f"wb-page-{self.key}")
        self.refresher = AutoRefresher(self.refresh, settings.refresh_interval_s)

    def refresh(self) -> None:
        """Reload the page's data from the catalog and lake and redraw it."""
        self.heartbeat.refresh()
        self.api_mode.refresh()
        try:
            self.load()
        except Exception as exc:  # shown to a person, never as a traceback
            # debug, not warning: a kernel prints warnings to stderr, i.e. onto the page.
            log.debug("dashboard %s refresh failed", self.key, exc_info=True)
            self.error.show(friendly_error(exc, self.ctx.settings))
        else:
            self.error.clear()
        self.status.value = (
            f'<span class="wb-muted">updated {esc(fmt_ts(self.ctx.now()))}'
            + (
                f" · refreshes every {self.ctx.settings.refresh_interval_s} s"
                if self.ctx.settings.refresh_interval_s > 0
                else ""
            )
            + "</span>"
        )

    def load(self) -> None:
        """Load and draw the page's data (each page overrides this)."""

    def show(self) -> None:
        """Display the page, load its data and start the timed refresh."""
        display(self.widget)
        self.refresh()
        self.refresher.start()
