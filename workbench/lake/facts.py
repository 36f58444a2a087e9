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
place on a local disk, one PUT on object storage); a fact that cannot be read or written is
simply computed again. On object storage (``s3://…``) facts are objects under the same
``<lake>/_facts/`` prefix of the lake's bucket, so a new process there reads a few small
objects per file too. Facts go with their files: compaction prunes the facts of the files a
partition no longer holds (:func:`prune`), retention removes a dropped day's facts
(:func:`drop_day`), so the folder stays a few kilobytes per live file.
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
import pyarrow.fs as pafs

from workbench.lake import fs as lakefs
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


def _object_fact(data_path: str, kind: str, key: str) -> tuple[pafs.FileSystem, str] | None:
    """Return ``(filesystem, path)`` of the fact of a file on object storage, or None."""
    filesystem = lakefs.remote_filesystem(data_path)
    parts = data_path.rsplit("/", 3)
    if filesystem is None or len(parts) != 4 or parts[1] != LOGS_TABLE:
        return None
    root, _, day, name = parts
    return filesystem, f"{root}/{FACTS_DIR}/{day}/{name}.{kind}-{key}"


def kept_for(data_path: str) -> bool:
    """Return whether facts are kept for ``data_path`` (a lake file, local or on object storage)."""
    return (
        fact_path(data_path, "x", "0") is not None or _object_fact(data_path, "x", "0") is not None
    )


def _read(data_path: str, kind: str, key: str) -> bytes | None:
    """Return the bytes of a kept fact; None when none is kept (or it cannot be read)."""
    path = fact_path(data_path, kind, key)
    where: object = path
    try:
        if path is not None:
            return path.read_bytes()
        remote = _object_fact(data_path, kind, key)
        if remote is None:
            return None
        where = remote[1]
        with remote[0].open_input_stream(remote[1]) as stream:
            return bytes(stream.read())
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.debug("fact %s unreadable, computed again: %s", where, exc)
        return None


def read_json(data_path: str, kind: str, key: str) -> Any | None:
    """Return the JSON fact, or None when there is none (or it cannot be read)."""
    data = _read(data_path, kind, key)
    if data is None:
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        log.debug("fact %s of %s unreadable, computed again: %s", kind, data_path, exc)
        return None


def write_json(data_path: str, kind: str, key: str, value: Any) -> None:
    """Keep a JSON fact (best effort: a read-only lake just keeps none)."""
    _keep(data_path, kind, key, json.dumps(value, separators=(",", ":")).encode())


def read_frame(data_path: str, kind: str, key: str) -> pl.DataFrame | None:
    """Return the frame fact (Arrow IPC), or None when there is none (or it cannot be read)."""
    data = _read(data_path, kind, key)
    if data is None:
        return None
    try:
        return pl.read_ipc(io.BytesIO(data))
    except Exception as exc:  # noqa: BLE001 - any damage: compute the fact again
        log.debug("fact %s of %s unreadable, computed again: %s", kind, data_path, exc)
        return None


def write_frame(data_path: str, kind: str, key: str, frame: pl.DataFrame) -> None:
    """Keep a frame fact as Arrow IPC (best effort)."""
    if not kept_for(data_path):
        return
    buffer = io.BytesIO()
    frame.write_ipc(buffer)
    _keep(data_path, kind, key, buffer.getvalue())


def _keep(data_path: str, kind: str, key: str, data: bytes) -> None:
    """Write a fact where ``data_path``'s facts are kept; log and give up on any error."""
    path = fact_path(data_path, kind, key)
    if path is not None:
        _write(path, data)
        return
    remote = _object_fact(data_path, kind, key)
    if remote is None:
        return
    try:
        with remote[0].open_output_stream(remote[1]) as sink:  # one PUT: whole or absent
            sink.write(data)
    except OSError as exc:
        log.debug("fact %s not kept: %s", remote[1], exc)


def _day_folder(partition_path: str) -> Path | None:
    """Return the facts folder of a local partition ``<lake>/logs/date=…``, or None."""
    if not os.path.isabs(partition_path):
        return None
    path = Path(partition_path)
    if path.parent.name != LOGS_TABLE:
        return None
    return path.parent.parent / FACTS_DIR / path.name


def _object_day(partition_path: str) -> tuple[pafs.FileSystem, str] | None:
    """Return ``(filesystem, facts prefix)`` of a partition on object storage, or None."""
    filesystem = lakefs.remote_filesystem(partition_path)
    parts = partition_path.rstrip("/").rsplit("/", 2)
    if filesystem is None or len(parts) != 3 or parts[1] != LOGS_TABLE:
        return None
    return filesystem, f"{parts[0]}/{FACTS_DIR}/{parts[2]}"


def prune(partition_path: str) -> int:
    """Delete the facts of files the partition no longer holds; return how many.

    The facts are listed first, the partition's files second: a fact is written only after
    its file was committed, so a file committed meanwhile (an ingest flush during hot
    compaction) is in the second listing and keeps its facts.
    """
    folder = _day_folder(partition_path)
    if folder is None:
        return _prune_objects(partition_path)
    removed = 0
    try:
        kept = list(os.scandir(folder))
    except FileNotFoundError:
        return 0
    try:
        live_names = set(os.listdir(partition_path))
    except FileNotFoundError:
        live_names = set()
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


def _prune_objects(partition_path: str) -> int:
    """:func:`prune` on object storage (the same order: facts listed first, files second)."""
    remote = _object_day(partition_path)
    if remote is None:
        return 0
    filesystem, prefix = remote
    kept = [e for e in lakefs.list_dir(filesystem, prefix) if e.size != -1]
    live_names = {e.base_name for e in lakefs.list_dir(filesystem, partition_path)}
    removed = 0
    for entry in kept:
        if entry.base_name.rsplit(".", 1)[0] not in live_names:
            try:
                filesystem.delete_file(entry.path)
                removed += 1
            except OSError:
                pass
    return removed


def drop_day(partition_path: str) -> None:
    """Delete every fact of a partition that retention dropped."""
    folder = _day_folder(partition_path)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        return
    remote = _object_day(partition_path)
    if remote is not None:
        try:
            remote[0].delete_dir(remote[1])
        except OSError as exc:
            log.debug("facts %s not dropped: %s", remote[1], exc)


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
