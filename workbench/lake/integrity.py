"""Page checksums of lake files: is a committed file's data still what was written?

Every file the lake writes (flushes, compaction) carries a CRC32 per Parquet page
(``write_page_checksum=True``). Without it, bytes flipped inside a data page
(footer intact) still decode, to other rows' values, and polars cannot verify
checksums. So the reader checks each file once, when it first sees it
(:func:`crc_damage`: walks the page headers and compares each page's CRC with its
bytes, without decompressing), and quarantines a damaged one (see
``workbench.lake.reader``). ``workbench verify`` runs the same walk over every
committed file and also decodes every page (:func:`page_damage`), which catches
undecodable pages in files written before checksums.

A damaged file is told apart from a transient I/O failure by the errors: damage
is reported as a string (pyarrow's checksum and decoding errors come without an
``errno``); the operating system's failures (EIO, EMFILE, EACCES) carry one and
are raised as they are, so a file is never quarantined for a passing fault.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from workbench.lake import fs as lakefs
from workbench.lake.fs import list_dir
from workbench.lake.schema import LOGS_TABLE, QUARANTINE_DIR, parse_partition_dir


class _Thrift:
    """Just enough of the Thrift compact protocol to read a Parquet page header's sizes and CRC."""

    def __init__(self, data: bytes, pos: int) -> None:
        self.data = data
        self.pos = pos

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def skip(self, kind: int) -> None:
        if kind in (1, 2):  # booleans: the value is the type (in a struct)
            return
        if kind == 3:
            self.pos += 1
        elif kind in (4, 5, 6):
            self.varint()
        elif kind == 7:
            self.pos += 8
        elif kind == 8:
            length = self.varint()  # read first: ``self.pos += self.varint()`` would lose it
            self.pos += length
        elif kind in (9, 10):
            header = self.byte()
            size = header >> 4
            if size == 15:
                size = self.varint()
            for _ in range(size):
                self.skip_element(header & 0x0F)
        elif kind == 11:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self.skip_element(types >> 4)
                    self.skip_element(types & 0x0F)
        elif kind == 12:
            self.struct(lambda _field, k: self.skip(k))
        else:
            raise ValueError(f"unknown thrift type {kind}")

    def skip_element(self, kind: int) -> None:
        if kind in (1, 2):  # booleans in a list or map take one byte
            self.pos += 1
        else:
            self.skip(kind)

    def struct(self, on_field: Callable[[int, int], None]) -> None:
        field_id = 0
        while True:
            header = self.byte()
            if header == 0:
                return
            delta, kind = header >> 4, header & 0x0F
            field_id = field_id + delta if delta else self.zigzag()
            on_field(field_id, kind)


@dataclass(frozen=True, slots=True)
class _PageHeader:
    end: int  # where the page's bytes start
    uncompressed: int
    compressed: int
    crc: int | None
    values: int  # rows (values) of a data page; 0 for a dictionary page


def _page_header(data: bytes, pos: int) -> _PageHeader:
    """Return the sizes, CRC and value count of the page header at ``pos``."""
    reader = _Thrift(data, pos)
    found: dict[int, int] = {}

    def on_data_header(field_id: int, kind: int) -> None:
        if field_id == 1 and kind == 5:  # num_values, in DataPageHeader and DataPageHeaderV2
            found[-1] = reader.zigzag()
        else:
            reader.skip(kind)

    def on_field(field_id: int, kind: int) -> None:
        if field_id in (2, 3, 4) and kind == 5:
            found[field_id] = reader.zigzag()
        elif field_id in (5, 8) and kind == 12:
            reader.struct(on_data_header)
        else:
            reader.skip(kind)

    reader.struct(on_field)
    if 2 not in found or 3 not in found or found[3] < 0 or found[2] < 0:
        raise ValueError("no page sizes")
    return _PageHeader(reader.pos, found[2], found[3], found.get(4), found.get(-1, 0))


def crc_damage(handle: pa.NativeFile, meta: pq.FileMetaData) -> str | None:
    """Return the first page of the file whose bytes fail their CRC32, or None when all match.

    Reads each column chunk once and checks every page's stored CRC against its
    bytes as written (``zlib.crc32``), without decompressing or decoding: a few
    times cheaper than reading the file through pyarrow. Pages written without
    a CRC are not checked.
    """
    for group in range(meta.num_row_groups):
        row_group = meta.row_group(group)
        for column in range(row_group.num_columns):
            chunk = row_group.column(column)
            offsets = [chunk.data_page_offset]
            if chunk.dictionary_page_offset:  # absent: None (or 0 from some writers)
                offsets.append(chunk.dictionary_page_offset)
            start, size = min(offsets), chunk.total_compressed_size
            data = handle.read_at(size, start)
            where = f"row group {group}, column {chunk.path_in_schema}"
            if len(data) != size:
                return f"{where}: column chunk cut short"
            pos = uncompressed = values = 0
            while pos < size:
                try:
                    page = _page_header(data, pos)
                except (IndexError, ValueError) as exc:
                    return f"{where}: unreadable page header at offset {start + pos}: {exc}"
                body, length = page.end, page.compressed
                if body + length > size:
                    return f"{where}: page at offset {start + pos} runs past its column chunk"
                if (
                    page.crc is not None
                    and zlib.crc32(data[body : body + length]) != page.crc & 0xFFFFFFFF
                ):
                    return f"{where}: CRC checksum mismatch in the page at offset {start + pos}"
                uncompressed += body - pos + page.uncompressed
                values += page.values
                pos = body + length
            # Headers are not covered by the CRCs: their sizes and counts must add up to the footer's.
            if uncompressed != chunk.total_uncompressed_size or values != chunk.num_values:
                return f"{where}: page headers disagree with the footer (sizes or value counts)"
    return None


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
        # The CRC walk first (it names the page); then a full decode, which also
        # catches pages that do not decode in files written without checksums.
        return crc_damage(handle, parquet.metadata) or page_damage(parquet)


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_lake` found: files checked, damaged ``(path, problem)``, quarantined."""

    checked: int = 0
    damaged: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


def committed_files(lake_url: str) -> list[str]:
    """Return every committed Parquet file of the lake (replaced ones included), sorted."""
    filesystem, root = lakefs.resolve(lake_url)
    found: list[str] = []
    for folder in list_dir(filesystem, f"{root}/{LOGS_TABLE}"):
        if folder.size != -1 or parse_partition_dir(folder.base_name) is None:
            continue
        entries = list_dir(filesystem, folder.path)
        if any(e.base_name == lakefs.DELETING_MARKER for e in entries):
            continue  # being dropped by retention (object storage)
        for entry in entries:
            name = entry.base_name
            if entry.size != -1 and name.endswith(".parquet") and name[0] not in "._":
                found.append(entry.path)
    return sorted(found)


def quarantined_files(lake_url: str) -> list[str]:
    """Return the files moved to the lake's quarantine folder, sorted."""
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
