"""The on-call dashboard: one ipywidgets page per Voilà notebook, testable without a browser.

Each page module exposes a ``build_*`` function returning a page object with
``.widget`` (what is displayed), ``.refresh()`` (reload from the catalog and the
lake) and ``.show()`` (display, load, start the timed refresh). The notebooks in
``notebooks/dashboard`` only call these.
"""

from __future__ import annotations

from workbench.dashboard.common import request_params

__all__ = ["request_params"]
