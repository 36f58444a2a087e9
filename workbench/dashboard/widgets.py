"""The widgets the pages share: table cells and header rows, the enable toggle, the error box, timed refresh.

Timed refresh runs on the kernel's asyncio loop (the one ipykernel and Voilà
already run), so it updates the page in place without a reload, and it simply
does not start where no loop runs (plain pytest).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from workbench.dashboard.format import esc

log = logging.getLogger(__name__)


def cell(value: str, width: str) -> widgets.HTML:
    """Return one table cell (HTML) of a fixed width (``auto`` takes the remaining space)."""
    grow = "1 1 auto" if width == "auto" else "0 0 auto"
    w = widgets.HTML(value=value, layout=widgets.Layout(width=width, flex=grow))
    w.add_class("wb-cell")
    return w


class EnableToggle:
    """A row's Enabled/Disabled button: each click is persisted; a failed one reverts and says why.

    ``persist(enabled)`` stores the new state (raising on failure); ``failed(exc)`` shows
    the failure. :meth:`show` draws a state read from the catalog without persisting it
    (first draw, periodic refresh, revert).
    """

    def __init__(
        self,
        enabled: bool,
        css_class: str,
        *,
        persist: Callable[[bool], None],
        failed: Callable[[BaseException], None],
    ) -> None:
        self.button = widgets.ToggleButton(value=enabled, layout=widgets.Layout(width="110px"))
        self.button.add_class(css_class)
        self._persist, self._failed = persist, failed
        self._quiet = False
        self.button.observe(self._changed, names="value")
        self.show(enabled)

    def show(self, enabled: bool) -> None:
        """Draw ``enabled`` (value, label, colour, icon) without persisting it."""
        b = self.button
        self._quiet = True
        try:
            b.value = enabled
        finally:
            self._quiet = False
        b.description = "Enabled" if enabled else "Disabled"
        b.button_style = "success" if enabled else ""
        b.icon = "toggle-on" if enabled else "toggle-off"

    def _changed(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        try:
            self._persist(bool(change["new"]))
        except Exception as exc:
            self.show(bool(change["old"]))
            self._failed(exc)


def header_row(titles: tuple[str, ...], widths: tuple[str, ...]) -> widgets.HBox:
    """Return the header row of a widget table."""
    row = widgets.HBox([cell(f"{esc(t)}", w) for t, w in zip(titles, widths, strict=True)])
    row.add_class("wb-row-head")
    return row


class ErrorBox:
    """A red box that says what went wrong in words, hidden while there is nothing to say."""

    def __init__(self, css_class: str = "wb-error") -> None:
        self.widget = widgets.HTML(value="", layout=widgets.Layout(display="none"))
        self.widget.add_class(css_class)
        self.message = ""

    def show(self, message: str) -> None:
        """Show ``message`` (plain text, escaped)."""
        self.message = message
        self.widget.value = f'<div class="wb-error-box">⚠ {esc(message)}</div>'
        self.widget.layout.display = None

    def clear(self) -> None:
        """Hide the box."""
        self.message = ""
        self.widget.value = ""
        self.widget.layout.display = "none"


class AutoRefresher:
    """Call ``callback`` every ``interval_s`` seconds on the running asyncio loop (0 = never)."""

    def __init__(self, callback: Callable[[], None], interval_s: float) -> None:
        self.callback = callback
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Return whether the timer is running."""
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start the timer on the kernel's loop; return False when disabled or no loop runs."""
        if self.interval_s <= 0 or self.running:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            try:
                loop = asyncio.get_event_loop()
            except RuntimeError:
                return False
        if not loop.is_running():
            # ipykernel runs its loop while executing cells; plain scripts and tests do not.
            return False
        self._task = loop.create_task(self._run())
        return True

    def stop(self) -> None:
        """Stop the timer."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.callback()
            except Exception:  # the page shows its own error box; keep ticking
                log.debug("dashboard refresh failed", exc_info=True)
