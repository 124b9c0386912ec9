"""Reading a serving log back: ``store.get_logs(name, start, end)``.

Only the date folders the window touches are opened; files from different writers (or
from before a definition changed) are concatenated by column name, a column missing from
a file read as null. Temporary files of a write in progress (or of a process killed
mid-write) start with ``.`` and are never read.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.clock import from_micros
from featurestore.errors import StoreUnavailableError
from featurestore.serving_log.layout import FOLDER, META_SCHEMA, TIME_TYPE

__all__ = ["logged_names", "read_log"]


def read_log(folder: Path, start_us: int | None = None, end_us: int | None = None) -> pa.Table:
    """The rows of the log in ``folder`` (``layout.log_folder``) with ``start_us <= log_time
    < end_us`` (either bound may be None), in log time order; an empty table with the
    metadata columns when there are none."""
    first = _day(start_us) if start_us is not None else None
    last = _day(end_us) if end_us is not None else None
    tables = []
    for day in sorted(folder.glob("date=*")) if folder.is_dir() else ():
        date = day.name[len("date="):]
        if (first is not None and date < first) or (last is not None and date > last):
            continue
        for file in sorted(day.glob("[!.]*.parquet")):
            try:
                tables.append(pq.read_table(file))
            except OSError as exc:
                raise StoreUnavailableError(
                    f"cannot read the serving log file {folder.name}/{day.name}/{file.name}: {exc}; "
                    "the offline store's disk may have failed", store="the offline store") from None
    if not tables:
        return META_SCHEMA.empty_table()
    table = pa.concat_tables(tables, promote_options="permissive")
    time = table.column("log_time")
    if start_us is not None:
        table = table.filter(pc.greater_equal(time, pa.scalar(start_us, TIME_TYPE)))
        time = table.column("log_time")
    if end_us is not None:
        table = table.filter(pc.less(time, pa.scalar(end_us, TIME_TYPE)))
    return table.take(pc.sort_indices(table, [("log_time", "ascending")]))


def logged_names(offline_root: str | Path) -> list[str]:
    """The names with a serving log (for close matches of a mistyped one)."""
    folder = Path(offline_root) / FOLDER
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _day(us: int) -> str:
    return from_micros(us).astimezone(timezone.utc).strftime("%Y-%m-%d")
