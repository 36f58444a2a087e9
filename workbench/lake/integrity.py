"""Page checksums of lake files: is a committed file's data still what was written?

Every file the lake writes (flushes, compaction) carries a CRC32 per Parquet page
(``write_page_checksum=True``). Without it, bytes flipped inside a data page
(footer intact) still decode, to other rows' values: polars cannot verify
checksums, so the reader verifies each file through pyarrow once, when it first
sees it (see ``workbench.lake.reader``), and quarantines a damaged one.
``workbench verify`` runs the same check over every committed file.

A damaged file is told apart from a transient I/O failure by pyarrow's errors:
checksum mismatches and undecodable pages come without an ``errno``; the
operating system's failures (EIO, EMFILE, EACCES) carry one and are raised as
they are, so a file is never quarantined for a passing fault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from workbench.lake import fs as lakefs
from workbench.lake.schema import LOGS_TABLE, parse_partition_dir


def page_damage(parquet: pq.ParquetFile) -> str | None:
    """Return what is wrong with the pages of ``parquet`` (opened with checksum verification),
    or None when every page checks out; OSErrors with an ``errno`` (transient) are raised."""
    try:
        for group in range(parquet.num_row_groups):
            parquet.read_row_group(group, use_threads=False)
    except OSError as exc:
        if exc.errno is not None:
            raise
        return str(exc)
    except ValueError as exc:  # pyarrow.ArrowInvalid: a page that does not decode
        return str(exc)
    return None


def file_damage(filesystem: pafs.FileSystem, path: str) -> str | None:
    """Return what is wrong with the committed file at ``path`` (footer or pages), None if sound."""
    with filesystem.open_input_file(path) as handle:
        try:
            parquet = pq.ParquetFile(handle, page_checksum_verification=True)
        except ValueError as exc:
            return f"footer unreadable: {exc}"
        except OSError as exc:
            if exc.errno is not None:
                raise
            return f"footer unreadable: {exc}"
        return page_damage(parquet)


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_lake` found: files checked, damaged ``(path, problem)``, quarantined."""

    checked: int = 0
    damaged: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


def committed_files(lake_url: str) -> list[str]:
    """Return every committed Parquet file of the lake (replaced ones included), sorted."""
    from workbench.lake.reader import list_dir

    filesystem, root = lakefs.resolve(lake_url)
    found: list[str] = []
    for folder in list_dir(filesystem, f"{root}/{LOGS_TABLE}"):
        if folder.size != -1 or parse_partition_dir(folder.base_name) is None:
            continue
        for entry in list_dir(filesystem, folder.path):
            name = entry.base_name
            if entry.size != -1 and name.endswith(".parquet") and name[0] not in "._":
                found.append(entry.path)
    return sorted(found)


def quarantined_files(lake_url: str) -> list[str]:
    """Return the files moved to the lake's quarantine folder, sorted."""
    from workbench.lake.reader import QUARANTINE_DIR

    filesystem, root = lakefs.resolve(lake_url)
    selector = pafs.FileSelector(f"{root}/{QUARANTINE_DIR}", recursive=True, allow_not_found=True)
    return sorted(
        i.path for i in filesystem.get_file_info(selector) if i.type == pafs.FileType.File
    )


def verify_lake(lake_url: str) -> VerifyReport:
    """Check the footer and every page checksum of every committed file of the lake."""
    filesystem, _ = lakefs.resolve(lake_url)
    report = VerifyReport(quarantined=quarantined_files(lake_url))
    for path in committed_files(lake_url):
        try:
            problem = file_damage(filesystem, path)
        except FileNotFoundError:
            continue  # compacted or expired meanwhile
        except OSError as exc:
            problem = f"cannot be read: {exc}"
        report.checked += 1
        if problem is not None:
            report.damaged.append((path, problem))
    return report
