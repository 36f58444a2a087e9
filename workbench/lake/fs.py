"""Resolve a lake URL to a ``pyarrow.fs.FileSystem`` and a root path inside it."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs


def resolve(lake_url: str) -> tuple[pafs.FileSystem, str]:
    """Return ``(filesystem, root)`` for a local path or a URL such as ``s3://bucket/lake``.

    Local paths are made absolute and created if missing.
    """
    if "://" in lake_url and not lake_url.startswith("file://"):
        fs, root = pafs.FileSystem.from_uri(lake_url)
        return fs, root.rstrip("/")
    path = Path(lake_url.removeprefix("file://")).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    return pafs.LocalFileSystem(), str(path)
