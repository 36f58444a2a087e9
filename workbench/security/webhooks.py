"""Webhook sending safety: the connection, the masking and the bounded read (SSRF at send time).

The rule for what a webhook may target is :mod:`workbench.catalog.webhook_targets`
(one rule: applied without DNS when a channel is saved, and with the system
resolver by the notifier right before every send). DNS can change between that
check and the connection (DNS rebinding), so this module closes the last gap:
:func:`public_only_transport`'s connections resolve the name once, check every
address (:func:`~workbench.catalog.webhook_targets.is_public_address`), and connect
only to a checked one. The notifier must not follow redirects
(``follow_redirects=False``: a 3xx answer is a failed delivery, since its
``Location`` was never checked), and must read at most a bounded number of
response bytes (:func:`read_bounded`). :func:`mask_target` hides a target's path
and query from keys without ``admin``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from workbench.catalog.webhook_targets import (
    FIELD,
    Resolver,
    is_public_address,
    literal_address,
    resolve,
)
from workbench.errors import ValidationError

MASK = "***"


def mask_target(url: str) -> str:
    """Return ``url`` with only its scheme, host and port left (``https://hooks.example.com/***``).

    Webhook URLs often carry the secret in the path or query (Slack-style
    ``/services/T…/B…/…``, ``?token=``), so whoever may only read sees where
    alerts go, not how to post there. Credentials and fragments go too.
    """
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    return f"{parts.scheme.lower()}://{shown}/{MASK}"


class _PublicOnlyBackend(httpcore.NetworkBackend):
    """A network backend that connects only to public addresses, checked at connect time."""

    def __init__(self, resolver: Resolver, inner: httpcore.NetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Return a stream to the first reachable address of ``host``, all of them public."""
        literal = literal_address(host)
        try:
            addresses = [literal] if literal is not None else resolve(host, port, self._resolver)
        except ValidationError as exc:
            raise httpcore.ConnectError(exc.details[FIELD][0]) from None
        for address in addresses:
            if not is_public_address(address):
                raise httpcore.ConnectError(
                    f"refused to connect to {host!r}: {address} is not a public address"
                )
        error: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                # The checked address itself, not the name: no second DNS answer is used.
                # TLS still verifies the certificate against the URL's host name.
                return self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Refuse: a Unix socket is never a webhook target."""
        raise httpcore.ConnectError("Unix sockets are not webhook targets")

    def sleep(self, seconds: float) -> None:
        """Sleep as the wrapped backend does."""
        self._inner.sleep(seconds)


def public_only_transport(
    *,
    resolver: Resolver = socket.getaddrinfo,
    inner: httpcore.NetworkBackend | None = None,
    **kwargs: Any,
) -> httpx.HTTPTransport:
    """Return an httpx transport that connects only to public addresses (for the notifier).

    Use it when private targets are not allowed:
    ``httpx.Client(transport=public_only_transport(), follow_redirects=False, trust_env=False)``
    (``trust_env=False``: a proxy from the environment would make the connection
    on our behalf, unchecked). A refused connection is an ``httpx.ConnectError``.
    """
    transport = httpx.HTTPTransport(**kwargs)
    pool = transport._pool
    # httpx offers no public hook for the network backend; fail loudly, never open,
    # if a future httpx stops keeping it where it is set here.
    if not hasattr(pool, "_network_backend"):
        raise RuntimeError("httpx/httpcore changed: cannot install the public-only backend")
    pool._network_backend = _PublicOnlyBackend(resolver, inner)
    return transport


def read_bounded(
    response: httpx.Response, max_bytes: int, *, max_seconds: float | None = None
) -> bytes:
    """Return at most ``max_bytes`` of a streamed response's raw body, then stop reading.

    Raw (not decompressed) bytes: the notifier only keeps a snippet for the
    delivery's last error, and decompressing could inflate a small body enormously.
    ``max_seconds`` also bounds the time spent reading (checked between chunks):
    the client's timeout applies to each read, so a receiver trickling a byte at a
    time could otherwise hold the sender for hours within the byte bound.
    A body that is already in memory (a mock transport's) is cut to ``max_bytes``.
    """
    if response.is_stream_consumed:
        try:
            return response.content[:max_bytes]
        except httpx.ResponseNotRead:
            return b""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        chunks.append(chunk[: max_bytes - size])
        size += len(chunks[-1])
        if size >= max_bytes or (deadline is not None and time.monotonic() >= deadline):
            break
    return b"".join(chunks)
