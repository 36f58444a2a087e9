"""Retention: delete whole date partitions older than N days."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pyarrow.fs as pafs

from workbench.errors import ValidationError
from workbench.lake import facts, reader
from workbench.lake import fs as lakefs
from workbench.lake.schema import LOGS_TABLE

_DELETING = ".deleting-"


@dataclass(frozen=True, slots=True)
class RemovedPartition:
    """A partition retention removed (or would remove on a dry run): its day, folder, file count."""

    day: date
    path: str
    files: int


def expired_partitions(lake_url: str, *, days: int, now: datetime) -> list[RemovedPartition]:
    """Return the partitions whose whole day is older than ``days`` days before ``now`` (UTC)."""
    if days < 1:
        raise ValidationError("Invalid retention", {"days": ["must be 1 or more"]})
    # Keep today and the `days - 1` days before it: a partition goes once all its
    # events are older than the retention period.
    cutoff = (now - timedelta(days=days)).date()
    filesystem, _ = lakefs.resolve(lake_url)
    out = []
    for day, folder in reader.partitions(lake_url):
        if day < cutoff:
            files = len(lakefs.list_dir(filesystem, folder))
            out.append(RemovedPartition(day, folder, files))
    return out


def apply_retention(
    lake_url: str, *, days: int, now: datetime, dry_run: bool = False
) -> list[RemovedPartition]:
    """Delete every partition older than ``days`` days before ``now``; return what was removed.

    A partition is first renamed to a hidden ``.deleting-…`` folder (one atomic
    rename: readers see the whole day or none of it, never half), then deleted.
    Hidden leftovers of a run that crashed in between are deleted on the next run.
    With ``dry_run`` nothing is touched.
    """
    expired = expired_partitions(lake_url, days=days, now=now)
    if dry_run:
        return expired
    filesystem, root = lakefs.resolve(lake_url)
    base = f"{root}/{LOGS_TABLE}"
    if not lakefs.is_local(filesystem):
        for part in expired:
            _drop_by_marker(filesystem, part.path)
        return expired
    for part in expired:
        hidden = f"{base}/{_DELETING}{part.path.rsplit('/', 1)[-1]}-{uuid.uuid4().hex[:8]}"
        try:
            filesystem.move(part.path, hidden)
        except FileNotFoundError:  # another retention run got there first
            continue
        finally:
            facts.drop_day(part.path)
    for entry in lakefs.list_dir(filesystem, base):
        if entry.size == -1 and entry.base_name.startswith(_DELETING):
            filesystem.delete_dir(entry.path)
    return expired


def _drop_by_marker(filesystem: pafs.FileSystem, folder: str) -> None:
    """Drop a partition on object storage, where folders cannot be renamed.

    One PUT of the :data:`~workbench.lake.fs.DELETING_MARKER` object hides the whole
    day from the workbench's readers at once (``reader.partition_files``); then its
    files are deleted, the marker (with the folder) last. A run that crashes in between leaves a
    hidden day, which the next run (the day is still expired) finishes.
    """
    with filesystem.open_output_stream(f"{folder}/{lakefs.DELETING_MARKER}") as sink:
        sink.write(b"")
    selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
    for info in filesystem.get_file_info(selector):
        if info.type == pafs.FileType.File and info.base_name != lakefs.DELETING_MARKER:
            filesystem.delete_file(info.path)
    filesystem.delete_dir(folder)  # the marker and the folder's own (empty) object
    facts.drop_day(folder)
