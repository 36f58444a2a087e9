"""API keys in the catalog: created hashed, listed, revoked, authenticated; the cache in front."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.security.conftest import NOW
from workbench import security
from workbench.catalog.db import session_scope
from workbench.catalog.models import API_KEY_SCOPES, ApiKey
from workbench.errors import ConfigError, NotFound, StorageError, ValidationError
from workbench.security import bind_check, is_loopback_host
from workbench.security.keys import (
    KeyCache,
    authenticate,
    create_key,
    keys_configured,
    list_keys,
    revoke_key,
)


def test_create_stores_only_the_hash_and_returns_the_token_once(engine: Engine) -> None:
    with session_scope(engine) as s:
        key, token = create_key(session=s, name="svc", scopes=["READ", "ingest"], now=NOW)
    assert token.startswith("wb_") and len(token) >= 40
    assert key.prefix == token[: len(key.prefix)]
    assert key.scopes == ["ingest", "read"]  # normalised, canonical order
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM api_keys")).mappings().one()
    assert token not in " ".join(str(v) for v in row.values())
    assert row["hash"] == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize(
    "name,scopes,field", [("svc", [], "scopes"), ("svc", ["root"], "scopes"), (" ", ["read"], "name")]
)
def test_create_refuses_bad_input(
    engine: Engine, name: str, scopes: list[str], field: str
) -> None:
    with pytest.raises(ValidationError) as err, session_scope(engine) as s:
        create_key(session=s, name=name, scopes=scopes, now=NOW)
    assert field in err.value.details


def test_authenticate_accepts_the_token_and_notes_last_use(engine: Engine) -> None:
    with session_scope(engine) as s:
        key, token = create_key(session=s, name="svc", scopes=["read"], now=NOW)
    with session_scope(engine) as s:
        found = authenticate(session=s, token=token, now=NOW + timedelta(minutes=5))
        assert found is not None and found.id == key.id
        assert found.last_used_at == NOW + timedelta(minutes=5)
    with session_scope(engine) as s:
        assert authenticate(session=s, token=token + "x", now=NOW) is None
        assert authenticate(session=s, token="not-ours", now=NOW) is None


def test_revoke_by_prefix_or_id_and_revoked_keys_are_refused(engine: Engine) -> None:
    with session_scope(engine) as s:
        a, token_a = create_key(session=s, name="a", scopes=["read"], now=NOW)
        b, token_b = create_key(session=s, name="b", scopes=["read"], now=NOW)
    with session_scope(engine) as s:
        revoke_key(session=s, ident=a.prefix, now=NOW)
        revoke_key(session=s, ident=str(b.id), now=NOW)
        again = revoke_key(session=s, ident=str(b.id), now=NOW + timedelta(hours=1))
        assert again.revoked_at == NOW  # the first revocation time is kept
    with session_scope(engine) as s:
        assert authenticate(session=s, token=token_a, now=NOW) is None
        assert authenticate(session=s, token=token_b, now=NOW) is None
        assert sorted(k.name for k in list_keys(session=s)) == ["a", "b"]
        assert list_keys(session=s, include_revoked=False) == []
        # Revoked keys still count: revoking the last key must not reopen the API.
        assert keys_configured(session=s)


def test_revoke_unknown_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound), session_scope(engine) as s:
        revoke_key(session=s, ident="wb_nothere", now=NOW)


def test_keys_configured_on_empty_and_unmigrated_catalogs(engine: Engine) -> None:
    with session_scope(engine) as s:
        assert not keys_configured(session=s)
    bare = sa.create_engine("sqlite://")
    from sqlmodel import Session

    with Session(bare) as s:
        assert not keys_configured(session=s)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_cache_answers_without_the_catalog_until_the_ttl(engine: Engine) -> None:
    with session_scope(engine) as s:
        key, token = create_key(session=s, name="svc", scopes=["ingest"], now=NOW)
    clock = FakeClock()
    cache = KeyCache(engine, ttl_s=2.0, clock=clock)
    grant = cache.grant(token)
    assert grant is not None and grant.key_id == key.id and grant.allows("ingest")
    with session_scope(engine) as s:
        revoke_key(session=s, ident=key.prefix, now=NOW)
    assert cache.cached_grant(token) == (True, grant)  # within the TTL: still cached
    clock.t += 2.5
    assert cache.cached_grant(token) == (False, None)
    assert cache.grant(token) is None  # revocation seen after the TTL


def test_cache_reuses_a_recent_answer_when_the_catalog_fails(engine: Engine) -> None:
    with session_scope(engine) as s:
        _, token = create_key(session=s, name="svc", scopes=["ingest"], now=NOW)
    clock = FakeClock()
    cache = KeyCache(engine, ttl_s=2.0, stale_s=60.0, clock=clock)
    assert cache.grant(token) is not None and cache.keys_configured()
    with engine.begin() as conn:  # the catalog "fails": the table is gone
        conn.execute(sa.text("ALTER TABLE api_keys RENAME TO api_keys_away"))
        conn.execute(sa.text("CREATE VIEW api_keys AS SELECT 1/0 AS broken"))
    clock.t += 10
    assert cache.grant(token) is not None  # stale but recent: ingest keeps working
    clock.t += 100
    with pytest.raises(StorageError):
        cache.grant(token)
    with pytest.raises(StorageError):
        cache.grant("wb_never-seen")


def test_admin_implies_read_but_not_ingest(make_key: object) -> None:
    from workbench.security.keys import Grant

    g = Grant(uuid.uuid4(), "n", "wb_x", frozenset({"admin"}))
    assert g.allows("admin") and g.allows("read") and not g.allows("ingest")


def test_scope_tuples_agree() -> None:
    assert security.SCOPES == API_KEY_SCOPES


@pytest.mark.parametrize(
    "host,loopback",
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True),
     ("localhost", True), ("0.0.0.0", False), ("::", False), ("", False), ("10.1.2.3", False)],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_bind_check_refuses_non_loopback_without_active_keys(
    settings: object, engine: Engine, make_key: object
) -> None:
    from workbench.config import Settings

    assert isinstance(settings, Settings)
    bind_check(settings, "127.0.0.1")  # loopback: fine without keys
    with pytest.raises(ConfigError, match="refusing to listen on '0.0.0.0' without API keys"):
        bind_check(settings, "0.0.0.0")
    with session_scope(engine) as s:
        key, _ = create_key(session=s, name="k", scopes=["read"], now=NOW)
    bind_check(settings, "0.0.0.0")
    with session_scope(engine) as s:
        revoke_key(session=s, ident=str(key.id), now=NOW)
    with pytest.raises(ConfigError):
        bind_check(settings, "0.0.0.0")


def test_model_table_name() -> None:
    assert ApiKey.__tablename__ == "api_keys"


@pytest.mark.postgres
def test_create_authenticate_revoke_on_postgres(postgres_url: str) -> None:
    from workbench.catalog.db import dispose_engine, get_engine, init_db

    pg = get_engine(postgres_url)
    try:
        init_db(pg)
        with session_scope(pg) as s:
            assert not keys_configured(session=s)
            key, token = create_key(session=s, name="pg", scopes=["admin"], now=NOW)
        cache = KeyCache(pg)
        grant = cache.grant(token)
        assert grant is not None and grant.allows("read") and cache.keys_configured()
        with session_scope(pg) as s:
            revoke_key(session=s, ident=key.prefix, now=NOW)
            assert authenticate(session=s, token=token, now=NOW) is None
    finally:
        dispose_engine(postgres_url)
