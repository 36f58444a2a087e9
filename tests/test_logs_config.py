"""The server's own log: what a person reads when something happened (``workbench.logs_config``)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.live_server import LiveServer


def _log_once_mentions(server: LiveServer, word: str, timeout: float = 15.0) -> str:
    """Return the server's log once it mentions ``word`` (or at the deadline)."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = server.log_path.read_text(errors="replace")
        if word in text.lower():
            break
        time.sleep(0.05)
    return text


@pytest.mark.slow
def test_a_client_that_disconnects_mid_body_is_one_info_line(data_dir: Path) -> None:
    server = LiveServer(data_dir).start()
    try:
        before = server.log_path.read_text(errors="replace")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall(
                b"POST /api/logs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                b'{"service":"a","level":"info","message":"' + b"x" * 50
            )
        text = _log_once_mentions(server, "disconnect")
        assert server.health()["status"] in ("ok", "degraded")
    finally:
        server.stop()
    new = text[len(before) :].strip().splitlines()
    assert len(new) == 1, text
    assert new[0].startswith("INFO"), new
    assert "disconnected" in new[0]
    assert "Traceback" not in text
