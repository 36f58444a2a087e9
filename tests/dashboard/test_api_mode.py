"""The dashboard header says whether the API is open (no key yet) or keyed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from workbench.catalog.db import get_engine, init_db, session_scope
from workbench.config import Settings
from workbench.dashboard.context import PageContext
from workbench.dashboard.nav import ApiMode
from workbench.dashboard.page import Page
from workbench.security.keys import create_key, revoke_key


def test_header_shows_open_then_keyed_and_keyed_after_revoking(
    empty: Settings, clock: Callable[[], datetime]
) -> None:
    mode = ApiMode(PageContext(empty, clock))
    mode.refresh()
    assert "API open" in mode.widget.value and "wb-mode-open" in mode.widget.value
    engine = get_engine(empty.database_url)
    init_db(engine)
    with session_scope(engine) as s:
        key, _ = create_key(session=s, name="svc", scopes=["ingest"], now=clock())
        key_id = str(key.id)
    mode.refresh()
    assert "API keyed" in mode.widget.value and "wb-mode-keyed" in mode.widget.value
    with session_scope(engine) as s:
        revoke_key(session=s, ident=key_id, now=clock())
    mode.refresh()
    assert "API keyed" in mode.widget.value  # revoking the last key does not reopen the API


def test_every_page_header_carries_the_mode(empty: Settings, clock: Callable[[], datetime]) -> None:
    page = Page(empty, clock)
    page.refresh()
    navbar = page.widget.children[1]
    assert page.api_mode.widget in navbar.children  # type: ignore[attr-defined]
    assert "API open" in page.api_mode.widget.value
