"""Atomic Parquet writes: a reader sees the old file or the new one, never half of one.

Several processes (API server, scheduler, CLI) read the offline store while one writes,
and a crash mid-write must not leave a torn file behind. So a file is written under a
temporary name in its own folder (same filesystem, so the rename is atomic), flushed to
disk, renamed over the target, and the folder entry is flushed too.
``write_parquet_by_content`` names the file by the sha256 of its bytes instead, for
files that must never change once written (saved datasets).

A write that fails in the filesystem (a full disk, a read-only mount, no permission) is
the store's fault, not the caller's: both raise StoreUnavailableError (503 over HTTP)
naming what could not be written and why, and leave no file behind. The caller names the
destination (``what``: "the offline store (folder pushed/source)"), never by its absolute
path, which an HTTP answer would show to anyone.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import StoreUnavailableError

__all__ = ["fsync_dir", "sha256_file", "write_parquet_atomic", "write_parquet_by_content", "write_parquet_stream"]


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike[str], *, what: str | None = None,
                         **options) -> Path:
    """Write ``table`` to ``path`` as Parquet atomically; returns the path.

    ``what`` names the destination in the error of a failed write (default: the folder).
    ``options`` go to ``pyarrow.parquet.write_table`` (``compression``, ``row_group_size``).
    Temporary files start with ``.`` so globs like ``*.parquet`` never pick them up.
    """
    target = Path(path)
    with _unavailable(what or str(target.parent)):
        _install(_write_temp(lambda handle: pq.write_table(table, handle, **options), target.parent, target.name),
                 target)
    return target


def write_parquet_stream(tables: Iterable[pa.Table], path: str | os.PathLike[str], *, what: str | None = None) -> int:
    """Write ``tables`` (one schema; at least one) to ``path`` as one Parquet file, each as it
    comes, atomically: the file appears whole once the last is written, or not at all.
    Returns the rows written."""
    target = Path(path)
    rows = 0

    def write(handle) -> None:
        nonlocal rows
        writer = None
        try:
            for table in tables:
                writer = writer or pq.ParquetWriter(handle, table.schema)
                writer.write_table(table)
                rows += table.num_rows
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise ValueError("write_parquet_stream needs at least one table (its schema)")

    with _unavailable(what or str(target.parent)):
        _install(_write_temp(write, target.parent, target.name), target)
    return rows


def write_parquet_by_content(table: pa.Table, folder: str | os.PathLike[str], *, what: str | None = None,
                             **options) -> tuple[Path, str]:
    """Write ``table`` atomically into ``folder`` as ``<sha256>.parquet``, named by the hash
    of its bytes; returns the path and the hash.

    A name is only ever given to the bytes it hashes, so no write changes what an earlier
    one left under that name: writing the same rows again replaces a file with itself.
    """
    folder = Path(folder)
    with _unavailable(what or str(folder)):
        tmp = _write_temp(lambda handle: pq.write_table(table, handle, **options), folder, "content")
        try:
            digest = sha256_file(tmp)
        except BaseException:
            _discard(tmp)
            raise
        target = folder / f"{digest}.parquet"
        _install(tmp, target)
    return target, digest


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _unavailable(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:  # pyarrow's I/O errors are OSErrors too
        reason = exc.strerror or type(exc).__name__  # strerror alone: the exception may name the path
        raise StoreUnavailableError(
            f"cannot write to {what}: {reason}; free some disk space, or check that the folder is on a "
            "writable disk this process may write to", store="the offline store") from None


def _write_temp(write: Callable[[Any], None], folder: Path, stem: str) -> str:
    """``write(handle)`` a file under a temporary name in ``folder`` and flush it; returns that name."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; use the usual mode
    except BaseException:
        _discard(tmp)
        raise
    return tmp


def _install(tmp: str, target: Path) -> None:
    """Rename the temporary file over ``target`` and persist the rename."""
    try:
        os.replace(tmp, target)
    except BaseException:
        _discard(tmp)
        raise
    fsync_dir(target.parent)


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(folder: Path) -> None:
    """Persist the rename itself (a no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
