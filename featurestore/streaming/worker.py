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

The worker is the loop; ``consumer.py`` speaks the consumer-group protocol (1, 4, claims)
and ``applier.py`` applies batches (2, 3).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence

from featurestore.clock import TimeRange
from featurestore.errors import FeatureStoreError, StoreUnavailableError
from featurestore.streaming.applier import BatchApplier, BatchReport, FlushReport, Route, StreamObserver, build_routes
from featurestore.streaming.config import StreamSettings
from featurestore.streaming.consumer import GroupConsumer
from featurestore.streaming.decode import DecodedBatch
from featurestore.streaming.resp import RespConnection, RespError

__all__ = ["BatchReport", "FlushReport", "StreamObserver", "StreamWorker"]

log = logging.getLogger("featurestore.stream")

_ROUND = 0.25  # seconds of back-to-back batches per step (claims, flushes and reloads run between)


# What stops a step and starts it over (``run`` retries): the stores or Redis are away.
# Any other error while applying is pinned on the entries that cause it.
_OUTAGES = (ConnectionError, OSError, RespError, StoreUnavailableError)


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
        # Event times are checked against the worker's clock, like lateness.
        self.times = TimeRange(store.config.limits.max_future, self.clock)
        self.group = GroupConsumer(settings, self.consumer)
        self.applier = BatchApplier(store, self.consumer, self.clock, observer)
        self._routes: dict[str, Route] = {}
        self._recover = True  # re-read our own pending entries before new ones
        self._last_claim = 0.0
        self._last_refresh = 0.0

    @property
    def conn(self) -> RespConnection:
        """The connection that reads the streams."""
        return self.group.conn

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
                except _OUTAGES as exc:
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
        self.applier.collect()  # every state update is in place before anything is acknowledged
        self.group.send_dead_letters()
        self.applier.write_offline()
        self.group.acknowledge()

    def close(self) -> None:
        """Flush what was applied (best effort) and drop the connections."""
        try:
            self.flush()
            self.group.forget(list(self._routes))
        except (ConnectionError, OSError, RespError, FeatureStoreError) as exc:
            log.warning("stream worker %s stopped without flushing (its entries stay pending and will be "
                        "re-applied): %s", self.consumer, exc)
        finally:
            self.group.close()
            self.applier.close()

    def _reset(self) -> None:
        """After an error: forget everything not acknowledged and re-read it from our
        pending entries (re-applying is idempotent), on fresh connections."""
        self.group.reset()
        self.applier.reset()
        self._recover = True

    # -- reading -----------------------------------------------------------------------

    def _block_ms(self) -> int:
        block = self.settings.block_ms
        if self.applier.rows:  # do not sleep past a due flush
            left = self.settings.flush_seconds - (time.monotonic() - self.applier.since)
            block = max(1, min(block, int(left * 1000)))
        return block

    def _read_new(self) -> int:
        """Read and apply new entries for up to ``_ROUND`` seconds, while there are any."""
        handled, began = 0, time.monotonic()
        while True:
            if not self.group.reading:
                self.group.send_read(list(self._routes), self._block_ms())
            reply = self._receive_read()
            if reply:  # more is likely: ask for it now, so Redis reads while this batch is decoded
                self.group.send_read(list(self._routes), self._block_ms())
            handled += self._apply_reply(reply)
            if not reply or time.monotonic() - began > _ROUND or self._flush_due():
                break
        self.applier.collect()  # when a step returns, what it read is applied online
        return handled

    def _receive_read(self):
        return self.group.receive_read(lambda: self._refresh(force=True))

    def _drain(self) -> int:
        """Apply the answer of a read sent ahead, so the connection is free for other commands."""
        if not self.group.reading:
            return 0
        return self._apply_reply(self._receive_read())

    def _apply_reply(self, reply) -> int:
        handled = 0
        for stream, entries in reply or ():
            handled += self._apply(stream.decode(), entries, reclaimed=False)
        return handled

    def _read_own_pending(self) -> int:
        handled = self._drain()
        for stream in self._routes:
            start = b"0"
            while True:
                entries = self.group.read_own_pending(stream, start)
                if not entries:
                    break
                handled += self._apply(stream, entries, reclaimed=True)
                start = entries[-1][0]
        return handled

    def _claim(self) -> int:
        handled = self._drain()
        for stream in self._routes:
            start = b"0-0"
            for _ in range(100):  # at most 100 batches per round; the next round goes on
                start, entries, deleted = self.group.claim(stream, start)
                if entries:
                    log.info("stream %s: claimed %d entries pending on a stopped consumer", stream, len(entries))
                    handled += self._apply(stream, entries, reclaimed=True)
                self.group.ack_later(stream, deleted)
                if start == b"0-0":
                    break
        return handled

    def _apply(self, stream: str, entries: Sequence, reclaimed: bool) -> int:
        route = self._routes.get(stream)
        if route is None:
            return 0
        acked = self.group.acks.setdefault(stream, {})
        gone = [e[0] for e in entries if e[1] is None]  # deleted from the stream while pending
        entries = [e for e in entries if e[1] is not None and e[0] not in acked]
        self.group.ack_later(stream, gone)
        if not entries:
            return 0
        batch = route.decoder.decode(entries)  # never raises: bad entries come back with reasons
        try:
            self.applier.apply(route, stream, batch, reclaimed)
        except _OUTAGES:
            raise
        except Exception as exc:  # noqa: BLE001 - a bad entry must not stop the worker (see below)
            batch = self._apply_one_by_one(route, stream, batch, reclaimed, entries, exc)
        if batch.bad:
            self.group.dead_letter(stream, batch.bad)
        # Queued before the state updates are confirmed: acknowledge() runs only after collect().
        self.group.ack_later(stream, batch.entry_ids)
        self.group.ack_later(stream, [b[0] for b in batch.bad])
        return len(entries)

    def _apply_one_by_one(self, route: Route, stream: str, batch: DecodedBatch, reclaimed: bool,
                          entries: Sequence, exc: Exception) -> DecodedBatch:
        """Apply a batch whose apply failed (not for an outage) entry by entry; the entries
        that fail alone go to the dead letters with the error. A failing entry would
        otherwise stay pending and stop every worker that reads it again. Re-applying the
        others is harmless: online writes keep the newer time and events count once by id."""
        log.warning("stream %s: a batch of %d entries failed to apply (%s: %s); applying them one by one",
                    stream, len(batch.entry_ids), type(exc).__name__, exc)
        fields = {entry_id: list(f) for entry_id, f in entries}
        applied = DecodedBatch(batch.table.slice(0, 0), [], [], list(batch.bad))
        for j, entry_id in enumerate(batch.entry_ids):
            one = DecodedBatch(batch.table.slice(j, 1), [entry_id], [batch.event_ids[j]], [])
            try:
                self.applier.apply(route, stream, one, reclaimed)
            except _OUTAGES:
                raise
            except Exception as error:  # noqa: BLE001
                reason = f"entry could not be applied ({type(error).__name__}: {str(error)[:200]})"
                applied.bad.append((entry_id, fields.get(entry_id, []), reason))
                continue
            applied.entry_ids.append(entry_id)
            applied.event_ids.append(batch.event_ids[j])
        return applied

    def _flush_due(self) -> bool:
        if not (self.applier.rows or self.group.acks or self.group.dead):
            return False
        return (self.applier.rows >= self.settings.flush_events
                or time.monotonic() - self.applier.since >= self.settings.flush_seconds)

    # -- definitions and groups ----------------------------------------------------------

    def _refresh(self, force: bool = False) -> None:
        """(Re)build the routes when definitions change (checked once a second)."""
        now = time.monotonic()
        if not force and self._routes and now - self._last_refresh < 1.0:
            return
        self._last_refresh = now
        if self.store.refresh() or not self._routes or force:
            self._routes = build_routes(self.store.contents, self.settings, self.times)
        self.group.create_groups(list(self._routes))
