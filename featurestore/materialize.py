"""Materialization: copy each entity's latest row in a time window into the online store.

The offline engine streams the latest row per entity in batches; each batch is written
with newer-timestamp-wins, so a rerun (after a crash, or a double run) changes nothing
and a value pushed with a later timestamp survives. ``materialize_incremental`` starts
each view where its last run ended: a watermark kept in the registry's state, read and
moved only here (``Materializer``). A watermark says what one online store holds, so it
is kept per (view, store location): after a switch from SQLite to Redis the first
incremental run fills Redis instead of believing it full. ``featurestore/jobs/runner.py`` wraps a
``Materializer.run`` with the view's lock and its job record; the facade calls jobs.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from featurestore.catalog import Catalog
from featurestore.clock import parse_utc
from featurestore.definitions import FeatureView
from featurestore.errors import InputError
from featurestore.offline.base import ExecutorWrites, OfflineEngine, ViewRequest
from featurestore.online.base import AggregationState, OnlineStore, online_view

__all__ = ["MaterializeBackends", "MaterializeResult", "Materializer", "Progress", "check_online",
           "explain_empty", "materialize_view", "watermark_key"]

# One per process: a parallel backfill's chunks of one view must not move its watermark back.
_WATERMARK_LOCK = threading.Lock()

#: progress(view_name, rows_written_so_far)
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class MaterializeResult:
    view: str
    start: datetime | None
    end: datetime
    rows: int
    seconds: float
    #: When no row was written: where the view's source has data, so the user can pick a
    #: window inside it ("" otherwise).
    note: str = ""

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float(self.rows)


def watermark_key(view: str, location: str) -> str:
    """The registry state key of ``view``'s watermark in the online store at ``location``."""
    return f"materialized_until:{view}@{location}"


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
    if isinstance(engine, ExecutorWrites):  # the engine's workers write; only a count comes back
        rows = engine.write_latest_rows(request, start, end, target)
        if progress is not None:
            progress(view.name, rows)
        return MaterializeResult(view.name, start, end, rows, time.perf_counter() - began)
    rows = 0
    reader = engine.latest_rows(request, start, end)
    for batch in reader:
        if batch.num_rows == 0:
            continue
        rows += online.write_batch(target, pa.Table.from_batches([batch]))
        if progress is not None:
            progress(view.name, rows)
    return MaterializeResult(view.name, start, end, rows, time.perf_counter() - began)


def explain_empty(engine: OfflineEngine, request: ViewRequest, result: MaterializeResult) -> MaterializeResult:
    """``result``, with a note of where the view's data is when the window held none."""
    if result.rows:
        return result
    span = engine.event_range(request)
    note = (f"its source has events from {span[0].isoformat()} to {span[1].isoformat()}; pick a window "
            "inside them" if span else "its source has no rows yet")
    return dataclasses.replace(result, note=note)


class MaterializeBackends(Protocol):
    """What a run uses (``featurestore.backends.Backends`` has it; the online side is built
    on first use, so it is read at each run)."""

    project: str
    registry: Catalog
    offline: OfflineEngine

    @property
    def online(self) -> OnlineStore: ...

    @property
    def aggregation_state(self) -> AggregationState: ...


class Materializer:
    """Runs one window of one view into the online side and keeps the view's watermark.

    ``request(view)`` gives the offline request of all of a view's features (the store
    builds it: it knows where sources live). Callers hold the view's job lock
    (``featurestore/jobs``); nothing here records jobs.
    """

    def __init__(self, backends: MaterializeBackends, request: Callable[[FeatureView], ViewRequest],
                 clock: Callable[[], float] = time.time):
        self.backends = backends
        self.project = backends.project
        self._request = request
        self._clock = clock

    @property
    def registry(self):
        return self.backends.registry

    def run(self, view: FeatureView, start: datetime | None, end: datetime,
            progress: Progress | None = None) -> MaterializeResult:
        """Materialize ``start <= event_timestamp <= end`` of ``view``, then move its
        watermark to ``end`` unless it is already later."""
        backends = self.backends
        request = self._request(view)
        if view.aggregations:  # load the events of the longest window ending at `end`
            # (imported here: featurestore.streaming's package loads the stream worker)
            from featurestore.streaming.ingest import load_offline_events

            began = time.perf_counter()
            rows = load_offline_events(backends.offline, backends.aggregation_state, view, request, end,
                                       self._clock, progress)
            result = MaterializeResult(view.name, start, end, rows, time.perf_counter() - began)
        else:
            result = materialize_view(backends.offline, backends.online, view, request, start, end, progress)
        with _WATERMARK_LOCK:
            previous = self.watermark(view.name)
            if previous is None or end > previous:
                self.registry.set_state(self.project, self._key(view.name), end.isoformat())
        return result

    def watermark(self, view: str) -> datetime | None:
        """The end of the view's latest run's window into the current online store (None:
        never run there, or reset)."""
        return parse_utc(self.registry.get_state(self.project, self._key(view)), "watermark")

    def incremental_start(self, view: FeatureView, end: datetime) -> datetime | None:
        """Where an incremental run starts: the watermark, or ``end - ttl`` the first time.
        An end before the watermark is an InputError, not a reversed window."""
        mark = self.watermark(view.name)
        if mark is None:
            return end - view.ttl if view.ttl else None
        if end < mark:
            raise InputError(
                f"feature view {view.name!r} is already materialized up to {mark.isoformat()} in the "
                f"online store at {self.backends.online.location}, after the end {end.isoformat()}; "
                "pick a later end (or `now`), use `featurestore materialize START END` for an older "
                f"range, or `featurestore teardown {view.name}` to start over")
        return mark

    def reset(self, view: str) -> None:
        """Forget the watermark: the next incremental run starts from scratch."""
        self.registry.set_state(self.project, self._key(view), None)

    def _key(self, view: str) -> str:
        # Aggregation events live beside the online values (same SQLite file, same Redis).
        return watermark_key(view, self.backends.online.location)
