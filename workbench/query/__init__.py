"""Queries over the lake: search, error trends, window counts for alert rules."""
