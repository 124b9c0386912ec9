"""The serving log's process: what a server worker's ``ServingLogProcess`` (``process.py``)
hands its logged rows to, so that turning them into Arrow and writing Parquet costs the
worker's interpreter lock nothing.

``serve`` runs here: it reads the worker's messages from the pipe, turns each batch of
entries' columns into Arrow as it comes (``records.columns_tables``: the same tables, and
the same drops of rows that do not fit, as the in-process writer's), and feeds the
tables to an ordinary ``ServingLogWriter`` (``writer.py``: flush points, per-day files, drops), with
the worker's settings and process id (the files are named as the worker would have named
them). The requests whose entries name a shadow candidate are scored here too, on a
thread of ``shadow.ShadowScoring`` (given ``open_store``, which opens the server's store
when a first candidate needs it). Messages:

- ``(ROWS, folders, items)``: ``folders`` the folder of each log name in ``items`` (the
  worker knows the current definitions, the writer needs no store), ``items`` a list of
  ``(name, rows, n, types)``: ``rows`` a ``records.EntryColumns`` (a group of entries'
  values, gathered by the worker), or columns or a table as given to
  ``ServingLogWriter.write``; not answered (one pipe write per batch is all the worker
  spends on it);
- ``(FLUSH,)``: write everything received so far (the shadow rows of those rows too,
  waited for up to ``SHADOW_FLUSH_SECONDS``), then answer as to ``COUNTS``;
- ``(COUNTS,)``: answer with the rows written and dropped since the last answer, the
  shadow requests scored per candidate and outcome, and the shadow rows added (the rows
  beyond those sent, which the worker holds as sent until they are reported written),
  which the worker counts in its metrics.

It runs behind the worker (``child_process.run_behind_requests``), and writes what it holds
before exiting, whether the worker closes the pipe, dies, or the process is sent SIGTERM;
it ignores SIGINT (a Ctrl-C reaches the whole process group: the worker, stopping, closes
the pipe, and the rows it still sends are written).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from featurestore.child_process import messages, run_behind_requests
from featurestore.serving_log.records import EntryColumns, columns_tables
from featurestore.serving_log.shadow import ShadowScoring, shadowed
from featurestore.serving_log.writer import UNWRITABLE, ServingLogWriter

__all__ = ["COUNTS", "FLUSH", "ROWS", "serve"]

ROWS, FLUSH, COUNTS = "rows", "flush", "counts"
#: Seconds a flush (or the process's end) waits for the shadow rows of the rows before it.
SHADOW_FLUSH_SECONDS = 30.0

log = logging.getLogger("featurestore.serving_log")


class _Counts:
    """Rows written and dropped since the last answer (counted on the writer's thread,
    taken on the main one)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._written: Counter = Counter()
        self._dropped: Counter = Counter()

    def written(self, name: str, n: int) -> None:
        with self._lock:
            self._written[name] += n

    def dropped(self, name: str, n: int, reason: str) -> None:
        with self._lock:
            self._dropped[name, reason] += n

    def take(self) -> tuple[tuple, tuple]:
        """((name, n), ...), ((name, reason, n), ...) since the last call."""
        with self._lock:
            written, self._written = tuple(self._written.items()), Counter()
            dropped, self._dropped = tuple((*key, n) for key, n in self._dropped.items()), Counter()
        return written, dropped


def serve(conn, root: str, queue_rows: int, flush_rows: int, flush_seconds: float, pid: int,
          open_store: Callable[[], Any] | None = None) -> None:
    """The process's loop, until the worker sends ``None`` or its end of the pipe closes
    (``open_store``: opens the server's store, for the shadow candidates: ``shadow.py``)."""
    signal.signal(signal.SIGTERM, _exit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    run_behind_requests()  # under load its rows wait; past the worker's queue_rows they are dropped and counted
    counts = _Counts()
    folders: dict[str, Path] = {}
    writer = ServingLogWriter(root, queue_rows=queue_rows, flush_rows=flush_rows, flush_seconds=flush_seconds,
                              on_written=counts.written, on_dropped=counts.dropped, folder=folders.__getitem__,
                              pid=pid)
    shadows = ShadowScoring(open_store, writer.write, queue_rows) if open_store is not None else None
    try:
        for message in messages(conn):
            if message[0] == ROWS:
                folders.update(message[1])
                _write(writer, counts, message[2], shadows)
                continue  # no answer: the worker does not wait for one
            if message[0] == FLUSH:
                if shadows is not None:
                    shadows.wait(SHADOW_FLUSH_SECONDS)
                writer.flush()
            conn.send((*counts.take(), *(shadows.take_counts() if shadows is not None else ((), ()))))
    finally:
        if shadows is not None:
            shadows.close(SHADOW_FLUSH_SECONDS)
        writer.close(timeout=None)  # what it holds is written: the worker counts nothing it was not told


def _write(writer: ServingLogWriter, counts: _Counts, items: list[tuple], shadows: ShadowScoring | None) -> None:
    """Queue the rows of ``items`` in ``writer``: entries' columns (``records.EntryColumns``)
    turned into Arrow here and now, while their values are still in the CPU's caches (on
    the writer's thread, a slice later, that cost twice as much); the requests that name a
    shadow candidate queued for ``shadows`` as well."""
    for name, rows, n, types in items:
        if isinstance(rows, EntryColumns):
            written, scored = shadowed(rows) if shadows is not None else (rows, {})
            for (candidate, extra), columns in scored.items():
                shadows.add(name, candidate, columns, extra)
            if written is not None:
                for table in columns_tables([written], partial(_unfit, counts, name)):
                    writer.write(name, table)
        else:
            writer.write(name, rows, types)


def _unfit(counts: _Counts, name: str, n: int, exc: Exception) -> None:
    log.warning("serving log %r: %d row(s) do not fit their columns and are dropped: %s", name, n, exc)
    counts.dropped(name, n, UNWRITABLE)


def _exit(signum, frame) -> None:
    raise SystemExit(0)
