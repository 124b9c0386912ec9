"""Where a view's rows live on disk: its batch source plus rows pushed to the offline store.

Rows pushed with ``to="offline"`` land as Parquet files under
``{offline_store}/pushed/{push_source}/``; every read of the view unions them with the
batch source, so training sets see pushed rows.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from featurestore.definitions import FeatureView, PushSource
from featurestore.offline.base import SourceTable
from featurestore.offline.files import write_parquet_atomic

__all__ = ["pushed_dir", "source_table", "write_pushed"]


def pushed_dir(offline_root: Path, push_source: str) -> Path:
    return offline_root / "pushed" / push_source


def write_pushed(offline_root: Path, push_source: str, table: pa.Table) -> Path:
    """Add ``table`` to the push source's rows as one new Parquet file, written atomically.

    The name is the UTC write time plus a random suffix, so writers in several processes
    (the API server, stream workers) never pick the same file."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = pushed_dir(offline_root, push_source) / f"{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    return write_parquet_atomic(table, path, what=f"the offline store (folder pushed/{push_source})")


def source_table(view: FeatureView, repo: Path, offline_root: Path) -> SourceTable:
    batch = view.batch_source
    path = Path(batch.path).expanduser()
    files = [str(path if path.is_absolute() else repo / path)]
    if isinstance(view.source, PushSource):
        pushed = pushed_dir(offline_root, view.source.name)
        if any(pushed.glob("*.parquet")):
            files.append(str(pushed / "*.parquet"))
    return SourceTable(tuple(files), batch.timestamp_field, batch.created_timestamp_field)
