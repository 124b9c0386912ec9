"""Materialization: copy each entity's latest row in a time window into the online store.

The offline engine streams the latest row per entity in batches; each batch is written
with newer-timestamp-wins, so a rerun (after a crash, or a double run) changes nothing
and a value pushed with a later timestamp survives. ``materialize_incremental`` starts
each view where its last run ended: a watermark kept in the registry's state.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import pyarrow as pa

from featurestore.definitions import FeatureView
from featurestore.errors import InputError
from featurestore.offline.base import OfflineEngine, ViewRequest
from featurestore.online.base import OnlineStore
from featurestore.online_read import online_view

__all__ = ["MaterializeResult", "check_online", "materialize_view", "utc", "watermark_key"]

#: progress(view_name, rows_written_so_far)
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class MaterializeResult:
    view: str
    start: datetime | None
    end: datetime
    rows: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float(self.rows)


def watermark_key(view: str) -> str:
    return f"materialized_until:{view}"


def utc(value: datetime | str | None, what: str) -> datetime | None:
    """A datetime in UTC; naive values are taken as UTC, strings as ISO 8601."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"{what} {value!r} is not an ISO 8601 time such as 2024-05-01T00:00:00") from None
    if not isinstance(value, datetime):
        raise InputError(f"{what} must be a datetime or ISO 8601 string, not {type(value).__name__}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def check_online(views: Sequence[FeatureView]) -> None:
    for view in views:
        if not view.online:
            raise InputError(
                f"feature view {view.name!r} has online=False, so it cannot be materialized; "
                "set online=True in its definition and apply, or leave it out"
            )


def materialize_view(
    engine: OfflineEngine,
    online: OnlineStore,
    view: FeatureView,
    request: ViewRequest,
    start: datetime | None,
    end: datetime,
    progress: Progress | None = None,
) -> MaterializeResult:
    began = time.perf_counter()
    target = online_view(view)
    rows = 0
    reader = engine.latest_rows(request, start, end)
    for batch in reader:
        if batch.num_rows == 0:
            continue
        rows += online.write_batch(target, pa.Table.from_batches([batch]))
        if progress is not None:
            progress(view.name, rows)
    return MaterializeResult(view.name, start, end, rows, time.perf_counter() - began)
