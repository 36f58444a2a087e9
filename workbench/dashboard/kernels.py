"""Page kernels that go when their page is gone, a cap on them, and the Host check.

Every page view of the dashboard holds a kernel (~250-290 MB). Voilà frees none of
them when the browser goes away, and ``cull_idle_timeout`` never fires because a
page's timed refresh keeps its kernel active. So a kernel is freed when its *page*
is gone, judged by the websockets the server counts per kernel:

* a kernel handed to a request that no browser ever connected to (a plain GET, a
  readiness probe, a link preview) goes once it has been idle -- its page rendered
  -- for ``unconnected_grace`` seconds (counted from when it was handed out or last
  seen busy, whichever is later: the browser connects after the page has arrived);
* a kernel whose last websocket closed (tab closed, browser gone) goes
  ``disconnected_grace`` seconds later unless a websocket comes back;
* a kernel with a websocket open is never touched (a tab left open keeps working);
* the pre-heated pool's kernels are never touched.

:func:`kernels_to_free` is that rule as a pure function (``now`` passed in);
:class:`PageKernelManager` feeds it from jupyter_server's bookkeeping every
``reap_interval`` seconds. The Host check against DNS rebinding is
:func:`workbench.security.host_header_allowed` (``docs/security.md``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.ioloop import PeriodicCallback
from traitlets import Float


@dataclass(frozen=True)
class KernelView:
    """What the reaper knows about one running kernel at one moment."""

    kernel_id: str
    handed_out_at: float | None  # when it left the pool / was started for a page; None: pooled
    connections: int  # websockets open now
    ever_connected: bool
    last_disconnect_at: float | None
    idle: bool  # execution_state == "idle"
    last_busy_at: float | None = None  # last time it was seen not idle (rendering its page)


def kernels_to_free(
    kernels: Iterable[KernelView],
    now: float,
    *,
    unconnected_grace: float,
    disconnected_grace: float,
) -> list[str]:
    """Return the ids of the kernels whose page is gone at ``now`` (see the module docstring)."""
    gone: list[str] = []
    for k in kernels:
        if k.handed_out_at is None or k.connections > 0:
            continue
        if k.ever_connected:
            since = k.last_disconnect_at if k.last_disconnect_at is not None else k.handed_out_at
            if now - since >= disconnected_grace:
                gone.append(k.kernel_id)
        elif k.idle and now - max(k.handed_out_at, k.last_busy_at or 0.0) >= unconnected_grace:
            gone.append(k.kernel_id)
    return gone


class PageKernelManager(AsyncMappingKernelManager):  # type: ignore[misc]
    """jupyter_server's kernel manager, plus freeing the kernels of pages that are gone.

    Voilà's pre-heating wraps this class (``voila_kernel_manager_factory``), so the
    pool (``self._pools``, when pre-heating) is read here to leave pooled kernels be.
    Selected with ``--VoilaConfiguration.multi_kernel_manager_class`` (``serve.py``).
    """

    unconnected_grace = Float(
        45.0, config=True,
        help="Seconds a page's kernel is kept when no websocket ever connected to it.",
    )
    disconnected_grace = Float(
        10.0, config=True, help="Seconds a kernel is kept after its last websocket closed."
    )
    reap_interval = Float(2.0, config=True, help="Seconds between two looks for gone pages.")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._started_at: dict[str, float] = {}  # kernels whose start has completed
        self._handed_out_at: dict[str, float] = {}
        self._ever_connected: set[str] = set()
        self._last_disconnect_at: dict[str, float] = {}
        self._last_busy_at: dict[str, float] = {}
        self._reaper: PeriodicCallback | None = None
        # Page requests admitted and not finished: the pool task each takes, or None when
        # it starts its own kernel (the pool is empty).
        self._admitted: dict[object, Any] = {}

    # ------------------------------------------------------------ bookkeeping

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        kernel_id: str = await super().start_kernel(*args, **kwargs)
        self._started_at.setdefault(kernel_id, time.monotonic())
        if self._reaper is None:
            self._reaper = PeriodicCallback(self._reap, self.reap_interval * 1000)
            self._reaper.start()
        return kernel_id

    def notify_connect(self, kernel_id: str) -> None:
        super().notify_connect(kernel_id)
        self._ever_connected.add(kernel_id)

    def notify_disconnect(self, kernel_id: str) -> None:
        super().notify_disconnect(kernel_id)
        self._last_disconnect_at[kernel_id] = time.monotonic()

    def remove_kernel(self, kernel_id: str) -> Any:
        for table in (self._started_at, self._handed_out_at, self._last_disconnect_at,
                      self._last_busy_at):
            table.pop(kernel_id, None)
        self._ever_connected.discard(kernel_id)
        return super().remove_kernel(kernel_id)

    def pooled_kernel_ids(self) -> set[str]:
        """Return the ids of the pre-heated kernels still waiting in the pool."""
        pooled: set[str] = set()
        for pool in getattr(self, "_pools", {}).values():
            for task in pool:
                if task.done() and not task.cancelled() and task.exception() is None:
                    kid = task.result().get("kernel_id")
                    if kid:
                        pooled.add(kid)
        return pooled

    def page_kernel_ids(self) -> list[str]:
        """Return the ids of the started kernels that serve pages (not in the pool)."""
        pooled = self.pooled_kernel_ids()
        return [k for k in self.list_kernel_ids() if k in self._started_at and k not in pooled]

    def page_count(self) -> int:
        """Return how many page kernels exist or are being started for admitted requests.

        A request that takes a pool kernel still starting, or starts its own kernel, counts
        until its kernel is known (own kernels: until the request ends, so a burst of
        requests finding the pool empty is counted on the safe side).
        """
        pages = set(self.page_kernel_ids())
        pending = 0
        for task in self._admitted.values():
            if task is not None and task.done() and not task.cancelled() and (
                task.exception() is None and task.result().get("kernel_id") in pages
            ):
                continue
            pending += 1
        return len(pages) + pending

    def admit(self, notebook: str) -> object:
        """Record a page request for ``notebook`` about to take a kernel; return its handle.

        Voilà takes the first kernel of the notebook's pool (``pop(0)``), synchronously,
        when the request starts; with the pool empty the request starts its own.
        """
        pool = getattr(self, "_pools", {}).get(notebook) or []
        handle = object()
        self._admitted[handle] = pool[0] if pool else None
        return handle

    def release(self, handle: object) -> None:
        """Forget an admitted request (it has finished; its kernel, if any, is a page kernel)."""
        self._admitted.pop(handle, None)

    def snapshot(self, now: float) -> list[KernelView]:
        """Return a :class:`KernelView` per started kernel; record when pages took them."""
        pooled = self.pooled_kernel_ids()
        views = []
        for kid in self.list_kernel_ids():
            if kid not in self._started_at:
                continue  # still starting (for the pool or a page)
            if kid in pooled:
                self._handed_out_at.pop(kid, None)
                handed: float | None = None
            else:
                handed = self._handed_out_at.setdefault(kid, now)
            kernel = self._kernels.get(kid)
            idle = getattr(kernel, "execution_state", "") == "idle"
            if not idle:
                self._last_busy_at[kid] = now
            views.append(KernelView(
                kernel_id=kid,
                handed_out_at=handed,
                connections=int(self._kernel_connections.get(kid, 0)),
                ever_connected=kid in self._ever_connected,
                last_disconnect_at=self._last_disconnect_at.get(kid),
                idle=idle,
                last_busy_at=self._last_busy_at.get(kid),
            ))
        return views

    async def _reap(self) -> None:
        """Shut down, all at once, the kernels whose page is gone (one look; runs every
        ``reap_interval`` seconds, never overlapping itself)."""
        now = time.monotonic()
        gone = kernels_to_free(
            self.snapshot(now), now,
            unconnected_grace=self.unconnected_grace,
            disconnected_grace=self.disconnected_grace,
        )
        await asyncio.gather(*(self._free(kid) for kid in gone if kid in self))

    async def _free(self, kernel_id: str) -> None:
        self.log.info("Freeing kernel %s: its page is gone", kernel_id)
        try:
            await self.shutdown_kernel(kernel_id)
        except Exception:  # noqa: BLE001 - a kernel that died meanwhile; free the others
            self.log.warning("Could not shut down kernel %s", kernel_id, exc_info=True)

    async def shutdown_all(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self._reaper is not None:
            self._reaper.stop()
        await super().shutdown_all(*args, **kwargs)
