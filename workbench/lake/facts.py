"""Per-file facts kept on disk, so a new process does not read every lake file again.

A committed lake file never changes, so what a reader learns from it once stays true: its
footer facts with its page CRCs checked (``reader.read_stat``), its ``(service, level)`` row
counts (``reader.key_counts``) and its per-minute error counts (``query.trends``). The
in-memory caches keep them for a process's lifetime; this module also writes them under
``<lake>/_facts/date=YYYY-MM-DD/<file name>.<kind>-<key>`` so that a process started later
(a restart, a notebook kernel, the CLI) reads a few kilobytes per file instead of the file.

The key in the name ties a fact to one version of the file (size and modification time for
the footer facts, rows and time bounds for the counts): a file rewritten under the same
name gets new facts. Facts are written atomically (a hidden temporary name renamed into
place); a fact that cannot be read or written is simply computed again. Only local lakes
keep facts on disk; on object storage the in-memory caches alone apply. Facts go with their
files: compaction prunes the facts of the files a partition no longer holds
(:func:`prune`), retention removes a dropped day's facts (:func:`drop_day`), so the folder
stays a few kilobytes per live file.
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import polars as pl

from workbench.lake.schema import LOGS_TABLE

log = logging.getLogger(__name__)

FACTS_DIR = "_facts"


def fact_path(data_path: str, kind: str, key: str) -> Path | None:
    """Return where the ``kind`` fact of a local lake file is kept, or None (not a local lake file).

    ``data_path`` is ``<lake>/logs/date=…/<name>.parquet``.
    """
    if not os.path.isabs(data_path):
        return None  # object storage paths carry no leading slash
    path = Path(data_path)
    if len(path.parts) < 4 or path.parent.parent.name != LOGS_TABLE:
        return None
    root = path.parent.parent.parent
    return root / FACTS_DIR / path.parent.name / f"{path.name}.{kind}-{key}"


def read_json(data_path: str, kind: str, key: str) -> Any | None:
    """Return the JSON fact, or None when there is none (or it cannot be read)."""
    path = fact_path(data_path, kind, key)
    if path is None:
        return None
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.debug("fact %s unreadable, computed again: %s", path, exc)
        return None


def write_json(data_path: str, kind: str, key: str, value: Any) -> None:
    """Keep a JSON fact (best effort: a read-only lake just keeps none)."""
    path = fact_path(data_path, kind, key)
    if path is not None:
        _write(path, json.dumps(value, separators=(",", ":")).encode())


def read_frame(data_path: str, kind: str, key: str) -> pl.DataFrame | None:
    """Return the frame fact (Arrow IPC), or None when there is none (or it cannot be read)."""
    path = fact_path(data_path, kind, key)
    if path is None:
        return None
    try:
        return pl.read_ipc(io.BytesIO(path.read_bytes()))
    except FileNotFoundError:
        return None
    except Exception as exc:  # noqa: BLE001 - any damage: compute the fact again
        log.debug("fact %s unreadable, computed again: %s", path, exc)
        return None


def write_frame(data_path: str, kind: str, key: str, frame: pl.DataFrame) -> None:
    """Keep a frame fact as Arrow IPC (best effort)."""
    path = fact_path(data_path, kind, key)
    if path is None:
        return
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    _write(path, buffer.getvalue())


def _day_folder(partition_path: str) -> Path | None:
    """Return the facts folder of a local partition ``<lake>/logs/date=…``, or None."""
    if not os.path.isabs(partition_path):
        return None
    path = Path(partition_path)
    if path.parent.name != LOGS_TABLE:
        return None
    return path.parent.parent / FACTS_DIR / path.name


def prune(partition_path: str, live_names: set[str]) -> int:
    """Delete the facts of files no longer in the partition (``live_names``); return how many."""
    folder = _day_folder(partition_path)
    if folder is None:
        return 0
    removed = 0
    try:
        kept = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    for entry in kept:
        # "<file name>.<kind>-<key>": the file name is everything before the last dot-suffix.
        name = entry.name.rsplit(".", 1)[0]
        if entry.name.startswith(".tmp-") or name not in live_names:
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def drop_day(partition_path: str) -> None:
    """Delete every fact of a partition that retention dropped."""
    folder = _day_folder(partition_path)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically; log and give up on any OS error."""
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("fact %s not kept: %s", path, exc)
        tmp.unlink(missing_ok=True)
