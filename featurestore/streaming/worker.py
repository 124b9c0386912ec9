"""``featurestore stream``: a consumer-group worker from Redis Streams into the stores.

Each stream feeds one push source: its entries are rows of that source (``decode.py``).
One worker's loop, and why nothing is lost or counted twice:

1. **Read** new entries with ``XREADGROUP`` in the group (workers in one group share
   the streams; each entry goes to one of them and stays *pending* until acknowledged).
2. **Apply online**, right away: aggregation views add the events to their state
   (idempotent by event id; events older than the longest window are dropped online
   and counted as late), other views get newer-timestamp-wins writes. A bad entry goes
   to ``{stream}:dead`` with the reason.
3. **Append offline** in batches: every ``flush_seconds`` (or ``flush_events``) the
   buffered rows, with their event ids in ``_event_id``, become one Parquet file per
   push source, written atomically.
4. **Acknowledge** (``XACK``) only after that file is in place.

A worker killed anywhere before 4 leaves its entries pending. Restarted under the same
consumer name it first re-reads its own pending entries; under another name, any worker
re-claims entries that sat pending ``claim_idle_seconds`` (``XAUTOCLAIM``). Re-applying
is harmless: online adds are idempotent by event id, and the batch side counts one row
per event id however often the row was appended.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pyarrow as pa

from featurestore.definitions import FeatureView, PushSource
from featurestore.errors import ConfigError, FeatureStoreError, NotFoundError, StoreUnavailableError
from featurestore.online.base import EVENT_TIMESTAMP
from featurestore.online_read import online_view
from featurestore.source_tables import write_pushed
from featurestore.streaming.config import StreamSettings, StreamSpec
from featurestore.streaming.decode import EntryDecoder
from featurestore.streaming.events import EVENT_ID_COLUMN
from featurestore.streaming.ingest import prepare_events
from featurestore.streaming.resp import RespConnection, RespError, pack
from featurestore.streaming.state import SCRIPTS, RedisAggregationState

__all__ = ["BatchReport", "FlushReport", "StreamObserver", "StreamWorker"]

log = logging.getLogger("featurestore.stream")

_DELAY_SAMPLES = 64  # entries per batch whose XADD-to-applied delay is reported
_ACKS_PER_COMMAND = 10_000
_ROUND = 0.25  # seconds of back-to-back batches per step (claims, flushes and reloads run between)


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
class _Route:
    spec: StreamSpec
    source: PushSource
    views: list[FeatureView]
    decoder: EntryDecoder


@dataclass
class _Pending:
    """Entries applied online but not yet appended offline (so not acknowledged)."""

    tables: dict[str, list[pa.Table]] = field(default_factory=dict)  # by push source
    acks: dict[str, dict[bytes, None]] = field(default_factory=dict)  # by stream, in order
    dead: list[bytes] = field(default_factory=list)  # dead-letter XADDs to send before acknowledging
    rows: int = 0
    since: float = 0.0


@dataclass
class _InFlight:
    """A batch whose state updates were sent and whose replies are not read yet."""

    commands: int
    report: dict
    entry_ids: list[bytes]
    unconfirmed: int  # events sent; those the replies do not count as added were already there


class StreamWorker:
    """Consume ``settings.streams`` into ``store`` until ``run``'s ``stop`` is set.

    ``clock`` (default: the store's) decides which events are late; ``observer`` gets a
    report per batch and per offline flush.

    Throughput: the next read is sent before a batch is decoded, and a batch's state
    updates are sent without waiting for their replies (read before the next batch's,
    and always before acknowledging), so Redis works while Python decodes.
    """

    def __init__(self, store, settings: StreamSettings, *, clock: Callable[[], float] | None = None,
                 observer: StreamObserver | None = None):
        self.store = store
        self.settings = settings
        self.clock = clock or store.clock
        self.observer = observer
        self.consumer = settings.consumer or f"{socket.gethostname()}-{os.getpid()}"
        self.conn = RespConnection(settings.redis_url, name=f"featurestore-stream:{self.consumer}")
        self._state_conn: RespConnection | None = None  # state updates, pipelined (Redis state only)
        self._state_ready = False
        self._routes: dict[str, _Route] = {}
        self._pending = _Pending()
        self._reading: bytes | None = None  # an XREADGROUP sent and not yet answered
        self._in_flight: _InFlight | None = None
        self._recover = True  # re-read our own pending entries before new ones
        self._last_claim = 0.0
        self._last_refresh = 0.0
        self._groups_ready = False

    # -- the loop ----------------------------------------------------------------------

    def run(self, stop: threading.Event | None = None) -> None:
        """Work until ``stop`` is set, then flush and acknowledge what was applied."""
        stop = stop or threading.Event()
        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    self.step()
                    backoff = 0.2
                except (ConnectionError, OSError, RespError, StoreUnavailableError) as exc:
                    log.warning("stream worker %s: %s; retrying in %.1fs", self.consumer, exc, backoff)
                    self._reset()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self.close()

    def step(self) -> int:
        """One round: own pending entries (after a start or an error), abandoned ones (every
        so often), then new ones; flush when due. Returns the entries handled; what they
        change online is in place when it returns."""
        self._refresh()
        handled = 0
        if self._recover:
            handled += self._read_own_pending()
            self._recover = False
        if time.monotonic() - self._last_claim >= min(self.settings.claim_idle_seconds / 4, 5.0):
            handled += self._claim()
            self._last_claim = time.monotonic()
        handled += self._read_new()
        if self._flush_due():
            self.flush()
        return handled

    def flush(self) -> None:
        """Append the buffered rows offline, then acknowledge their entries."""
        self._drain()
        self._collect()  # every state update is in place before anything is acknowledged
        pending = self._pending
        if pending.dead:
            self._check(self.conn.pipeline(pending.dead))
            pending.dead = []
        for source, tables in pending.tables.items():
            if not tables:
                continue
            began = time.perf_counter()
            table = pa.concat_tables(tables, promote_options="permissive")
            write_pushed(self.store.config.offline_store, source, table)
            pending.tables[source] = []  # written: a retry of a failed later source skips it
            if self.observer is not None:
                self.observer.flush(FlushReport(source, table.num_rows, time.perf_counter() - began))
        commands = []
        for stream, ids in pending.acks.items():
            ids = list(ids)
            for start in range(0, len(ids), _ACKS_PER_COMMAND):
                commands.append(pack([b"XACK", stream, self.settings.group, *ids[start : start + _ACKS_PER_COMMAND]]))
        if commands:
            self._check(self.conn.pipeline(commands))
        self._pending = _Pending(since=time.monotonic())

    def close(self) -> None:
        """Flush what was applied (best effort) and drop the connections."""
        try:
            self.flush()
            self._forget_consumer()
        except (ConnectionError, OSError, RespError, FeatureStoreError) as exc:
            log.warning("stream worker %s stopped without flushing (its entries stay pending and will be "
                        "re-applied): %s", self.consumer, exc)
        finally:
            self.conn.close()
            if self._state_conn is not None:
                self._state_conn.close()

    def _reset(self) -> None:
        """After an error: forget everything not acknowledged and re-read it from our
        pending entries (re-applying is idempotent), on fresh connections."""
        self.conn.close()
        if self._state_conn is not None:
            self._state_conn.close()
        self._state_ready = False
        self._reading, self._in_flight = None, None
        self._pending = _Pending()
        self._recover = True

    # -- reading -----------------------------------------------------------------------

    def _read_command(self) -> bytes:
        s = self.settings
        block = s.block_ms
        if self._pending.rows:  # do not sleep past a due flush
            left = s.flush_seconds - (time.monotonic() - self._pending.since)
            block = max(1, min(block, int(left * 1000)))
        streams = list(self._routes)
        return pack([b"XREADGROUP", b"GROUP", s.group, self.consumer, b"COUNT", s.batch_size, b"BLOCK", block,
                     b"STREAMS", *streams, *([b">"] * len(streams))])

    def _read_new(self) -> int:
        """Read and apply new entries for up to ``_ROUND`` seconds, while there are any."""
        handled, began = 0, time.monotonic()
        while True:
            if self._reading is None:
                self._reading = self._read_command()
                self.conn.send([self._reading])
            reply = self._receive_read()
            if reply:  # more is likely: ask for it now, so Redis reads while this batch is decoded
                self._reading = self._read_command()
                self.conn.send([self._reading])
            handled += self._apply_reply(reply)
            if not reply or time.monotonic() - began > _ROUND or self._flush_due():
                break
        self._collect()  # when a step returns, what it read is applied online
        return handled

    def _receive_read(self):
        command, self._reading = self._reading, None
        try:
            return self.conn.receive_group()
        except RespError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._groups_ready = False  # the stream or group was deleted: create them again
            self._refresh(force=True)
            return self.conn.read_group(command)

    def _drain(self) -> int:
        """Apply the answer of a read sent ahead, so the connection is free for other commands."""
        if self._reading is None:
            return 0
        return self._apply_reply(self._receive_read())

    def _apply_reply(self, reply) -> int:
        handled = 0
        for stream, entries in reply or ():
            handled += self._apply(stream.decode(), entries, reclaimed=False)
        return handled

    def _read_own_pending(self) -> int:
        """Entries delivered to this consumer name before and never acknowledged (a
        restart, or a lost connection)."""
        handled = self._drain()
        for stream in self._routes:
            start = b"0"
            while True:
                command = pack([b"XREADGROUP", b"GROUP", self.settings.group, self.consumer, b"COUNT",
                                self.settings.batch_size, b"STREAMS", stream, start])
                reply = self.conn.read_group(command)
                entries = reply[0][1] if reply else []
                if not entries:
                    break
                handled += self._apply(stream, entries, reclaimed=True)
                start = entries[-1][0]
        return handled

    def _claim(self) -> int:
        """Take over entries pending on other consumers for ``claim_idle_seconds``."""
        handled = self._drain()
        idle_ms = int(self.settings.claim_idle_seconds * 1000)
        for stream in self._routes:
            start = b"0-0"
            for _ in range(100):  # at most 100 batches per round; the next round goes on
                reply = self.conn.call(b"XAUTOCLAIM", stream, self.settings.group, self.consumer, idle_ms, start,
                                       b"COUNT", self.settings.batch_size)
                start, entries = reply[0], reply[1]
                deleted = reply[2] if len(reply) > 2 else []
                if entries:
                    log.info("stream %s: claimed %d entries pending on a stopped consumer", stream, len(entries))
                    handled += self._apply(stream, entries, reclaimed=True)
                self._ack_later(stream, deleted)
                if start == b"0-0":
                    break
        return handled

    # -- applying ----------------------------------------------------------------------

    def _apply(self, stream: str, entries: Sequence, reclaimed: bool) -> int:
        route = self._routes.get(stream)
        if route is None:
            return 0
        began = time.perf_counter()
        acked = self._pending.acks.setdefault(stream, {})
        gone = [e[0] for e in entries if e[1] is None]  # deleted from the stream while pending
        entries = [e for e in entries if e[1] is not None and e[0] not in acked]
        self._ack_later(stream, gone)
        if not entries:
            return 0
        batch = route.decoder.decode(entries)
        if batch.bad:
            self._dead_letter(stream, batch.bad)
        table, ids = batch.table, batch.event_ids
        late: dict[str, int] = {}
        added = sent = 0  # events added to aggregation states (synchronously) / sent to them
        commands: list[bytes] = []
        if table.num_rows:
            now_us = int(self.clock() * 1_000_000)
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
            if not self._pending.rows:
                self._pending.since = time.monotonic()
            self._pending.tables.setdefault(route.source.name, []).append(rows)
            self._pending.rows += rows.num_rows
        self._ack_later(stream, batch.entry_ids)
        self._ack_later(stream, [b[0] for b in batch.bad])
        report = dict(stream=stream, push_source=route.source.name, events=table.num_rows,
                      reclaimed=table.num_rows if reclaimed else 0, late=late, dead=len(batch.bad),
                      seconds=time.perf_counter() - began)
        self._collect()
        if commands:
            self._state_conn.send(commands)
            self._in_flight = _InFlight(len(commands), report, batch.entry_ids, sent - added)
        else:
            self._report(report, batch.entry_ids, sent - added)
        return len(entries)

    def _state_update(self, prepared) -> tuple[list[bytes], int]:
        """Commands for a Redis state (sent pipelined); a SQLite state is updated here
        (then the second item is the number of events it added)."""
        state = self.store.aggregation_state
        if not isinstance(state, RedisAggregationState):
            return [], state.add(prepared.layout, prepared.keys, prepared.times, prepared.ids, prepared.payloads,
                                 prepared.horizon_us)
        if self._state_conn is None:
            self._state_conn = RespConnection.like(state.client, name=f"featurestore-stream:{self.consumer}:state")
        if not self._state_ready:
            self._check(self._state_conn.pipeline([pack([b"SCRIPT", b"LOAD", body]) for body in SCRIPTS.values()]))
            self._state_ready = True
        return state.add_commands(prepared.layout, prepared.keys, prepared.times, prepared.ids, prepared.payloads,
                                  prepared.horizon_us), 0

    def _collect(self) -> None:
        """Read the replies of the state updates in flight; an error raises (and the run
        loop starts over from the pending entries)."""
        flight, self._in_flight = self._in_flight, None
        if flight is None:
            return
        replies = self._state_conn.receive(flight.commands)
        self._check(replies)
        self._report(flight.report, flight.entry_ids, flight.unconfirmed - sum(replies))

    def _report(self, report: dict, entry_ids: list[bytes], duplicates: int) -> None:
        if self.observer is None:
            return
        now = time.time()
        step = max(1, len(entry_ids) // _DELAY_SAMPLES)
        delays = tuple(max(0.0, now - int(e.split(b"-", 1)[0]) / 1000) for e in entry_ids[::step])
        self.observer.batch(BatchReport(duplicates=duplicates, delays=delays, **report))

    @staticmethod
    def _check(replies: list) -> None:
        for reply in replies:
            if isinstance(reply, RespError):
                raise reply

    def _ack_later(self, stream: str, ids: Sequence[bytes]) -> None:
        acks = self._pending.acks.setdefault(stream, {})
        for entry_id in ids:
            acks[entry_id] = None

    def _dead_letter(self, stream: str, bad: list[tuple[bytes, list[bytes], str]]) -> None:
        """Queue bad entries for ``{stream}:dead`` (sent at the flush, before they are acknowledged)."""
        for entry_id, fields, reason in bad:
            log.warning("stream %s: entry %s is bad (%s); moved to %s:dead", stream, entry_id.decode(), reason, stream)
            self._pending.dead.append(pack([b"XADD", f"{stream}:dead", b"MAXLEN", b"~", b"100000", b"*",
                                            b"entry_id", entry_id, b"error", reason, *fields]))

    def _flush_due(self) -> bool:
        p = self._pending
        if not (p.rows or p.acks or p.dead):
            return False
        return p.rows >= self.settings.flush_events or time.monotonic() - p.since >= self.settings.flush_seconds

    # -- definitions and groups ----------------------------------------------------------

    def _refresh(self, force: bool = False) -> None:
        """(Re)build the routes when definitions change (checked once a second)."""
        now = time.monotonic()
        if not force and self._routes and now - self._last_refresh < 1.0:
            return
        self._last_refresh = now
        if self.store.refresh() or not self._routes or force:
            self._routes = self._build_routes()
        if not self._groups_ready:
            start = b"0" if self.settings.start == "earliest" else b"$"
            commands = [pack([b"XGROUP", b"CREATE", stream, self.settings.group, start, b"MKSTREAM"])
                        for stream in self._routes]
            if self._reading is None:  # (a read in flight: its NOGROUP answer brings us back here)
                for stream, reply in zip(self._routes, self.conn.pipeline(commands)):
                    if isinstance(reply, RespError) and "BUSYGROUP" not in str(reply):
                        raise reply
                    if not isinstance(reply, RespError):
                        log.info("created consumer group %s on stream %s", self.settings.group, stream)
                self._groups_ready = True

    def _build_routes(self) -> dict[str, _Route]:
        contents = self.store.contents
        routes = {}
        for spec in self.settings.streams:
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
            routes[spec.stream] = _Route(spec, source, views,
                                         EntryDecoder(spec.stream, source, views, self.settings.id_field))
        return routes

    def _forget_consumer(self) -> None:
        """Leave the group's consumer list tidy: delete this consumer if nothing is pending on it."""
        for stream in self._routes:
            pending = self.conn.call(b"XPENDING", stream, self.settings.group, b"-", b"+", b"1", self.consumer)
            if not pending:
                self.conn.call(b"XGROUP", b"DELCONSUMER", stream, self.settings.group, self.consumer)
