"""Start the dashboard: Voilà over ``notebooks/dashboard`` with pre-heated kernels and culling.

``dashboard_command`` builds the argv (``workbench up`` supervises it),
``start_dashboard`` starts it. Choices, each explained in ``docs/dashboard.md``:

* ``--Voila.ip`` binds the address (``--ip`` is ignored by Voilà 0.5);
* one pre-heated kernel per page (``--preheat_kernel=True --pool_size=1``): the
  notebooks call ``request_params()``, which waits for the request, so the
  query string (``?incident=…``) and the data are the visitor's, not the warm-up's;
* a page's kernel is freed once its page is gone (no browser connected for
  ``WORKBENCH_DASHBOARD_PAGE_GRACE_SECONDS``, or 10 s after the tab closed:
  :mod:`workbench.dashboard.kernels`); idle kernels are also culled after 15 min;
* past ``WORKBENCH_DASHBOARD_MAX_KERNELS`` page kernels a page answers 503 "busy";
* only loopback names and ``WORKBENCH_ALLOWED_HOSTS`` are accepted as ``Host`` (DNS rebinding);
* tracebacks are never shown to the page (the pages show their own messages);
* beyond loopback a token is required (``WORKBENCH_DASHBOARD_TOKEN``, passed as
  ``--Voila.token``): the pages show logs and can acknowledge incidents, so
  :func:`dashboard_token` refuses to start without one (``docs/security.md``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote

from workbench.config import Settings
from workbench.errors import ConfigError
from workbench.notebooks import dashboard_dir
from workbench.security import is_loopback_host, weak_secret_reason

CULL_IDLE_TIMEOUT_S = 900
CULL_INTERVAL_S = 60
KERNEL_MANAGER = "workbench.dashboard.kernels.PageKernelManager"
DISCONNECTED_GRACE_S = 10.0  # a closed tab's kernel goes this long after its last websocket
MIN_TOKEN_CHARS = 16
TOKEN_SETTING = "WORKBENCH_DASHBOARD_TOKEN"


def dashboard_url(host: str, port: int, token: str = "") -> str:
    """Return the URL people open: the landing page redirects to the Overview.

    With a ``token`` the URL carries it (``?token=…``): the first visit logs the
    browser in (a cookie), and the redirect keeps the query string.
    """
    url = f"http://{host}:{port}/"
    return f"{url}?token={quote(token, safe='')}" if token else url


def dashboard_token(settings: Settings, host: str) -> str:
    """Return the token the dashboard on ``host`` must ask for ("" for none); ConfigError if unsafe.

    On loopback no token is needed (today's behaviour) but one is used if set.
    Beyond loopback the pages would show every log and let anyone acknowledge
    incidents, so ``WORKBENCH_DASHBOARD_TOKEN`` must hold at least
    ``MIN_TOKEN_CHARS`` characters and not be guessable (one repeated character, a
    run like ``0123…``: :func:`~workbench.security.weak_secret_reason`), or the
    dashboard refuses to start.
    """
    token = settings.dashboard_token.strip()
    if is_loopback_host(host):
        return token
    if not token:
        raise ConfigError(
            f"refusing to serve the dashboard on {host!r} without a token: anyone who can "
            "reach it could read logs and acknowledge incidents. Set "
            f"{TOKEN_SETTING} (e.g. to the output of `python -c "
            "'import secrets; print(secrets.token_urlsafe(32))'`) or bind to 127.0.0.1."
        )
    weakness = weak_secret_reason(token, min_chars=MIN_TOKEN_CHARS)
    if weakness is not None:
        raise ConfigError(
            f"{TOKEN_SETTING} is {weakness} to guard the dashboard on {host!r}: use at least "
            f"{MIN_TOKEN_CHARS} random characters (`python -c "
            "'import secrets; print(secrets.token_urlsafe(32))'`)."
        )
    return token


def dashboard_command(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    preheat: bool = True,
    pool_size: int = 1,
) -> list[str]:
    """Return the argv that serves the dashboard with Voilà on ``host:port``.

    ConfigError when ``host`` is beyond loopback and no usable token is set
    (:func:`dashboard_token`). The token goes on the command line (Voilà reads it
    from nowhere else), so local users who can list processes can see it.
    """
    port = port or settings.dashboard_port
    token = dashboard_token(settings, host)
    grace = settings.dashboard_page_grace_s
    argv = [
        sys.executable, "-m", "workbench.dashboard.voila_app", str(dashboard_dir()),
        f"--Voila.ip={host}",
        f"--Voila.port={port}",
        "--Voila.open_browser=False",
        "--VoilaConfiguration.show_tracebacks=False",
        # Kernels on Unix sockets beside their connection files (Voilà's private temp
        # folder), not on TCP ports: no open port per page kernel, and none of ipykernel's
        # "running over TCP without encryption" warnings at every kernel start.
        "--KernelManager.transport=ipc",
        f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_TIMEOUT_S}",
        f"--MappingKernelManager.cull_interval={CULL_INTERVAL_S}",
        "--MappingKernelManager.cull_connected=False",
        f"--VoilaConfiguration.multi_kernel_manager_class={KERNEL_MANAGER}",
        f"--PageKernelManager.unconnected_grace={grace:g}",
        f"--PageKernelManager.disconnected_grace={min(DISCONNECTED_GRACE_S, grace):g}",
        f"--DashboardVoila.max_kernels={settings.dashboard_max_kernels}",
        f"--DashboardVoila.allowed_hosts={','.join(settings.allowed_host_list)}",
    ]
    if preheat and pool_size > 0:
        argv += ["--preheat_kernel=True", f"--pool_size={pool_size}"]
    if token:
        argv.append(f"--Voila.token={token}")
    return argv


def start_dashboard(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    env: dict[str, str] | None = None,
    preheat: bool = True,
    pool_size: int = 1,
    **popen: object,
) -> subprocess.Popen[bytes]:
    """Start the Voilà server and return its process (the server itself, not a shell)."""
    child_env = dict(os.environ if env is None else env)
    # The kernels read the same settings as this process: pin the data directory and URLs.
    child_env["WORKBENCH_DATA_DIR"] = str(settings.data_dir)
    child_env.setdefault("DATABASE_URL", settings.database_url)
    child_env.setdefault("WORKBENCH_LAKE_URL", settings.lake_url)
    child_env.setdefault("WORKBENCH_DASHBOARD_URL", f"http://{host}:{port or settings.dashboard_port}")
    argv = dashboard_command(settings, host, port, preheat=preheat, pool_size=pool_size)
    return subprocess.Popen(argv, env=child_env, **popen)  # type: ignore[call-overload,no-any-return]  # noqa: S603
