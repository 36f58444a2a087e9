"""Queries over the lake: search (its ``SearchQuery`` in ``types``, shared with the mirror), error trends, window counts for alert rules."""
