"""Webhook targets: scheme and host required; private, loopback, link-local refused unless allowed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest

from workbench.catalog.webhook_targets import check_webhook_target
from workbench.errors import ValidationError
from workbench.security.webhooks import public_only_transport, read_bounded


def fake_resolver(*answers: str) -> Any:
    """A getaddrinfo stand-in answering ``answers`` for every name, counting its calls."""

    def resolve(host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        resolve.calls += 1  # type: ignore[attr-defined]
        return [
            (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in answers
        ]

    resolve.calls = 0  # type: ignore[attr-defined]
    return resolve


PUBLIC = fake_resolver("93.184.216.34")


def _refused(url: str, **kw: Any) -> str:
    with pytest.raises(ValidationError) as err:
        check_webhook_target(url, allow_private=False, resolver=kw.get("resolver", PUBLIC))
    assert list(err.value.details) == ["target"]
    return err.value.details["target"][0]


def test_public_https_target_is_allowed() -> None:
    check_webhook_target("https://hooks.example.com/x", allow_private=False, resolver=PUBLIC)
    check_webhook_target("http://93.184.216.34:8080/hook", allow_private=False, resolver=PUBLIC)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x", "javascript:alert(1)", "example.com/x"]
)
def test_only_http_and_https(url: str) -> None:
    assert _refused(url) == "URL must start with http:// or https://"


@pytest.mark.parametrize("url", ["http://", "https:///path", "http://:80/"])
def test_host_required(url: str) -> None:
    assert _refused(url) == "URL must name a host"


def test_credentials_in_url_refused() -> None:
    assert "credentials" in _refused("https://user:pw@example.com/")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.1/",  # short IPv4 form
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.0.0.1/",
        "http://localhost:9000/",
        "http://api.localhost/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
        "http://10.0.0.5/",
        "http://172.16.3.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata: link-local
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",  # multicast
        "http://240.0.0.1/",  # reserved
        "http://100.64.0.1/",  # carrier-grade NAT, not global
    ],
)
def test_private_literals_refused(url: str) -> None:
    resolver = fake_resolver("93.184.216.34")
    assert "not allowed" in _refused(url, resolver=resolver)
    assert resolver.calls == 0  # literals are judged without DNS


# IPv6 forms that carry (or route to) an IPv4 address, and ranges Python's ``is_global``
# calls global although nobody outside a site should be reached there.
TUNNELLED_AND_ODD = [
    "http://[2002:7f00:1::1]/",  # 6to4 wrapping 127.0.0.1
    "http://[2002:a00:5::1]/",  # 6to4 wrapping 10.0.0.5
    "http://[2002:c0a8:101::]/",  # 6to4 wrapping 192.168.1.1
    "http://[2002:a9fe:a9fe::1]/",  # 6to4 wrapping 169.254.169.254 (cloud metadata)
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[2001::1]/",  # Teredo prefix, any host
    "http://[::127.0.0.1]/",  # IPv4-compatible (deprecated) loopback
    "http://[::10.0.0.5]/",  # IPv4-compatible private
    "http://[::ffff:10.0.0.5]/",  # IPv4-mapped private
    "http://[::ffff:7f00:1]/",  # IPv4-mapped loopback, hex notation
    "http://[64:ff9b::a00:5]/",  # NAT64 well-known prefix wrapping 10.0.0.5
    "http://[fec0::1]/",  # site-local (deprecated, still routed inside sites)
    "http://[fec0:0:0:1::5]/",
    "http://[feff:ffff::1]/",  # top of fec0::/10
    "http://192.0.0.1/",  # IETF protocol assignments 192.0.0.0/24 ...
    "http://192.0.0.9/",  # ... including the two Python counts as global
    "http://192.0.0.10/",
    "http://192.0.0.255/",
]


@pytest.mark.parametrize("url", TUNNELLED_AND_ODD)
def test_tunnelled_and_site_local_literals_refused(url: str) -> None:
    resolver = fake_resolver("93.184.216.34")
    assert "not allowed" in _refused(url, resolver=resolver)
    assert resolver.calls == 0


@pytest.mark.parametrize(
    "answer", ["2002:a00:5::1", "fec0::1", "192.0.0.9", "2001:0:4136:e378:8000:63bf:3fff:fdd2"]
)
def test_names_resolving_to_tunnelled_or_site_local_refused(answer: str) -> None:
    assert "resolves to" in _refused("https://hook.example.net/", resolver=fake_resolver(answer))


@pytest.mark.parametrize(
    "url",
    [
        "http://[2002:5db8:d822::1]/",  # 6to4 wrapping 93.184.216.34, a public address
        "http://[2606:2800:220:1:248:1893:25c8:1946]/",  # plain global IPv6
        "http://192.0.1.1/",  # just above 192.0.0.0/24
    ],
)
def test_public_ipv6_and_neighbours_still_allowed(url: str) -> None:
    check_webhook_target(url, allow_private=False, resolver=PUBLIC)


def test_transport_refuses_a_6to4_wrapped_loopback_at_connect_time() -> None:
    inner = RecordingBackend()
    transport = public_only_transport(resolver=fake_resolver("2002:7f00:1::1"), inner=inner)
    with httpx.Client(transport=transport, trust_env=False) as client, pytest.raises(
        httpx.ConnectError, match="not a public address"
    ):
        client.post("http://rebind.example.net/", content=b"{}")
    assert inner.hosts == []


@pytest.mark.parametrize("answers", [("10.1.2.3",), ("169.254.169.254",), ("::1",)])
def test_names_resolving_to_private_addresses_refused(answers: tuple[str, ...]) -> None:
    msg = _refused("https://rebind.example.net/hook", resolver=fake_resolver(*answers))
    assert "resolves to" in msg


def test_every_resolved_address_is_checked() -> None:
    """DNS rebinding trick: one public and one private answer is refused."""
    resolver = fake_resolver("93.184.216.34", "127.0.0.1")
    assert "127.0.0.1" in _refused("https://rebind.example.net/", resolver=resolver)


def test_check_again_sees_a_changed_answer() -> None:
    """The notifier re-checks before sending: a name that now points inside is refused."""
    answers = ["93.184.216.34"]

    def flipping(host: str, port: int, *_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[0], port))]

    check_webhook_target("https://hook.example.net/", allow_private=False, resolver=flipping)
    answers[0] = "10.0.0.7"
    assert "10.0.0.7" in _refused("https://hook.example.net/", resolver=flipping)


def test_unresolvable_name_refused() -> None:
    def failing(*_: Any) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    assert "does not resolve" in _refused("https://nope.invalid/", resolver=failing)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "http://localhost/", "http://10.0.0.5/", "http://internal/"]
)
def test_allowed_with_allow_private_without_resolving(url: str) -> None:
    resolver = fake_resolver("10.0.0.1")
    check_webhook_target(url, allow_private=True, resolver=resolver)
    assert resolver.calls == 0


def test_scheme_still_checked_with_allow_private() -> None:
    with pytest.raises(ValidationError):
        check_webhook_target("file:///etc/passwd", allow_private=True, resolver=None)


# --- the transport: connect only to checked addresses --------------------------------


class RecordingBackend(httpcore.MockBackend):
    """A mock network answering 200 OK, remembering which host it was asked to connect to."""

    def __init__(self) -> None:
        super().__init__([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"ok"])
        self.hosts: list[str] = []

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        self.hosts.append(host)
        return super().connect_tcp(host, port, *args, **kwargs)


def test_transport_connects_to_the_checked_address_not_the_name() -> None:
    inner = RecordingBackend()
    transport = public_only_transport(resolver=fake_resolver("93.184.216.34"), inner=inner)
    with httpx.Client(transport=transport, trust_env=False) as client:
        assert client.post("http://hook.example.net/x", content=b"{}").status_code == 200
    assert inner.hosts == ["93.184.216.34"]


@pytest.mark.parametrize(
    "url,answers",
    [
        ("http://rebind.example.net/", ("127.0.0.1",)),
        ("http://rebind.example.net/", ("93.184.216.34", "10.0.0.1")),
        ("http://169.254.169.254/latest", ()),
        ("http://[::1]:4000/", ()),
    ],
)
def test_transport_refuses_private_addresses_at_connect_time(
    url: str, answers: tuple[str, ...]
) -> None:
    inner = RecordingBackend()
    transport = public_only_transport(resolver=fake_resolver(*answers), inner=inner)
    with httpx.Client(transport=transport, trust_env=False) as client, pytest.raises(
        httpx.ConnectError, match="not a public address"
    ):
        client.post(url, content=b"{}")
    assert inner.hosts == []  # never connected


def test_read_bounded_stops_at_the_limit() -> None:
    served: list[int] = []

    def endless() -> Iterator[bytes]:
        while True:
            served.append(1)
            yield b"x" * 64

    big = httpx.MockTransport(lambda _: httpx.Response(500, content=endless()))
    with httpx.Client(transport=big) as client, client.stream("POST", "http://h/") as response:
        assert read_bounded(response, 100) == b"x" * 100
    assert len(served) == 2  # stopped reading at the bound


# --- wired in: channel creation (catalog, REST API, dashboard form) -------------------


def _loopback_name() -> str:
    """A host name other than "localhost" that really resolves to loopback here (or skip)."""
    import ipaddress

    name = socket.gethostname()
    try:
        infos = socket.getaddrinfo(name, 80, 0, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("the machine's name does not resolve")
    if not all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos):
        pytest.skip("the machine's name does not resolve to loopback")
    return name


PRIVATE_TARGETS = [
    "http://10.0.0.1/hook",
    "http://127.0.0.1:9000/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:9000/hook",
]


def test_send_time_check_refuses_a_name_resolving_to_loopback() -> None:
    """Proves: before a send the rule resolves the name for real (hosts file) and refuses
    a loopback answer; a save does not resolve (``test_saving_a_channel_does_no_dns``)."""
    url = _target("http://{loopback_name}:9000/hook")
    with pytest.raises(ValidationError, match="Invalid webhook target") as err:
        check_webhook_target(url, allow_private=False, resolver=socket.getaddrinfo)
    assert "not public" in err.value.details["target"][0]


def _target(template: str) -> str:
    if "{loopback_name}" in template:
        return template.format(loopback_name=_loopback_name())
    return template


@pytest.mark.parametrize("template", PRIVATE_TARGETS)
def test_catalog_refuses_private_channel_targets(engine: Any, template: str) -> None:
    """Proves: create and update go through check_webhook_target (one rule) and keep
    the catalog's error shape: ValidationError "Invalid channel" naming ``target``."""
    from tests.security.conftest import NOW
    from workbench.catalog import channels
    from workbench.catalog.db import session_scope
    from workbench.catalog.schemas import ChannelCreate, ChannelUpdate

    target = _target(template)
    with session_scope(engine) as session:
        with pytest.raises(ValidationError) as err:
            channels.create_channel(
                session=session, data=ChannelCreate(target=target), now=NOW, allow_private=False
            )
        assert err.value.message == "Invalid channel"
        assert list(err.value.details) == ["target"]
        assert "not allowed" in err.value.details["target"][0]
        ok = channels.create_channel(
            session=session, data=ChannelCreate(target="https://93.184.216.34/hook"), now=NOW,
            allow_private=False,
        )
        with pytest.raises(ValidationError, match="Invalid channel"):
            channels.update_channel(
                session=session, channel_id=ok.id, data=ChannelUpdate(target=target),
                allow_private=False,
            )
        # Allowed (local development, tests): stored as given.
        assert channels.create_channel(
            session=session, data=ChannelCreate(target=target), now=NOW, allow_private=True
        ).target == target


@pytest.mark.parametrize("template", PRIVATE_TARGETS)
def test_api_answers_400_naming_target(data_dir: Any, template: str) -> None:
    """Proves: POST /api/alerts/channels with private webhooks disallowed answers
    400 {"error", "details": {"target": [reason]}} and stores nothing."""
    from fastapi.testclient import TestClient

    from tests.api.test_alerts_api import _app
    from workbench.catalog.db import dispose_engine, get_engine, init_db
    from workbench.config import Settings

    settings = Settings(WORKBENCH_DATA_DIR=data_dir, WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=False)  # type: ignore[call-arg]
    init_db(get_engine(settings.database_url))
    try:
        with TestClient(_app(settings)) as client:
            res = client.post(
                "/api/alerts/channels", json={"type": "webhook", "target": _target(template)}
            )
            assert res.status_code == 400
            assert res.json()["error"] == "Invalid channel"
            assert "not allowed" in res.json()["details"]["target"][0]
            assert client.get("/api/alerts/channels").json() == []
    finally:
        dispose_engine(settings.database_url)


def test_dashboard_form_shows_the_refusal_inline(data_dir: Any) -> None:
    """Proves: the dashboard's add-webhook form shows the same reason next to the URL field."""
    from datetime import UTC, datetime

    from workbench.catalog.db import dispose_engine
    from workbench.config import Settings
    from workbench.dashboard.channels import build_channels

    settings = Settings(WORKBENCH_DATA_DIR=data_dir, WORKBENCH_ALLOW_PRIVATE_WEBHOOKS=False)  # type: ignore[call-arg]
    try:
        page = build_channels(settings, clock=lambda: datetime(2026, 11, 27, tzinfo=UTC))
        page.refresh()
        page.form.target.value = "http://169.254.169.254/latest/meta-data/"
        page.form.add_button.click()
        assert "not public" in page.form.errors["target"].value
        assert "Not added" in page.form.result.value
    finally:
        dispose_engine(settings.database_url)


def test_transport_refuses_a_real_loopback_server() -> None:
    """Proves: the public-only transport with the real resolver never connects to a
    live server on 127.0.0.1, by address or by a name that resolves there."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server API
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    port = server.server_address[1]
    try:
        with httpx.Client(transport=httpx.HTTPTransport()) as plain:
            assert plain.post(f"http://127.0.0.1:{port}/x").status_code == 200  # it is up
        urls = [f"http://127.0.0.1:{port}/x", f"http://localhost:{port}/x"]
        with httpx.Client(transport=public_only_transport(), trust_env=False) as client:
            for url in urls:
                with pytest.raises(httpx.ConnectError, match="not a public address"):
                    client.post(url)
        assert hits == ["/x"]
    finally:
        server.shutdown()
        server.server_close()


def test_read_bounded_stops_at_the_time_bound() -> None:
    """Proves: ``max_seconds`` ends a read that stays under the byte bound but never ends."""
    import time

    def slow() -> Iterator[bytes]:
        while True:
            time.sleep(0.05)
            yield b"y"

    big = httpx.MockTransport(lambda _: httpx.Response(200, content=slow()))
    started = time.monotonic()
    with httpx.Client(transport=big) as client, client.stream("POST", "http://h/") as response:
        got = read_bounded(response, 1_000_000, max_seconds=0.3)
    assert 0 < len(got) < 20 and time.monotonic() - started < 2


# --- one rule: syntax and literal addresses at save, DNS only at send -----------------


def _no_dns(*_: Any, **__: Any) -> Any:
    raise AssertionError("socket.getaddrinfo called while saving a channel")


def test_saving_a_channel_does_no_dns(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Proves: create and update with private targets refused do not resolve the host
    (a name that does not resolve is stored); literal private addresses are still refused."""
    from tests.security.conftest import NOW
    from workbench.catalog import channels
    from workbench.catalog.db import session_scope
    from workbench.catalog.schemas import ChannelCreate, ChannelUpdate

    monkeypatch.setattr(socket, "getaddrinfo", _no_dns)
    with session_scope(engine) as session:
        saved = channels.create_channel(
            session=session, data=ChannelCreate(target="http://no-such-host.invalid/hook"),
            now=NOW, allow_private=False,
        )
        assert saved.target == "http://no-such-host.invalid/hook"
        channels.update_channel(
            session=session, channel_id=saved.id,
            data=ChannelUpdate(target="https://hooks.example.com/x"), allow_private=False,
        )
        with pytest.raises(ValidationError, match="Invalid channel") as err:
            channels.create_channel(
                session=session, data=ChannelCreate(target="http://10.0.0.1/hook"), now=NOW,
                allow_private=False,
            )
        assert "not public" in err.value.details["target"][0]


def test_send_time_check_resolves_the_name() -> None:
    """Proves: at send the same rule also resolves the name and refuses a private answer."""
    assert "resolves to 10.0.0.7" in _refused(
        "http://no-such-host.invalid/hook", resolver=fake_resolver("10.0.0.7")
    )
