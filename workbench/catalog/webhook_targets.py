"""The one webhook-URL rule: what a channel may target, checked when it is saved and before each send.

A webhook URL is chosen by whoever may create a channel, and the notifier POSTs
to it from inside the network: without a check it is a way to reach internal
services (SSRF). :func:`check_webhook_target` refuses:

* anything but an absolute ``http``/``https`` URL with a host and a valid port,
  whitespace, and user:password in the URL (:func:`url_problem`);
* unless private targets are allowed (``WORKBENCH_ALLOW_PRIVATE_WEBHOOKS``):
  ``localhost`` names and literal addresses that are not public
  (:func:`is_public_address`);
* given a ``resolver`` (at send time), names whose DNS answer holds any address
  that is not public (every answer is checked).

Saving a channel (``workbench.catalog.channels``) applies the rule without a
resolver: a save never waits on DNS, and DNS can change before the send anyway.
The notifier applies it with the system resolver right before every send, and
``workbench.security.webhooks.public_only_transport`` checks the address it
connects to. This module imports nothing of ``workbench.security``: security
depends on the catalog, never the reverse.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from workbench.errors import ValidationError

Resolver = Callable[..., Sequence[tuple[Any, ...]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

FIELD = "target"

_PRIVATE_OFF = "private webhook targets are not allowed (WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=false)"

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


def refuse(reason: str) -> ValidationError:
    """Return the ValidationError naming ``target`` that a refused webhook target raises."""
    return ValidationError("Invalid webhook target", {FIELD: [reason]})


def url_problem(value: str) -> str | None:
    """Return why ``value`` is not an absolute http(s) URL with a host, or None if it is one.

    Syntax only (no DNS): whitespace, the scheme, the host and the port.
    """
    if any(c.isspace() for c in value):
        return "URL must not contain whitespace"
    parts = urlsplit(value)
    if parts.scheme.lower() not in ("http", "https"):
        return "URL must start with http:// or https://"
    try:
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError as exc:
        return f"invalid URL: {exc}"
    if not host:
        return "URL must name a host"
    return None


def check_webhook_url(value: str) -> str:
    """Return ``value`` if :func:`url_problem` finds nothing, else raise ValueError (schemas)."""
    problem = url_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


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


def literal_address(host: str) -> IPAddress | None:
    """Return ``host`` as an IP address if it is one (also ``2130706433``, ``0x7f.1``), else None."""
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


def check_webhook_target(url: str, *, allow_private: bool, resolver: Resolver | None) -> None:
    """Return if ``url`` may be a webhook target; ValidationError naming ``target`` otherwise.

    ``resolver`` has the signature of :func:`socket.getaddrinfo`: the notifier passes
    it before a send (tests pass a fake one); a save passes None and nothing is
    resolved. With ``allow_private`` nothing is resolved either.
    """
    problem = url_problem(url)
    if problem is not None:
        raise refuse(problem)
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise refuse("credentials in the URL are not allowed; use the channel secret")
    if allow_private:
        return
    host = (parts.hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise refuse(f"host {host!r} is loopback; " + _PRIVATE_OFF)
    literal = literal_address(host)
    if literal is not None:
        if not is_public_address(literal):
            raise refuse(f"address {literal} is not public; " + _PRIVATE_OFF)
        return
    if resolver is None:
        return
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    for address in resolve(host, port, resolver):
        if not is_public_address(address):
            raise refuse(
                f"host {host!r} resolves to {address}, which is not public; " + _PRIVATE_OFF
            )


def resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    """Return every address ``host`` resolves to; ValidationError naming ``target`` if none."""
    try:
        infos = resolver(host, port, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise refuse(f"host {host!r} does not resolve: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        raw = str(info[4][0]).split("%", 1)[0]  # drop an IPv6 zone id
        try:
            addresses.append(ipaddress.ip_address(raw))
        except ValueError:
            raise refuse(f"host {host!r} resolves to {raw!r}, not an IP address") from None
    if not addresses:
        raise refuse(f"host {host!r} does not resolve")
    return addresses
