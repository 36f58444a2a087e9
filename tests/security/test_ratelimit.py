"""Per-key ingest rate limits: the token bucket, and 429 with Retry-After over HTTP."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from ingest_api.app import create_app
from tests.live_server import LiveServer
from tests.security.conftest import MakeKey
from workbench.config import Settings
from workbench.errors import RateLimited
from workbench.security.ratelimit import IngestRateLimiter

EVENT = {"service": "checkout", "level": "info", "message": "ok"}


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_bucket_admits_the_burst_then_refuses_with_the_wait() -> None:
    clock = FakeClock()
    limiter = IngestRateLimiter(rate=10, burst=3, clock=clock)
    for _ in range(3):
        limiter.admit("k")
        limiter.charge("k", 1)
    with pytest.raises(RateLimited) as err:
        limiter.admit("k")
    assert err.value.retry_after == 1


def test_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    clock = FakeClock()
    limiter = IngestRateLimiter(rate=10, burst=5, clock=clock)
    limiter.charge("k", 5)
    assert limiter.available("k") == 0
    clock.t += 0.2
    assert limiter.available("k") == pytest.approx(2)
    limiter.admit("k")
    clock.t += 100
    assert limiter.available("k") == 5  # never above the burst


def test_a_large_batch_is_charged_as_debt_and_delays_the_next() -> None:
    clock = FakeClock()
    limiter = IngestRateLimiter(rate=100, burst=100, clock=clock)
    limiter.admit("k")
    limiter.charge("k", 350)  # more than the burst: debt, capped at -burst
    assert limiter.available("k") == -100
    with pytest.raises(RateLimited) as err:
        limiter.admit("k")
    assert err.value.retry_after == 2  # (1 + 100) / 100 s, rounded up
    clock.t += 1.02
    limiter.admit("k")


def test_keys_have_separate_buckets() -> None:
    limiter = IngestRateLimiter(rate=1, burst=1, clock=FakeClock())
    limiter.charge("a", 1)
    with pytest.raises(RateLimited):
        limiter.admit("a")
    limiter.admit("b")
    limiter.admit(uuid.uuid4())


def test_http_429_with_retry_after_per_key(
    settings: Settings, engine: Engine, make_key: MakeKey
) -> None:
    tight = settings.model_copy(update={"ingest_rate_per_key": 0.5, "ingest_burst_per_key": 2})
    first, second = make_key("ingest", name="a"), make_key("ingest", name="b")
    with TestClient(create_app(tight)) as client:
        codes = [
            client.post("/api/logs", json=EVENT, headers={"X-API-Key": first}).status_code
            for _ in range(3)
        ]
        assert codes == [202, 202, 429]
        refused = client.post("/api/logs", json=EVENT, headers={"X-API-Key": first})
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "rate limit" in refused.json()["error"]
        # Another key has its own bucket.
        assert client.post("/api/logs", json=EVENT, headers={"X-API-Key": second}).status_code == 202


def test_http_bucket_refills(settings: Settings, engine: Engine, make_key: MakeKey) -> None:
    fast = settings.model_copy(update={"ingest_rate_per_key": 20.0, "ingest_burst_per_key": 1})
    token = make_key("ingest")
    clock = FakeClock()
    with TestClient(create_app(fast)) as client:
        limiter = client.app.state.ingest_limiter  # type: ignore[attr-defined]
        limiter.clock = clock  # the app's limiter, on a clock the test moves
        headers = {"X-API-Key": token}
        assert client.post("/api/logs", json=EVENT, headers=headers).status_code == 202
        assert client.post("/api/logs", json=EVENT, headers=headers).status_code == 429
        clock.t += 0.1  # 20 events/s: the burst of one is back after 50 ms
        key_id = client.app.state.key_cache.grant(token).key_id  # type: ignore[attr-defined]
        assert limiter.available(key_id) >= 1
        assert client.post("/api/logs", json=EVENT, headers=headers).status_code == 202


def test_reads_are_not_rate_limited_by_the_ingest_bucket(
    settings: Settings, engine: Engine, make_key: MakeKey
) -> None:
    tight = settings.model_copy(update={"ingest_rate_per_key": 0.1, "ingest_burst_per_key": 1})
    token = make_key("ingest", "read")
    with TestClient(create_app(tight)) as client:
        headers = {"X-API-Key": token}
        assert client.post("/api/logs", json=EVENT, headers=headers).status_code == 202
        assert client.post("/api/logs", json=EVENT, headers=headers).status_code == 429
        assert client.get("/api/logs", headers=headers).status_code == 200


def test_counts_events_when_the_route_reports_them(
    settings: Settings, engine: Engine, make_key: MakeKey
) -> None:
    """A batch is charged its events when the ingest route sets ``request.state.ingested_events``."""
    tight = settings.model_copy(update={"ingest_rate_per_key": 0.1, "ingest_burst_per_key": 10})
    token = make_key("ingest")
    with TestClient(create_app(tight)) as client:
        r = client.post("/api/logs", json=[EVENT] * 5, headers={"X-API-Key": token})
        assert r.status_code == 202
        limiter = client.app.state.ingest_limiter  # type: ignore[attr-defined]
        key_id = client.app.state.key_cache.grant(token).key_id  # type: ignore[attr-defined]
        left = limiter.available(key_id)
    assert left == pytest.approx(5, abs=0.1)


def test_limiters_on_one_file_share_each_keys_bucket(tmp_path: Path) -> None:
    # What two worker processes do: open the same bucket file.
    clock = FakeClock()
    one = IngestRateLimiter(rate=1, burst=5, clock=clock, path=tmp_path / "buckets")
    other = IngestRateLimiter(rate=1, burst=5, clock=clock, path=tmp_path / "buckets")
    key = uuid.uuid4()
    one.charge(key, 4)
    assert other.available(key) == 1
    other.charge(key, 1)
    with pytest.raises(RateLimited):
        one.admit(key)
    clock.t += 2
    assert one.available(key) == pytest.approx(2)
    assert other.available("another key") == 5
    one.close()
    other.close()


def test_a_full_bucket_file_refuses_new_keys_rather_than_sharing(tmp_path: Path) -> None:
    from workbench.security.ratelimit import SharedBuckets, TokenBucket

    shared = SharedBuckets(tmp_path / "buckets", slots=2)
    fresh = TokenBucket(1, 1, 1, 0.0)
    for key in (b"a" * 16, b"b" * 16):
        shared.update(key, fresh, lambda bucket: bucket.tokens)
    with pytest.raises(RateLimited, match="table is full"):
        shared.update(b"c" * 16, fresh, lambda bucket: bucket.tokens)
    shared.close()


@pytest.mark.slow
def test_workers_of_one_server_share_each_keys_bucket(
    settings: Settings, engine: Engine, make_key: MakeKey
) -> None:
    """``workbench serve --workers 2``: a key gets its burst once, not once per worker."""
    token = make_key("ingest")
    limits = {"WORKBENCH_INGEST_RATE_PER_KEY": "0.001", "WORKBENCH_INGEST_BURST_PER_KEY": "20"}
    server = LiveServer(settings.data_dir, workers=2, env=limits).start()
    try:
        # A new connection per request: the kernel spreads them over both workers.
        codes = [
            httpx.post(
                f"{server.url}/api/logs", json=EVENT, headers={"X-API-Key": token}, timeout=10
            ).status_code
            for _ in range(60)
        ]
    finally:
        server.stop()
    assert codes.count(202) == 20 and codes.count(429) == 40, codes
