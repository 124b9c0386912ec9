"""Where a view's rows live on disk: its batch source plus rows pushed to the offline store.

Rows pushed with ``to="offline"`` land as Parquet files under
``{offline_store}/pushed/{push_source}/``; every read of the view unions them with the
batch source, so training sets see pushed rows.
"""

from __future__ import annotations

from pathlib import Path

from featurestore.definitions import FeatureView, PushSource
from featurestore.offline.base import SourceTable

__all__ = ["pushed_dir", "source_table"]


def pushed_dir(offline_root: Path, push_source: str) -> Path:
    return offline_root / "pushed" / push_source


def source_table(view: FeatureView, repo: Path, offline_root: Path) -> SourceTable:
    batch = view.batch_source
    path = Path(batch.path).expanduser()
    files = [str(path if path.is_absolute() else repo / path)]
    if isinstance(view.source, PushSource):
        pushed = pushed_dir(offline_root, view.source.name)
        if any(pushed.glob("*.parquet")):
            files.append(str(pushed / "*.parquet"))
    return SourceTable(tuple(files), batch.timestamp_field, batch.created_timestamp_field)
