"""API keys: create (the secret shown once), list, revoke, and authenticate a presented token.

A token is ``wb_`` + 43 URL-safe characters (256 random bits). The catalog keeps
its SHA-256 digest (see :class:`~workbench.catalog.models.ApiKey` for why a fast
hash is right for random tokens) and a short ``prefix`` to recognise it in lists.

Catalog functions take a keyword-only ``session`` like the rest of
``workbench.catalog``. :class:`KeyCache` sits in front of them on the HTTP hot
path: answers are remembered for ``ttl_s`` seconds (so a revocation takes effect
within that time) and, when the catalog is unreachable, a recent answer is used a
while longer, so ingestion does not stop because the catalog database restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from workbench.catalog._common import require_aware
from workbench.catalog.models import API_KEY_SCOPES, ApiKey
from workbench.clock import now as clock_now
from workbench.errors import NotFound, StorageError, ValidationError

log = logging.getLogger(__name__)

TOKEN_PREFIX = "wb_"
MAX_TOKEN_CHARS = 128  # ours are 46; the margin is for formats to come
PREFIX_CHARS = len(TOKEN_PREFIX) + 8  # "wb_" + 8 characters (48 bits): unique in practice
# last_used_at is a hint for "is this key still in use?", not an audit log: writing
# it at most once a minute keeps the catalog out of the ingest hot path.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token carries: the key's id, name, shown prefix and scopes."""

    key_id: uuid.UUID
    name: str
    prefix: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        """Return True if this key may act in ``scope`` (``admin`` also reads)."""
        # Whoever manages rules and incidents has to see them: admin implies read.
        return scope in self.scopes or (scope == "read" and "admin" in self.scopes)

    @classmethod
    def of(cls, key: ApiKey) -> Grant:
        """Return the grant of a stored key."""
        return cls(key.id, key.name, key.prefix, frozenset(key.scopes))


def hash_token(token: str) -> str:
    """Return the hex SHA-256 of ``token``: what the catalog stores and looks up."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def plausible_token(token: str) -> bool:
    """Return True if ``token`` could be one of ours (``wb_`` prefix, at most 128 characters).

    Anything else is refused without a database lookup and never cached.
    """
    return len(token) <= MAX_TOKEN_CHARS and token.startswith(TOKEN_PREFIX)


def new_token() -> str:
    """Return a fresh random token (``wb_`` + 256 bits, URL-safe)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def normalize_scopes(scopes: Iterable[str]) -> list[str]:
    """Return the scopes lower-cased, deduplicated, in canonical order; ValidationError if unknown."""
    wanted = {s.strip().lower() for s in scopes if s.strip()}
    unknown = sorted(wanted - set(API_KEY_SCOPES))
    if unknown:
        raise ValidationError(
            "Invalid API key",
            {"scopes": [f"unknown scope {u!r}; use {', '.join(API_KEY_SCOPES)}" for u in unknown]},
        )
    if not wanted:
        raise ValidationError(
            "Invalid API key", {"scopes": [f"at least one of {', '.join(API_KEY_SCOPES)}"]}
        )
    return [s for s in API_KEY_SCOPES if s in wanted]


def create_key(
    *, session: Session, name: str, scopes: Iterable[str], now: datetime
) -> tuple[ApiKey, str]:
    """Return a new stored key and its plaintext token (shown once; only its hash is kept)."""
    now = require_aware(now)
    name = name.strip()
    if not name or len(name) > 200:
        raise ValidationError("Invalid API key", {"name": ["1 to 200 characters"]})
    token = new_token()
    key = ApiKey(
        name=name,
        prefix=token[:PREFIX_CHARS],
        hash=hash_token(token),
        scopes=normalize_scopes(scopes),
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key, token


def list_keys(*, session: Session, include_revoked: bool = True) -> Sequence[ApiKey]:
    """Return the keys, oldest first (revoked ones too unless ``include_revoked`` is False)."""
    stmt = select(ApiKey)
    if not include_revoked:
        stmt = stmt.where(col(ApiKey.revoked_at).is_(None))
    return session.exec(stmt.order_by(col(ApiKey.created_at), col(ApiKey.id))).all()


def find_key(*, session: Session, ident: str) -> ApiKey:
    """Return the key whose id or shown prefix is ``ident``; NotFound, or ValidationError if ambiguous."""
    ident = ident.strip()
    try:
        key = session.get(ApiKey, uuid.UUID(ident))
    except ValueError:
        key = None
    if key is not None:
        return key
    matches = session.exec(select(ApiKey).where(col(ApiKey.prefix) == ident)).all()
    if len(matches) > 1:
        raise ValidationError(
            "Ambiguous API key", {"key": [f"{len(matches)} keys have prefix {ident!r}; use the id"]}
        )
    if not matches:
        raise NotFound("API key", ident)
    return matches[0]


def revoke_key(*, session: Session, ident: str, now: datetime) -> ApiKey:
    """Return the key ``ident`` (id or prefix) after revoking it; revoking twice keeps the first time."""
    now = require_aware(now)
    key = find_key(session=session, ident=ident)
    if key.revoked_at is None:
        key.revoked_at = now
        session.add(key)
        session.flush()
    return key


def authenticate(
    *, session: Session, token: str, now: datetime, touch: bool = True
) -> ApiKey | None:
    """Return the unrevoked key whose secret is ``token``, or None; notes when it was last used."""
    now = require_aware(now)
    if not plausible_token(token):
        return None  # not ours: no need to ask the database
    digest = hash_token(token)
    key = session.exec(select(ApiKey).where(col(ApiKey.hash) == digest)).first()
    # The lookup is by digest; compare again in constant time so the answer's timing
    # does not depend on how much of a stored digest a guess matched.
    if key is None or not hmac.compare_digest(key.hash, digest) or key.revoked_at is not None:
        return None
    if touch and _stale_last_used(key, now):
        key.last_used_at = now
        session.add(key)
        session.flush()
    return key


def _stale_last_used(key: ApiKey, now: datetime) -> bool:
    return key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION


def keys_configured(*, session: Session) -> bool:
    """Return True once any key was created (revoked ones count: revoking the last key keeps the API closed)."""
    if not sa.inspect(session.connection()).has_table(ApiKey.__tablename__):
        return False  # a catalog not migrated yet holds no keys
    return session.exec(select(ApiKey.id).limit(1)).first() is not None


def active_keys_exist(*, session: Session) -> bool:
    """Return True if at least one unrevoked key exists."""
    if not sa.inspect(session.connection()).has_table(ApiKey.__tablename__):
        return False
    stmt = select(ApiKey.id).where(col(ApiKey.revoked_at).is_(None)).limit(1)
    return session.exec(stmt).first() is not None


@dataclass(slots=True)
class _Entry:
    value: Grant | None | bool
    fetched: float


class KeyCache:
    """Answers "which grant does this token carry?" and "are keys in use?" from a short cache.

    ``ttl_s`` bounds how long a revoked key or a newly created first key goes
    unnoticed. Answers are kept under the token's SHA-256, never the token (a
    huge bogus token must not stay in memory), and only for tokens that could be
    ours (:func:`plausible_token`), at most ``max_entries`` of them. When the
    catalog fails, an answer up to ``stale_s`` old is reused
    (ingest keeps working through a catalog restart); older than that, or never
    seen, the failure is raised as ``StorageError``. Thread-safe.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_s: float = 2.0,
        stale_s: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._stale_s = stale_s
        self._max_entries = max_entries
        self._clock = clock
        self._wall_clock = wall_clock or clock_now
        self._grants: dict[str, _Entry] = {}
        self._configured: _Entry | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Return how many token answers are cached."""
        return len(self._grants)

    def cached_grant(self, token: str) -> tuple[bool, Grant | None]:
        """Return ``(True, grant-or-None)`` if the answer for ``token`` is fresh, else ``(False, None)``."""
        if not plausible_token(token):
            return True, None  # never ours: a known answer, nothing to look up or keep
        entry = self._grants.get(hash_token(token))
        if entry is not None and self._clock() - entry.fetched < self._ttl_s:
            return True, entry.value if isinstance(entry.value, Grant) else None
        return False, None

    def grant(self, token: str) -> Grant | None:
        """Return the grant of ``token`` (None if unknown or revoked), from the cache or the catalog."""
        hit, grant = self.cached_grant(token)
        if hit:
            return grant
        now = self._wall_clock()
        try:
            with Session(self._engine, expire_on_commit=False) as session:
                key = authenticate(session=session, token=token, now=now, touch=False)
                fresh = Grant.of(key) if key is not None else None
                touch = key is not None and _stale_last_used(key, now)
        except sa.exc.SQLAlchemyError as exc:
            return self._stale_grant(token, exc)
        if fresh is not None and touch:
            self._touch(fresh.key_id, now)
        with self._lock:
            if len(self._grants) >= self._max_entries:
                # Many distinct tokens (someone guessing): forget them all rather than grow.
                self._grants.clear()
            self._grants[hash_token(token)] = _Entry(fresh, self._clock())
        return fresh

    def cached_keys_configured(self) -> bool | None:
        """Return whether keys are in use if known freshly, else None."""
        entry = self._configured
        if entry is not None and self._clock() - entry.fetched < self._ttl_s:
            return bool(entry.value)
        return None

    def keys_configured(self) -> bool:
        """Return whether any API key exists, from the cache or the catalog."""
        cached = self.cached_keys_configured()
        if cached is not None:
            return cached
        if _sqlite_file_missing(self._engine):
            value = False  # no catalog yet, so no keys (and do not create the file here)
        else:
            try:
                with Session(self._engine) as session:
                    value = keys_configured(session=session)
            except sa.exc.SQLAlchemyError as exc:
                entry = self._configured
                if entry is not None and self._clock() - entry.fetched < self._stale_s:
                    return bool(entry.value)
                # The driver's text (host, port, role) stays in the cause, for the log.
                raise StorageError("catalog unavailable for API key checks") from exc
        self._configured = _Entry(value, self._clock())
        return value

    def clear(self) -> None:
        """Forget every cached answer (tests, and after this process changes keys)."""
        with self._lock:
            self._grants.clear()
            self._configured = None

    def _touch(self, key_id: uuid.UUID, now: datetime) -> None:
        # Best effort: a busy or restarting catalog must not turn a valid key away.
        try:
            with Session(self._engine) as session:
                session.execute(
                    sa.update(ApiKey).where(col(ApiKey.id) == key_id).values(last_used_at=now)
                )
                session.commit()
        except sa.exc.SQLAlchemyError as exc:
            log.warning("could not note last use of API key %s: %s", key_id, exc)

    def _stale_grant(self, token: str, exc: Exception) -> Grant | None:
        entry = self._grants.get(hash_token(token))
        if entry is not None and self._clock() - entry.fetched < self._stale_s:
            return entry.value if isinstance(entry.value, Grant) else None
        raise StorageError("catalog unavailable for API key checks") from exc


def _sqlite_file_missing(engine: Engine) -> bool:
    if engine.dialect.name != "sqlite":
        return False
    path = engine.url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return False
    return not Path(path).exists()
