"""The Chromium the browser tests drive: Debian's ``/usr/bin/chromium`` through Playwright.

Never ``playwright install``. Test modules take the fixtures by importing them
(``from tests.browser_helpers import browser``), so a module that needs no browser
never starts one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium through Playwright, one per test module."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser tab (its own context) of 1280×1000."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000})
    tab = ctx.new_page()
    try:
        yield tab
    finally:
        ctx.close()
