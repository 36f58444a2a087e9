"""The on-call dashboard: one ipywidgets page per Voilà notebook, testable without a browser.

Each page module exposes a ``build_*`` function returning a page object with
``.widget`` (what is displayed), ``.refresh()`` (reload from the catalog and the
lake) and ``.show()`` (display, load, start the timed refresh). The notebooks in
``notebooks/dashboard`` only call these, after ``page.request_params`` has read the
query string.

The modules import one way: ``format`` (text and HTML) and ``errors`` (wording) at the
bottom, ``widgets``, ``style``, ``context`` and ``nav`` above them, ``page`` (the page
base) on top of ``nav``, and the page modules on top of ``page``.
"""
