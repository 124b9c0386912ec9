"""Adding events to the aggregation state: from a push, a stream batch, or the offline store.

Every path goes through ``add_events``, which is where the lateness rule is enforced: an
event at or before ``now - longest window`` can be in no window ending now or later, so
it is dropped online (and counted as late); it still goes to the offline store, where
training sets see it. ``load_offline_events`` is materialization for an aggregation view:
it loads the offline events of ``(end - longest window, end]`` into the state, so a
lookup at ``end`` (and after, until newer events arrive) equals the batch answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa

from featurestore.clock import clock_us, to_micros
from featurestore.definitions import FeatureView
from featurestore.offline.aggregate_sql import EVENT_ID_COLUMN
from featurestore.offline.base import OfflineEngine, ViewRequest
from featurestore.streaming.events import ViewLayout, column_ids, encode_events
from featurestore.online.base import AggregationState

__all__ = ["AddResult", "PreparedEvents", "add_events", "load_offline_events", "prepare_events"]


@dataclass(frozen=True)
class AddResult:
    added: int  # new events (not seen before by id)
    late: int  # dropped online: at or before now - longest window
    rows: int  # rows given


@dataclass(frozen=True)
class PreparedEvents:
    """Events ready for ``AggregationState.add``: late ones and null keys left out."""

    layout: ViewLayout
    keys: list[bytes]
    times: list[int]
    ids: list[bytes]
    payloads: list[bytes]
    horizon_us: int
    late: int
    rows: int


def prepare_events(view: FeatureView | ViewLayout, table: pa.Table, ids: Sequence[bytes], now_us: int) -> PreparedEvents:
    """Encode the rows of ``table`` (columns cast to the declared types) and drop those at
    or before ``now_us - longest window`` (late) or with a null join key."""
    layout = view if isinstance(view, ViewLayout) else ViewLayout.of(view)
    keys, times, payloads = encode_events(layout, table)
    horizon = now_us - layout.longest_us
    keep = [i for i, (k, t) in enumerate(zip(keys, times)) if k is not None and t > horizon]
    late = sum(1 for k, t in zip(keys, times) if k is not None and t <= horizon)
    ids = list(ids)
    if len(keep) != len(keys):
        keys = [keys[i] for i in keep]
        times = [times[i] for i in keep]
        ids = [ids[i] for i in keep]
        payloads = [payloads[i] for i in keep]
    return PreparedEvents(layout, keys, times, ids, payloads, horizon, late, table.num_rows)


def add_events(
    state: AggregationState, view: FeatureView | ViewLayout, table: pa.Table, ids: Sequence[bytes], now_us: int
) -> AddResult:
    """Add the rows of ``table`` with their event ``ids`` to ``view``'s state as of ``now_us``."""
    p = prepare_events(view, table, ids, now_us)
    added = state.add(p.layout, p.keys, p.times, p.ids, p.payloads, p.horizon_us) if p.keys else 0
    return AddResult(added, p.late, p.rows)


def load_offline_events(
    engine: OfflineEngine,
    state: AggregationState,
    view: FeatureView,
    request: ViewRequest,
    end: datetime,
    clock: Callable[[], float] = time.time,
    progress: Callable[[str, int], None] | None = None,
    batch_rows: int = 50_000,
) -> int:
    """Load ``view``'s offline events in ``(end - longest window, end]`` into the state
    (idempotent: ids are stable). Returns the events read."""
    layout = ViewLayout.of(view)
    end_us = to_micros(end)  # a naive end is UTC, not local time
    table = engine.aggregation_events(request, end_us - layout.longest_us, end_us)
    now_us = clock_us(clock)
    rows = 0
    for batch in table.to_batches(batch_rows):
        part = pa.Table.from_batches([batch])
        add_events(state, layout, part, column_ids(part.column(EVENT_ID_COLUMN)), now_us)
        rows += part.num_rows
        if progress is not None:
            progress(view.name, rows)
    return rows
