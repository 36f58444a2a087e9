"""Resolve a lake URL to a ``pyarrow.fs.FileSystem`` and a root path inside it; list its folders.

On object storage (``s3://BUCKET/PREFIX``) the filesystem comes from the standard AWS
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``), which pyarrow reads itself. Paths inside it carry no scheme
(``bucket/prefix/logs/…``); :func:`uri` gives polars the URL of such a path and
:func:`storage_options` the same AWS variables, so pyarrow and polars address one store.

Visibility: :func:`write_atomically` makes a file appear complete under its final
name on every filesystem (a rename on local disks; one upload on object storage).
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

#: On object storage a partition being dropped by retention holds this object: one PUT
#: hides the whole day from the workbench's readers (there is no folder rename there).
DELETING_MARKER = "_deleting"

# Root path (as pyarrow names it, no scheme) -> scheme, for every remote lake resolved.
_remote_roots: dict[str, str] = {}
# Root path -> the filesystem it was last resolved with (facts are read and kept through it).
_remote_filesystems: dict[str, pafs.FileSystem] = {}
_roots_lock = threading.Lock()


def resolve(lake_url: str) -> tuple[pafs.FileSystem, str]:
    """Return ``(filesystem, root)`` for a local path or a URL such as ``s3://bucket/lake``.

    Local paths are made absolute and created if missing.
    """
    if "://" in lake_url and not lake_url.startswith("file://"):
        fs, root = pafs.FileSystem.from_uri(lake_url)
        root = root.rstrip("/")
        if _remote_filesystems.get(root) is not fs:
            with _roots_lock:
                _remote_roots[root] = lake_url.split("://", 1)[0]
                _remote_filesystems[root] = fs
        return fs, root
    path = Path(lake_url.removeprefix("file://")).expanduser().absolute()
    path.mkdir(parents=True, exist_ok=True)
    return pafs.LocalFileSystem(), str(path)


@dataclass(frozen=True, slots=True)
class Entry:
    """A file (``size`` in bytes) or folder (``size`` -1) found by :func:`list_dir`."""

    path: str
    base_name: str
    size: int
    mtime_ns: int


def list_dir(filesystem: pafs.FileSystem, path: str) -> list[Entry]:
    """Return the entries of a directory (files and folders), empty when it is missing."""
    if isinstance(filesystem, pafs.LocalFileSystem):
        # os.scandir is several times cheaper than pyarrow's selector for local folders.
        try:
            with os.scandir(path) as it:
                out = []
                for e in it:
                    try:
                        st = e.stat()
                    except FileNotFoundError:  # deleted between listing and stat
                        continue
                    size = -1 if e.is_dir() else st.st_size
                    out.append(Entry(e.path, e.name, size, st.st_mtime_ns))
                return out
        except FileNotFoundError:
            return []
    infos = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return [
        Entry(
            i.path,
            i.base_name,
            -1 if i.type == pafs.FileType.Directory else (i.size or 0),
            i.mtime_ns or 0,
        )
        for i in infos
    ]


def is_local(filesystem: pafs.FileSystem) -> bool:
    """Return whether ``filesystem`` is the local disk (renames are atomic there)."""
    return isinstance(filesystem, pafs.LocalFileSystem)


def uri(path: str) -> str:
    """Return the URL polars reads ``path`` (a path from :func:`resolve`'s filesystem) by.

    Local paths are returned as they are; a path under a remote lake's root gets
    that lake's scheme back (``bucket/lake/x.parquet`` -> ``s3://bucket/lake/x.parquet``).
    """
    if path.startswith("/") or "://" in path:
        return path
    for root, scheme in _remote_roots.items():
        if path == root or path.startswith(root + "/"):
            return f"{scheme}://{path}"
    return path


def remote_filesystem(path: str) -> pafs.FileSystem | None:
    """Return the filesystem of the remote lake ``path`` lies under (as resolved last), or None."""
    if path.startswith("/") or "://" in path:
        return None
    for root, filesystem in list(_remote_filesystems.items()):
        if path.startswith(root + "/"):
            return filesystem
    return None


def storage_options(path: str) -> dict[str, str] | None:
    """Return polars' ``storage_options`` for reading ``path`` (a URL from :func:`uri`).

    None for local paths. For ``s3://`` the standard AWS variables are passed
    explicitly (endpoint, keys, session token, region), so polars uses the same
    store as pyarrow whatever its own environment lookup does; a plain ``http://``
    endpoint (MinIO, a test server) is allowed explicitly.
    """
    if not path.startswith(("s3://", "s3a://")):
        return None
    env = os.environ
    names = {
        "aws_endpoint_url": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
        "aws_access_key_id": ("AWS_ACCESS_KEY_ID",),
        "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY",),
        "aws_session_token": ("AWS_SESSION_TOKEN",),
        "aws_region": ("AWS_REGION", "AWS_DEFAULT_REGION"),
    }
    options: dict[str, str] = {}
    for option, variables in names.items():
        value = next((env[v] for v in variables if env.get(v)), None)
        if value:
            options[option] = value
    if options.get("aws_endpoint_url", "").startswith("http://"):
        options["aws_allow_http"] = "true"
    return options


def scan_options(paths: list[str]) -> dict[str, Any]:
    """Return ``{"source": urls, "storage_options": …}`` for ``polars.scan_parquet`` of lake paths."""
    urls = [uri(p) for p in paths]
    return {"source": urls, "storage_options": storage_options(urls[0]) if urls else None}


def write_atomically(
    filesystem: pafs.FileSystem, final: str, write: Callable[[pa.NativeFile], None]
) -> None:
    """Write a file with ``write(sink)`` so that it appears only complete, under ``final``.

    On a local disk it is written under a hidden ``.tmp-…`` name beside ``final`` and
    renamed into place. Object storage has no rename (pyarrow's ``move`` there is a
    copy and a delete, and the temporary object would be listed meanwhile), so the
    file is encoded in memory first and then sent under ``final`` in one upload:
    pyarrow's S3 output stream completes its (multipart) upload only when closed,
    and the object appears whole then. An encoding failure uploads nothing.
    """
    if not is_local(filesystem):
        buffer = pa.BufferOutputStream()
        write(buffer)
        data = buffer.getvalue()
        with filesystem.open_output_stream(final) as sink:
            sink.write(data)
        return
    folder, name = final.rsplit("/", 1)
    tmp = f"{folder}/.tmp-{name.removesuffix('.parquet')}-{uuid.uuid4().hex}.parquet"
    try:
        with filesystem.open_output_stream(tmp) as sink:
            write(sink)
        filesystem.move(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            filesystem.delete_file(tmp)
        raise
