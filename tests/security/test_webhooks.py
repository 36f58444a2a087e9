"""Webhook targets: scheme and host required; private, loopback, link-local refused unless allowed."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpcore
import httpx
import pytest

from workbench.errors import ValidationError
from workbench.security.webhooks import (
    check_webhook_target,
    public_only_transport,
    read_bounded,
)


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
    assert "scheme" in _refused(url)


@pytest.mark.parametrize("url", ["http://", "https:///path", "http://:80/"])
def test_host_required(url: str) -> None:
    assert "no host" in _refused(url)


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
        check_webhook_target("file:///etc/passwd", allow_private=True)


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
