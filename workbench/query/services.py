"""Service names present in the lake."""

from __future__ import annotations

from workbench.lake import reader


def services(lake_url: str) -> list[str]:
    """Return the distinct service names of every visible event, sorted.

    Built from per-file ``(service, level)`` counts, computed once per immutable
    file and cached, so a repeat call only lists the lake.
    """
    names: set[str] = set()
    for stat in reader.file_stats(lake_url):
        names.update(svc for svc, _ in reader.key_counts(stat))
    return sorted(names)
