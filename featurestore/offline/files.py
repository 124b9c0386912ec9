"""Atomic Parquet writes: a reader sees the old file or the new one, never half of one.

Several processes (API server, scheduler, CLI) read the offline store while one writes,
and a crash mid-write must not leave a torn file behind. So a file is written under a
temporary name in its own folder (same filesystem, so the rename is atomic), flushed to
disk, renamed over the target, and the folder entry is flushed too.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["write_parquet_atomic"]


def write_parquet_atomic(table: pa.Table, path: str | os.PathLike[str], **options) -> Path:
    """Write ``table`` to ``path`` as Parquet atomically; returns the path.

    ``options`` go to ``pyarrow.parquet.write_table`` (``compression``, ``row_group_size``).
    Temporary files start with ``.`` so globs like ``*.parquet`` never pick them up.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle, **options)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it 0600; use the usual mode
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(target.parent)
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
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
