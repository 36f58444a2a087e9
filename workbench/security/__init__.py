"""Security of the workbench: API keys and scopes, ingest rate limits, query limits, webhook targets.

* :mod:`workbench.security.keys` - create, list, revoke, authenticate API keys;
* :mod:`workbench.security.ratelimit` - per-key token buckets for ingestion;
* :mod:`workbench.security.limits` - time-range and page-depth limits of searches;
* :mod:`workbench.security.webhooks` - which webhook URLs the notifier may call;
* :func:`bind_check` - refuse to serve beyond loopback without keys.

See ``docs/security.md``.
"""

from __future__ import annotations

import ipaddress
import socket

from workbench.config import Settings
from workbench.errors import ConfigError

# The same tuple as workbench.catalog.models.API_KEY_SCOPES (a test pins that); repeated
# here so importing this package for bind_check does not load the catalog models.
SCOPES: tuple[str, ...] = ("ingest", "read", "admin")

__all__ = ["SCOPES", "bind_check", "is_loopback_host"]


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
    from workbench.catalog.db import get_engine, init_db, session_scope
    from workbench.security.keys import active_keys_exist

    engine = get_engine(settings.database_url)
    init_db(engine)
    with session_scope(engine) as session:
        if active_keys_exist(session=session):
            return
    raise ConfigError(
        f"refusing to listen on {host!r} without API keys: anyone who can reach it could "
        "read logs and change alert rules. Create a key first "
        "(`workbench keys create --name NAME --scope ingest --scope read --scope admin`) "
        "or bind to 127.0.0.1 (WORKBENCH_HOST)."
    )
