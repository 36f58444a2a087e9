"""Hypothesis strategies shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(
    scalars: st.SearchStrategy[Any], *, max_size: int, key_size: int, max_leaves: int
) -> st.SearchStrategy[Any]:
    """Return JSON-like values: ``scalars``, and lists and objects of them, nested."""
    return st.recursive(
        scalars,
        lambda kids: (
            st.lists(kids, max_size=max_size)
            | st.dictionaries(st.text(max_size=key_size), kids, max_size=max_size)
        ),
        max_leaves=max_leaves,
    )
