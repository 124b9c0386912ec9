"""The applying side of ``featurestore stream``: decode a batch, apply it online, buffer
it for the offline store.

- **Online, right away**: aggregation views add the events to their state (idempotent by
  event id; events older than the longest window are dropped online and counted as
  late), other views get newer-timestamp-wins writes. With a Redis state the updates are
  sent pipelined on a connection of their own and their replies read before the next
  batch's (``collect``), so Redis works while Python decodes.
- **Offline, in batches**: the rows, with their event ids in ``_event_id``, are buffered
  per push source until ``write_offline`` appends them as one Parquet file each.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from featurestore.clock import TimeRange, clock_us
from featurestore.definitions import FeatureView, PushSource
from featurestore.errors import ConfigError, NotFoundError
from featurestore.online.base import EVENT_TIMESTAMP, online_view
from featurestore.online.redis_events import SCRIPTS, RedisAggregationState
from featurestore.source_tables import write_pushed
from featurestore.streaming.config import StreamSettings, StreamSpec
from featurestore.streaming.consumer import check_replies
from featurestore.streaming.decode import DecodedBatch, EntryDecoder
from featurestore.streaming.events import EVENT_ID_COLUMN
from featurestore.streaming.ingest import prepare_events
from featurestore.streaming.resp import RespConnection

__all__ = ["BatchApplier", "BatchReport", "FlushReport", "Route", "StreamObserver", "build_routes"]

_DELAY_SAMPLES = 64  # entries per batch whose XADD-to-applied delay is reported


@dataclass(frozen=True)
class BatchReport:
    """One applied batch of one stream."""

    stream: str
    push_source: str
    events: int  # entries applied (good ones)
    reclaimed: int  # of which were pending before (own after a restart, or claimed from another worker)
    duplicates: int  # events an aggregation state already held (redeliveries), over all its views
    late: dict[str, int]  # per aggregation view: events dropped online as too old
    dead: int  # bad entries sent to the dead-letter stream
    seconds: float  # from reading to applied online
    delays: tuple[float, ...]  # sampled seconds from XADD to applied online


@dataclass(frozen=True)
class FlushReport:
    push_source: str
    rows: int
    seconds: float


class StreamObserver(Protocol):
    """What the worker tells about its work (``monitoring/streaming.py`` turns it into
    Prometheus metrics)."""

    def batch(self, report: BatchReport) -> None: ...

    def flush(self, report: FlushReport) -> None: ...


@dataclass
class Route:
    """Where a stream's entries go: its push source and the views it feeds."""

    spec: StreamSpec
    source: PushSource
    views: list[FeatureView]
    decoder: EntryDecoder


def build_routes(contents, settings: StreamSettings, times: TimeRange | None = None) -> dict[str, Route]:
    """A route per configured stream, from the definitions ``contents``; ``times`` are the
    event times its entries may carry (default: featurestore/clock.py's)."""
    routes = {}
    for spec in settings.streams:
        source = contents.sources.get(spec.push_source)
        if not isinstance(source, PushSource):
            pushes = [n for n, s in contents.sources.items() if isinstance(s, PushSource)]
            raise NotFoundError("push source", spec.push_source, pushes,
                                hint=f"stream {spec.stream!r} names it in streaming.streams")
        views = [v for v in contents.feature_views.values()
                 if isinstance(v.source, PushSource) and v.source.name == source.name]
        if not views:
            raise ConfigError(f"push source {source.name!r} (stream {spec.stream!r}) feeds no feature view; "
                              "apply a view that uses it")
        routes[spec.stream] = Route(spec, source, views,
                                    EntryDecoder(spec.stream, source, views, settings.id_field, times))
    return routes


@dataclass
class _InFlight:
    """A batch whose state updates were sent and whose replies are not read yet."""

    commands: int
    report: dict
    entry_ids: list[bytes]
    unconfirmed: int  # events sent; those the replies do not count as added were already there


class BatchApplier:
    """Applies decoded batches to ``store``'s online side and buffers them for its offline one."""

    def __init__(self, store, consumer: str, clock: Callable[[], float], observer: StreamObserver | None = None):
        self.store = store
        self.consumer = consumer
        self.clock = clock
        self.observer = observer
        self._state_conn: RespConnection | None = None  # state updates, pipelined (Redis state only)
        self._state_ready = False
        self._in_flight: _InFlight | None = None
        self.tables: dict[str, list[pa.Table]] = {}  # by push source: applied online, not yet offline
        self.rows = 0
        self.since = 0.0  # monotonic time of the first buffered row

    def apply(self, route: Route, stream: str, batch: DecodedBatch, reclaimed: bool) -> None:
        """Apply a decoded batch online and buffer its rows; the observer hears of it once
        its state updates are confirmed."""
        began = time.perf_counter()
        table, ids = batch.table, batch.event_ids
        late: dict[str, int] = {}
        added = sent = 0  # events added to aggregation states (synchronously) / sent to them
        commands: list[bytes] = []
        if table.num_rows:
            now_us = clock_us(self.clock)
            stamped = None
            for view in route.views:
                if not view.online:
                    continue
                if view.aggregations:
                    prepared = prepare_events(view, table, ids, now_us)
                    late[view.name] = prepared.late
                    if prepared.keys:
                        sent += len(prepared.keys)
                        more, done = self._state_update(prepared)
                        commands += more
                        added += done
                else:
                    if stamped is None:
                        ts = table.column(route.source.timestamp_field)
                        stamped = table if EVENT_TIMESTAMP in table.column_names else \
                            table.append_column(EVENT_TIMESTAMP, ts)
                    target = online_view(view)
                    self.store.online.write_batch(target, stamped.select([*target.join_keys, *target.features,
                                                                          EVENT_TIMESTAMP]))
            rows = table.append_column(EVENT_ID_COLUMN, pa.array([i.decode() for i in ids], pa.string()))
            if not self.rows:
                self.since = time.monotonic()
            self.tables.setdefault(route.source.name, []).append(rows)
            self.rows += rows.num_rows
        report = dict(stream=stream, push_source=route.source.name, events=table.num_rows,
                      reclaimed=table.num_rows if reclaimed else 0, late=late, dead=len(batch.bad),
                      seconds=time.perf_counter() - began)
        self.collect()
        if commands:
            self._state_conn.send(commands)
            self._in_flight = _InFlight(len(commands), report, batch.entry_ids, sent - added)
        else:
            self._report(report, batch.entry_ids, sent - added)

    def collect(self) -> None:
        """Read the replies of the state updates in flight; an error raises (and the worker
        starts over from its pending entries)."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return
        replies = self._state_conn.receive(flight.commands)
        check_replies(replies)
        self._report(flight.report, flight.entry_ids, flight.unconfirmed - sum(replies))

    def write_offline(self) -> None:
        """Append the buffered rows offline: one Parquet file per push source."""
        for source, tables in self.tables.items():
            if not tables:
                continue
            began = time.perf_counter()
            table = pa.concat_tables(tables, promote_options="permissive")
            write_pushed(self.store.config.offline_store, source, table)
            self.tables[source] = []  # written: a retry of a failed later source skips it
            if self.observer is not None:
                self.observer.flush(FlushReport(source, table.num_rows, time.perf_counter() - began))
        self.tables, self.rows, self.since = {}, 0, time.monotonic()

    def reset(self) -> None:
        """After an error: drop the buffered rows (their entries are re-read) and the state connection."""
        self.close()
        self._state_ready = False
        self._in_flight = None
        self.tables, self.rows, self.since = {}, 0, 0.0

    def close(self) -> None:
        if self._state_conn is not None:
            self._state_conn.close()

    def _state_update(self, prepared) -> tuple[list[bytes], int]:
        """Commands for a Redis state (sent pipelined); a SQLite state, or one on a Redis
        Cluster (its calls routed per node), is updated here (then the second item is the
        number of events it added)."""
        state = self.store.aggregation_state
        if not isinstance(state, RedisAggregationState) or state.router is not None:  # SQLite, or a cluster's routing
            return [], state.add(prepared.layout, prepared.keys, prepared.times, prepared.ids, prepared.payloads,
                                 prepared.horizon_us)
        if self._state_conn is None:
            self._state_conn = RespConnection.like(state.client, name=f"featurestore-stream:{self.consumer}:state")
        if not self._state_ready:
            check_replies(self._state_conn.pipeline(SCRIPTS.load_commands()))
            self._state_ready = True
        return state.add_commands(prepared.layout, prepared.keys, prepared.times, prepared.ids, prepared.payloads,
                                  prepared.horizon_us), 0

    def _report(self, report: dict, entry_ids: Sequence[bytes], duplicates: int) -> None:
        if self.observer is None:
            return
        now = time.time()
        step = max(1, len(entry_ids) // _DELAY_SAMPLES)
        delays = tuple(max(0.0, now - int(e.split(b"-", 1)[0]) / 1000) for e in entry_ids[::step])
        self.observer.batch(BatchReport(duplicates=duplicates, delays=delays, **report))
