"""Where a view's rows live on disk: its batch source plus rows pushed to the offline store.

Rows pushed with ``to="offline"`` land as Parquet files under
``{offline_store}/pushed/{push_source}/``; every read of a view over the same batch source
unions them with it, so training sets see pushed rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from featurestore.definitions import FeatureView, PushSource
from featurestore.offline.base import SourceTable
from featurestore.offline.files import write_parquet_atomic

__all__ = ["pushed_dir", "same_batch_views", "source_table", "write_pushed"]


def pushed_dir(offline_root: Path, push_source: str) -> Path:
    return offline_root / "pushed" / push_source


def write_pushed(offline_root: Path, push_source: str, table: pa.Table) -> Path:
    """Add ``table`` to the push source's rows as one new Parquet file, written atomically.

    The name is the UTC write time plus a random suffix, so writers in several processes
    (the API server, stream workers) never pick the same file."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    path = pushed_dir(offline_root, push_source) / f"{stamp}-{uuid.uuid4().hex[:8]}.parquet"
    return write_parquet_atomic(table, path, what=f"the offline store (folder pushed/{push_source})")


def source_table(view: FeatureView, repo: Path, offline_root: Path, sources: Iterable[object] = ()) -> SourceTable:
    """The view's files: its batch source, plus the rows pushed offline to every push source
    (its own, and those among ``sources``) over the same batch source, as Feast's offline
    push appends to the batch source itself."""
    batch = view.batch_source
    files = [str(_resolve(batch.path, repo))]
    pushes = {view.source.name} if isinstance(view.source, PushSource) else set()
    pushes |= {s.name for s in sources if isinstance(s, PushSource)
               and _resolve(s.batch_source.path, repo) == _resolve(batch.path, repo)}
    for name in sorted(pushes):
        pushed = pushed_dir(offline_root, name)
        if any(pushed.glob("*.parquet")):
            files.append(str(pushed / "*.parquet"))
    return SourceTable(tuple(files), batch.timestamp_field, batch.created_timestamp_field, batch.date_partition)


def same_batch_views(source: PushSource, views: Iterable[FeatureView], repo: Path) -> list[FeatureView]:
    """The views that read ``source``'s batch source without being fed by ``source``."""
    path = _resolve(source.batch_source.path, repo)
    return [v for v in views if _resolve(v.batch_source.path, repo) == path
            and not (isinstance(v.source, PushSource) and v.source.name == source.name)]


def _resolve(path: str, repo: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else repo / p
