"""CLI commands of the security area: ``workbench keys create|list|revoke``."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from sqlalchemy.engine import Engine

from workbench import clock
from workbench.catalog.models import API_KEY_SCOPES
from workbench.config import get_settings


def _engine() -> Engine:
    from workbench.catalog.db import catalog_engine

    return catalog_engine(get_settings().database_url)


def _when(t: datetime | None) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ") if t else "-"


_NOW_KEYED = (
    "the API now requires keys: it was open (no key existed); from now on every request to "
    "/api/... and /v1/logs must send a key with the right scope (Authorization: Bearer KEY or "
    "X-API-Key: KEY), on loopback too, and running servers notice within seconds. The demo "
    "traffic of `workbench up --seed-demo` creates its own key (demo-traffic). Revoking keys "
    "does not reopen the API (docs/security.md)."
)
_STAYS_KEYED = (
    "no active API key is left: the API stays keyed and refuses every guarded request until "
    "a new key is created (revoking does not reopen it; docs/security.md)"
)


@click.group("keys")
def keys_group() -> None:
    """Create, list and revoke API keys (scopes: ingest, read, admin)."""


@keys_group.command("create")
@click.option("--name", required=True, help="Who or what uses the key, e.g. 'checkout-service'.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(API_KEY_SCOPES, case_sensitive=False),
    help="A scope to grant; repeat for several (admin also reads).",
)
def create_cmd(name: str, scopes: tuple[str, ...]) -> None:
    """Create an API key and print it once, as the last line (only its hash is stored)."""
    from workbench.catalog.db import session_scope
    from workbench.security.keys import create_key, keys_configured

    with session_scope(_engine()) as session:
        was_open = not keys_configured(session=session)
        key, token = create_key(session=session, name=name, scopes=scopes, now=clock.now())
        key_id, prefix, granted = key.id, key.prefix, ", ".join(key.scopes)
    click.echo(f"created API key {prefix}… ({name}; scopes: {granted}; id {key_id})", err=True)
    if was_open:
        click.echo(_NOW_KEYED, err=True)
    click.echo("store it now: it is shown only once", err=True)
    click.echo(token)


@keys_group.command("list")
@click.option("--active", is_flag=True, help="Only keys that are not revoked.")
def list_cmd(active: bool) -> None:
    """List API keys: prefix, name, scopes, created, last used, revoked (never the secret)."""
    from workbench.catalog.db import session_scope
    from workbench.security.keys import keys_configured, list_keys

    with session_scope(_engine()) as session:
        keys = list_keys(session=session, include_revoked=not active)
        if not keys:
            if keys_configured(session=session):
                click.echo(f"no API keys active; {_STAYS_KEYED.split(': ', 1)[1]}")
            else:
                click.echo("no API keys (the API is open on loopback only)")
            return
        click.echo(
            f"{'PREFIX':<12} {'NAME':<24} {'SCOPES':<20} {'CREATED':<21} {'LAST USED':<21} "
            f"{'REVOKED':<21} ID"
        )
        for k in keys:
            click.echo(
                f"{k.prefix:<12} {k.name[:24]:<24} {','.join(k.scopes):<20} "
                f"{_when(k.created_at):<21} {_when(k.last_used_at):<21} "
                f"{_when(k.revoked_at):<21} {k.id}"
            )


@keys_group.command("revoke")
@click.argument("ident", metavar="ID_OR_PREFIX")
def revoke_cmd(ident: str) -> None:
    """Revoke an API key by id or shown prefix; servers refuse it within a few seconds."""
    from workbench.catalog.db import session_scope
    from workbench.security.keys import active_keys_exist, revoke_key

    with session_scope(_engine()) as session:
        key = revoke_key(session=session, ident=ident, now=clock.now())
        click.echo(f"revoked API key {key.prefix}… ({key.name}) at {_when(key.revoked_at)}")
        if not active_keys_exist(session=session):
            click.echo(_STAYS_KEYED)


COMMANDS: list[click.Command] = [keys_group]
