"""Security of the workbench: API keys and scopes, ingest rate limits, query limits, webhook targets.

* :mod:`workbench.security.keys` - create, list, revoke, authenticate API keys;
* :mod:`workbench.security.ratelimit` - per-key token buckets for ingestion;
* :mod:`workbench.security.limits` - time-range and page-depth limits of searches;
* :mod:`workbench.security.webhooks` - connecting only to public addresses, masking, bounded reads
  (the rule for which URLs a webhook may target is :mod:`workbench.catalog.webhook_targets`:
  security depends on the catalog, never the reverse);
* :func:`bind_check` - refuse to serve beyond loopback without keys;
* :func:`host_header_allowed` - the ``Host`` check against DNS rebinding (API and dashboard);
* :func:`weak_secret_reason` - why a configured secret (the dashboard token) is too guessable.

See ``docs/security.md``.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import socket
from collections import Counter
from collections.abc import Iterable

from workbench.config import Settings
from workbench.errors import ConfigError

# The same tuple as workbench.catalog.models.API_KEY_SCOPES (a test pins that); repeated
# here so importing this package for bind_check does not load the catalog models.
SCOPES: tuple[str, ...] = ("ingest", "read", "admin")

__all__ = [
    "SCOPES",
    "bind_check",
    "host_header_allowed",
    "host_header_name",
    "is_loopback_host",
    "weak_secret_reason",
]

# Thresholds of weak_secret_reason. Random tokens clear them by far: over 10^6 draws
# of secrets.token_hex(16) / token_urlsafe(12) none was refused (and ~6 in 10^5
# 16-character token_hex(8), whose 64 bits are the bare minimum anyway).
MIN_DISTINCT_CHARS = 6
MIN_ESTIMATED_BITS = 32.0
MAX_RUN_STEPS = 0.6  # share of neighbours equal or one apart ("aaaa", "abcd", "1234")


def weak_secret_reason(secret: str, *, min_chars: int) -> str | None:
    """Return why ``secret`` is too easy to guess ("too short (…)", "of too little entropy (…)"), or None.

    Length alone lets ``"aaaaaaaaaaaaaaaa"`` through, so the characters must also
    vary: at least ``MIN_DISTINCT_CHARS`` distinct ones, no short unit repeated
    (``"abab…"``), not mostly runs or sequences (``"0123…"``), and an estimated
    entropy (the characters' Shannon entropy times the length) of at least
    ``MIN_ESTIMATED_BITS``. This catches tokens typed by hand, not dictionary
    words: the advice stays ``secrets.token_urlsafe(32)``.
    """
    n = len(secret)
    if n < min_chars:
        return f"too short ({n} characters, at least {min_chars})"
    distinct = len(set(secret))
    if distinct < MIN_DISTINCT_CHARS:
        return f"of too little entropy (only {distinct} distinct characters)"
    for unit in range(1, n // 2 + 1):
        if all(secret[i] == secret[i % unit] for i in range(unit, n)):
            return f"of too little entropy (the first {unit} characters repeated)"
    steps = sum(1 for a, b in zip(secret, secret[1:], strict=False) if abs(ord(a) - ord(b)) <= 1)
    if steps > MAX_RUN_STEPS * (n - 1):
        return "of too little entropy (mostly runs or sequences such as 'aaaa' or '1234')"
    bits = -sum(c / n * math.log2(c / n) for c in Counter(secret).values()) * n
    if bits < MIN_ESTIMATED_BITS:
        return f"of too little entropy (about {bits:.0f} bits, at least {MIN_ESTIMATED_BITS:.0f})"
    return None


def host_header_name(host_header: str) -> str:
    """Return the host name of a ``Host`` header value: lower-cased, no port, brackets or final dot."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [v6]:port
        name = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:
        name = host.rsplit(":", 1)[0]
    else:
        name = host
    return name.rstrip(".")


def host_header_allowed(host_header: str, allowed: Iterable[str] = ()) -> bool:
    """Return whether a request's ``Host`` header names this server, never resolving it.

    Loopback names (``localhost``, ``*.localhost``, any ``127.x`` address, ``[::1]``,
    with or without a port) are always accepted; so is any name in ``allowed``
    (lower-case, no port or brackets). Everything else -- notably a rebinding domain
    that resolves to 127.0.0.1 by design -- is refused. The API (``ingest_api.auth``,
    in open mode) and the dashboard (``workbench.dashboard.voila_app``) both ask this.
    """
    name = host_header_name(host_header)
    if not name:
        return False
    if name in ("localhost", "ip6-localhost") or name.endswith(".localhost"):
        return True
    if name in allowed:
        return True
    return _is_loopback_ip(name)


@functools.lru_cache(maxsize=256)
def _is_loopback_ip(name: str) -> bool:
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def is_loopback_host(host: str) -> bool:
    """Return True if binding ``host`` exposes the server to this machine only.

    ``0.0.0.0``, ``::`` and the empty string mean every interface, so they are not
    loopback; a name counts only if every address it resolves to is loopback.
    """
    host = host.strip().strip("[]").lower()
    if host in ("localhost", "ip6-localhost") or host.endswith(".localhost"):
        return True
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    addresses = {str(info[4][0]).split("%", 1)[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def bind_check(settings: Settings, host: str) -> None:
    """Return if serving on ``host`` is safe; ConfigError saying why not otherwise.

    On loopback anything goes (with no keys the API is open, for a first try). On
    any other address at least one unrevoked API key must exist, or everyone on the
    network could read the logs and change the alert rules.
    """
    if is_loopback_host(host):
        return
    from workbench.catalog.db import catalog_engine, session_scope
    from workbench.security.keys import active_keys_exist

    engine = catalog_engine(settings.database_url)
    with session_scope(engine) as session:
        if active_keys_exist(session=session):
            return
    raise ConfigError(
        f"refusing to listen on {host!r} without API keys: anyone who can reach it could "
        "read logs and change alert rules. Create a key first "
        "(`workbench keys create --name NAME --scope ingest --scope read --scope admin`) "
        "or bind to 127.0.0.1 (WORKBENCH_HOST)."
    )
