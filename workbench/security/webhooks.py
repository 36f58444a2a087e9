"""Webhook target safety: only http(s) URLs to public addresses, unless private ones are allowed.

A webhook URL is chosen by whoever may create a channel, and the notifier POSTs
to it from inside the network: without a check it is a way to reach internal
services (SSRF). :func:`check_webhook_target` refuses:

* schemes other than ``http``/``https``, a missing host, user:password in the URL;
* literal addresses that are private, loopback, link-local, multicast, reserved
  or unspecified (IPv4, IPv6, and IPv4 mapped into IPv6 or wrapped in 6to4), in
  ``192.0.0.0/24``, site-local ``fec0::/10``, Teredo ``2001::/32``, IPv4-compatible
  ``::/96`` or NAT64 ``64:ff9b::/96``, and ``localhost`` names;
* names whose DNS answer holds any such address (every answer is checked, so a
  name that resolves to one public and one private address is refused).

``WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=true`` (local development, tests) turns the
address checks off; the scheme and host checks stay.

DNS can change between the check and the connection (DNS rebinding), so the check
at channel creation is not enough. The notifier must call this function again
right before every send, must not follow redirects (``follow_redirects=False``:
a 3xx answer is a failed delivery, since its ``Location`` was never checked), and
must read at most a bounded number of response bytes (:func:`read_bounded`).
:func:`public_only_transport` closes the last gap: its connections resolve the
name once, check every address, and connect only to a checked one, so a DNS
answer that changes between the check and the connection cannot slip through.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from workbench.errors import ValidationError

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FIELD = "target"


_PRIVATE_OFF = "private webhook targets are not allowed (WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=false)"


def _refuse(reason: str) -> ValidationError:
    return ValidationError("Invalid webhook target", {_FIELD: [reason]})


# Never public, whatever Python's ``is_global`` says for the running version (3.11
# calls 192.0.0.9, 192.0.0.10 and fec0::/10 global; later versions differ again).
_NEVER_PUBLIC: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = (
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments: none is a webhook
    ipaddress.ip_network("fec0::/10"),  # site-local (deprecated, still routed inside sites)
    ipaddress.ip_network("2001::/32"),  # Teredo: a tunnel whose far end we cannot check
    ipaddress.ip_network("::/96"),  # IPv4-compatible (deprecated): ::10.0.0.5 and the like
    ipaddress.ip_network("64:ff9b::/96"),  # NAT64: the translator may reach any IPv4 address
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
)


def is_public_address(ip: IPAddress) -> bool:
    """Return True if ``ip`` is a globally routable unicast address (what a webhook may reach).

    IPv6 forms that carry an IPv4 address are judged by that address (IPv4-mapped
    ``::ffff:a.b.c.d``; 6to4 ``2002:wwxx:yyzz::/48``), so ``2002:7f00:1::1`` is loopback;
    Teredo, IPv4-compatible, NAT64, site-local and ``192.0.0.0/24`` are never public.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        wrapped = ip.ipv4_mapped or ip.sixtofour
        if wrapped is not None:
            ip = wrapped  # ::ffff:127.0.0.1 and 2002:7f00:1:: are loopback, whatever their notation
    if any(ip in network for network in _NEVER_PUBLIC):
        return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global  # shared address space (100.64/10), documentation ranges, ...
    )


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # Forms like "2130706433" or "0x7f.1" that some resolvers read as IPv4 literals.
    try:
        packed = socket.inet_aton(host)
    except (OSError, ValueError):
        return None
    return ipaddress.IPv4Address(packed)


def check_webhook_target(
    url: str, *, allow_private: bool, resolver: Resolver = socket.getaddrinfo
) -> None:
    """Return if ``url`` is a webhook target the notifier may POST to; ValidationError naming ``target``.

    ``resolver`` has the signature of :func:`socket.getaddrinfo` (tests pass a fake
    one). With ``allow_private`` nothing is resolved.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise _refuse(f"not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _refuse("the URL scheme must be http or https")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise _refuse("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise _refuse("credentials in the URL are not allowed; use the channel secret")
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise _refuse(f"host {host!r} is loopback; " + _PRIVATE_OFF)
    literal = _literal_address(host)
    if literal is not None:
        if not is_public_address(literal):
            raise _refuse(f"address {literal} is not public; " + _PRIVATE_OFF)
        return
    for address in resolve(host, port or (443 if parts.scheme.lower() == "https" else 80), resolver):
        if not is_public_address(address):
            raise _refuse(
                f"host {host!r} resolves to {address}, which is not public; " + _PRIVATE_OFF
            )


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


def resolve(host: str, port: int, resolver: Resolver = socket.getaddrinfo) -> list[IPAddress]:
    """Return every address ``host`` resolves to; ValidationError naming ``target`` if none."""
    try:
        infos = resolver(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise _refuse(f"host {host!r} does not resolve: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        try:
            addresses.append(ipaddress.ip_address(raw))
        except ValueError:
            raise _refuse(f"host {host!r} resolves to {raw!r}, not an IP address") from None
    if not addresses:
        raise _refuse(f"host {host!r} does not resolve")
    return addresses


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
        literal = _literal_address(host)
        try:
            addresses = [literal] if literal is not None else resolve(host, port, self._resolver)
        except ValidationError as exc:
            raise httpcore.ConnectError(exc.details[_FIELD][0]) from None
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
        self, path: str, timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        """Refuse: a Unix socket is never a webhook target."""
        raise httpcore.ConnectError("Unix sockets are not webhook targets")

    def sleep(self, seconds: float) -> None:
        """Sleep as the wrapped backend does."""
        self._inner.sleep(seconds)


def public_only_transport(
    *, resolver: Resolver = socket.getaddrinfo, inner: httpcore.NetworkBackend | None = None,
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
