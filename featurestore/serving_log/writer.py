"""``ServingLogWriter``: rows logged on the request path, written to Parquet off it.

``write`` and ``write_entry`` only append to an in-memory queue (no Arrow, no I/O on the
request thread; an entry, ``records.LogEntry``, is only references to the answer). A
background thread turns what waits into Arrow a slice at a time (every ``SLICE_SECONDS``
or ``SLICE_REQUESTS`` requests, whichever comes first), so that it never holds the GIL
long, which the request threads would wait for; and writes Parquet files every
``flush_seconds`` or as soon as ``flush_rows`` rows wait, one file per log name and date,
each written atomically (``offline/files.py``). At most ``queue_rows`` rows wait, queued
or converted: beyond that a request's rows are dropped and counted, never waited for, so
a slow disk costs log rows, not latency. Rows that cannot be written (a full disk, values
that do not fit their column type) are dropped and counted too. So every row handed to
``write`` or ``write_entry`` ends up in a file or in ``dropped``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.errors import FeatureStoreError
from featurestore.offline.files import write_parquet_atomic
from featurestore.serving_log.layout import TIME_TYPE, log_folder
from featurestore.serving_log.records import LogEntry, entries_tables

__all__ = ["QUEUE_FULL", "SLICE_REQUESTS", "SLICE_SECONDS", "UNWRITABLE", "ServingLogWriter"]

log = logging.getLogger("featurestore.serving_log")

#: Reasons for dropped rows (a metric label).
QUEUE_FULL = "queue_full"
UNWRITABLE = "unwritable"

#: How often queued requests are turned into Arrow: a few ms of work each time, not one
#: burst of tens of ms per file.
SLICE_SECONDS = 0.03
SLICE_REQUESTS = 64

#: ``(log name, rows)``, ``(log name, rows, reason)``: how a process counts rows in its metrics.
Written = Callable[[str, int], None]
Dropped = Callable[[str, int, str], None]

Columns = Mapping[str, Sequence]


class ServingLogWriter:
    """Appends rows to the serving logs under ``offline_root`` from a background thread;
    ``folder(name)``, when given, says where each log lives instead (``layout.log_folder``)."""

    def __init__(self, offline_root: str | Path, *, queue_rows: int = 100_000, flush_rows: int = 10_000,
                 flush_seconds: float = 2.0, on_written: Written | None = None, on_dropped: Dropped | None = None,
                 folder: Callable[[str], Path] | None = None, pid: int | None = None):
        """``pid``: the process id in the file names (default: this process's; the serving
        log's process writes under its worker's, ``process.py``)."""
        self.root = Path(offline_root)
        self._pid = pid
        self._folder = folder or (lambda name: log_folder(self.root, name))
        self.queue_rows, self.flush_rows, self.flush_seconds = queue_rows, flush_rows, flush_seconds
        self._on_written, self._on_dropped = on_written, on_dropped
        self.written = 0
        self.dropped = 0
        # (name, a LogEntry, columns or a table, row count, types): not yet Arrow
        self._queue: list[tuple[str, LogEntry | Columns | pa.Table, int, Mapping[str, pa.DataType] | None]] = []
        self._tables: dict[str, list[pa.Table]] = {}  # converted, for the next files (the writer's thread only)
        self._waiting = 0  # rows queued or converted, not yet written
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._asked = self._done = 0  # flush generations asked for and finished
        self._failing = False
        self._oldest = 0.0  # monotonic time the oldest waiting rows came
        self._oldest_queued = 0.0  # and the oldest of the queue

    # -- the request side -------------------------------------------------------------

    def write(self, name: str, rows: Columns | pa.Table, types: Mapping[str, pa.DataType] | None = None) -> bool:
        """Queue ``rows`` (a table, or columns of equal length with their Arrow ``types``,
        any left out inferred) for log ``name``; False when they were dropped instead."""
        n = rows.num_rows if isinstance(rows, pa.Table) else len(next(iter(rows.values()), ()))
        return self._enqueue(name, rows, n, types)

    def write_entry(self, name: str, entry: LogEntry) -> bool:
        """Queue the rows of ``entry`` for log ``name``, turned into Arrow on the writer's
        thread; False when they were dropped instead."""
        return self._enqueue(name, entry, entry.rows, None)

    def _enqueue(self, name: str, rows, n: int, types) -> bool:
        with self._cond:
            if self._closed or self._waiting + n > self.queue_rows:
                self._count_dropped(name, n, QUEUE_FULL)
                return False
            now = None
            if not self._waiting:
                self._oldest = now = time.monotonic()
            if not self._queue:
                self._oldest_queued = now or time.monotonic()
            self._queue.append((name, rows, n, types))
            self._waiting += n
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="featurestore-serving-log", daemon=True)
                self._thread.start()
            if len(self._queue) in (1, SLICE_REQUESTS) or self._waiting >= self.flush_rows:
                self._cond.notify()
        return True

    # -- control ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued so far now; False when that took longer than ``timeout``."""
        with self._cond:
            if self._thread is None:
                return True
            self._asked += 1
            target = self._asked
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._done >= target, timeout)

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued and stop the thread; later rows are dropped."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    # -- the background thread --------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (flush := self._flush_due()) and not self._slice_due():
                    self._cond.wait(self._wait_time())
                if flush:  # everything waiting goes into the files now
                    batch, self._queue, self._waiting = self._queue, [], 0
                else:
                    batch, self._queue = self._queue[:SLICE_REQUESTS], self._queue[SLICE_REQUESTS:]
                    self._oldest_queued = time.monotonic()
                generation, closed = self._asked, self._closed
            self._convert(batch)
            if not flush:
                continue
            tables, self._tables = self._tables, {}
            for name, parts in tables.items():
                try:
                    self._write_log(name, parts)
                except Exception:  # never let one bad batch stop the thread that writes every log
                    log.exception("serving log %r: rows dropped after an unexpected error", name)
                    self._count_dropped(name, sum(t.num_rows for t in parts), UNWRITABLE)
            with self._cond:
                self._done = generation
                self._cond.notify_all()
                if closed and not self._queue:
                    return

    def _flush_due(self) -> bool:
        if self._closed or self._asked > self._done or self._waiting >= self.flush_rows:
            return True
        return self._waiting > 0 and time.monotonic() >= self._oldest + self.flush_seconds

    def _slice_due(self) -> bool:
        return len(self._queue) >= SLICE_REQUESTS or (
            bool(self._queue) and time.monotonic() >= self._oldest_queued + SLICE_SECONDS)

    def _wait_time(self) -> float | None:
        if not self._waiting:
            return None  # until the first row (write notifies)
        due = self._oldest + self.flush_seconds
        if self._queue:
            due = min(due, self._oldest_queued + SLICE_SECONDS)
        return max(0.0, due - time.monotonic())

    def _convert(self, batch: list) -> None:
        """Turn ``batch`` into tables kept for the next files; drop (and count) the
        requests whose rows do not fit their columns, found one at a time."""
        by_name: dict[str, tuple[list[LogEntry], list]] = {}
        for name, rows, n, types in batch:
            entries, others = by_name.setdefault(name, ([], []))
            if isinstance(rows, LogEntry):
                entries.append(rows)
            else:
                others.append((rows, n, types))
        for name, (entries, others) in by_name.items():
            tables = self._tables.setdefault(name, [])
            tables += entries_tables(entries, lambda n, exc, name=name: self._drop_unfit(name, n, exc))
            for rows, n, types in others:
                self._add_table(name, tables, n, _table, rows, types)

    def _add_table(self, name: str, tables: list[pa.Table], n: int, build: Callable, *args) -> None:
        try:
            tables.append(build(*args))
        except Exception as exc:
            self._drop_unfit(name, n, exc)

    def _drop_unfit(self, name: str, n: int, exc: Exception) -> None:
        log.warning("serving log %r: %d row(s) do not fit their columns and are dropped: %s", name, n, exc)
        self._count_dropped(name, n, UNWRITABLE)

    def _write_log(self, name: str, tables: list[pa.Table]) -> None:
        try:
            table = pa.concat_tables(tables, promote_options="permissive")
        except pa.ArrowException as exc:  # schemas with no common type: one file per schema
            log.info("serving log %r: writing rows of differing columns to separate files (%s)", name, exc)
            for same in _by_schema(tables):
                self._write_log(name, same)
            return
        for day, part in _per_day(table):
            first = pc.min(part.column("log_time")).value
            path = self._folder(name) / f"date={day}" / f"{first}-{self._pid or os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
            try:
                write_parquet_atomic(part, path, what=f"the serving log of {name!r}")
            except FeatureStoreError as exc:
                if not self._failing:
                    log.warning("serving log %r: rows dropped, cannot write them: %s", name, exc)
                self._failing = True
                self._count_dropped(name, part.num_rows, UNWRITABLE)
                continue
            if self._failing:
                log.warning("serving log %r: writing again", name)
            self._failing = False
            with self._cond:
                self.written += part.num_rows
            if self._on_written is not None:
                self._on_written(name, part.num_rows)

    def _count_dropped(self, name: str, n: int, reason: str) -> None:
        with self._cond:  # re-entrant: write() calls this holding it
            self.dropped += n
        if self._on_dropped is not None:
            self._on_dropped(name, n, reason)


def _table(rows: Columns | pa.Table, types: Mapping[str, pa.DataType] | None) -> pa.Table:
    if not isinstance(rows, pa.Table):
        types = types or {}
        rows = pa.table({k: pa.array(v, type=types.get(k)) for k, v in rows.items()})
    if rows.schema.field("log_time").type != TIME_TYPE:
        rows = rows.set_column(rows.schema.get_field_index("log_time"), "log_time",
                               rows.column("log_time").cast(TIME_TYPE))
    return rows


def _by_schema(tables: list[pa.Table]) -> list[list[pa.Table]]:
    groups: list[list[pa.Table]] = []
    for table in tables:
        same = next((g for g in groups if g[0].schema == table.schema), None)
        if same is None:
            groups.append([table])
        else:
            same.append(table)
    return groups


def _per_day(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """The rows of ``table`` per UTC date of their log time (``YYYY-MM-DD``)."""
    bounds = pc.min_max(table.column("log_time"))
    first, last = bounds["min"].as_py(), bounds["max"].as_py()
    if first is not None and first.date() == last.date():  # the usual case: no need to look at every row
        return [(first.strftime("%Y-%m-%d"), table)]
    days = pc.strftime(table.column("log_time"), format="%Y-%m-%d")
    return [(day, table.filter(pc.equal(days, day))) for day in pc.unique(days).to_pylist() if day is not None]
