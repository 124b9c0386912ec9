"""Counter and histogram updates kept in process memory and added to prometheus_client's
values in batches, for the metrics a request records.

Why: prometheus_client takes a lock for every update and, with several worker processes,
also writes the value into a memory-mapped file: measured ~1.2 µs a counter increment and
~2.4 µs a histogram observation in one process, ~2.7 and ~5.6 µs with several, and a
``/predict`` request makes nine or more. Here an update is one ``list.append`` (~0.1 µs,
atomic under the GIL, so any thread may record), and ``flush`` adds a series' batch with
one update per value it changes (the sum, each bucket hit, the count).

When: before every collection of the default registry (a scrape of a single process, or
any in-process reader such as ``REGISTRY.get_sample_value``, so they see every update),
before a multiprocess scrape sums the workers' files (``monitoring.metrics.render``), as a
worker stops, and every ``FLUSH_SECONDS`` on a thread of its own once a server started it
(``start_flushing``): with several workers, a scrape answered by one sees another's
finished requests within about that, and a batch never grows past that much traffic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from bisect import bisect_left
from collections import Counter as Tally
from functools import partial
from typing import Any

from prometheus_client import REGISTRY

__all__ = ["FLUSH_SECONDS", "BatchedCounter", "BatchedHistogram", "counter", "flush", "histogram", "start_flushing"]

log = logging.getLogger("featurestore.monitoring")

#: Seconds between two flushes of a serving process.
FLUSH_SECONDS = 0.25

_series: dict[Any, BatchedCounter | BatchedHistogram] = {}  # prometheus child -> its batch, one each
_lock = threading.Lock()  # one flush at a time, and no new series while one runs (recording never waits)
_flushing_pid: int | None = None  # the process whose flush thread runs


class BatchedCounter:
    """A counter child's increments: ``inc(amount)`` (the amount is not optional)."""

    __slots__ = ("inc", "_pending", "_child")

    def __init__(self, child: Any):
        self._child = child
        self._pending: list[float] = []
        self.inc = self._pending.append

    def _add(self) -> None:
        amounts = _take(self._pending)
        if amounts:
            self._child.inc(sum(amounts))


class BatchedHistogram:
    """A histogram child's observations: ``observe(value)``. ``counted_by``: a counter child
    that counts the same events (an HTTP request's count beside its duration)."""

    __slots__ = ("observe", "_pending", "_child", "_counter", "_bucket")

    def __init__(self, child: Any, counted_by: Any = None):
        self._child, self._counter = child, counted_by
        self._pending: list[float] = []
        self.observe = self._pending.append
        # Histogram.observe's bucket: the first whose upper bound is >= the value. These
        # are prometheus_client's private attributes: a release without them gets one
        # ``observe`` per value instead (slower, still exact).
        bounds = getattr(child, "_upper_bounds", None)
        fits = bounds is not None and hasattr(child, "_sum") and len(getattr(child, "_buckets", ())) == len(bounds)
        self._bucket = partial(bisect_left, bounds) if fits else None

    def _add(self) -> None:
        values = _take(self._pending)
        if not values:
            return
        # prometheus_client has no call for many observations at once: a histogram child
        # keeps a value for the sum and one per bucket (not cumulative); ``+Inf`` is the count.
        child = self._child
        if self._bucket is None:
            for value in values:
                child.observe(value)
        else:
            child._sum.inc(sum(values))
            for bucket, n in Tally(map(self._bucket, values)).items():
                child._buckets[bucket].inc(n)
        if self._counter is not None:
            self._counter.inc(len(values))


def counter(child: Any) -> BatchedCounter:
    """The batch of a labelled counter child (the same one for the same child)."""
    return _batch(child, BatchedCounter, child)


def histogram(child: Any, counted_by: Any = None) -> BatchedHistogram:
    """The batch of a labelled histogram child (or an unlabelled histogram)."""
    return _batch(child, BatchedHistogram, child, counted_by)


def _batch(child: Any, kind: type, *args: Any) -> Any:
    series = _series.get(child)
    if series is None:
        with _lock:
            series = _series.get(child)
            if series is None:
                series = _series[child] = kind(*args)
    return series


def _take(pending: list) -> list:
    """The values recorded so far, removed: values appended meanwhile by other threads go
    to the end and stay for the next flush (each step is one operation under the GIL)."""
    n = len(pending)
    taken = pending[:n]
    del pending[:n]
    return taken


def flush() -> None:
    """Add every pending update to prometheus_client's values."""
    with _lock:
        for series in _series.values():
            if series._pending:
                series._add()


def start_flushing() -> None:
    """Flush every ``FLUSH_SECONDS`` from now on, on a daemon thread (once per process)."""
    global _flushing_pid
    with _lock:
        if _flushing_pid == os.getpid():
            return
        _flushing_pid = os.getpid()
    threading.Thread(target=_flush_forever, name="metric-batches", daemon=True).start()


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_SECONDS)
        try:
            flush()
        except Exception:  # the metrics folder went as the server stops, say: log it, try on
            log.warning("metric updates could not be added", exc_info=True)


def _forget_parent() -> None:
    """In a forked child: the parent's pending updates are the parent's to add, and its
    lock may have been held by its thread, which did not come along (``start_flushing``
    starts one in the child)."""
    global _lock
    _lock = threading.Lock()
    for series in _series.values():
        del series._pending[:]


class _FlushFirst:
    """Registered on the default registry before the metrics it batches, so that a
    collection adds the pending updates before it reads any value."""

    def collect(self) -> list:
        flush()
        return []


REGISTRY.register(_FlushFirst())
os.register_at_fork(after_in_child=_forget_parent)
