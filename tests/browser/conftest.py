"""Browser-test fixtures: Chromium and a fresh tab (one definition, in ``tests/browser_helpers.py``)."""

from tests.browser_helpers import browser, page

__all__ = ["browser", "page"]
