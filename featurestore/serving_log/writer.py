"""``ServingLogWriter``: rows logged on the request path, written to Parquet off it.

``write`` only appends the request's columns to an in-memory queue (no Arrow, no I/O on
the request thread; ``write_later`` appends what builds them, run on the writer's thread); a background thread turns them into Parquet files every
``flush_seconds`` or as soon as ``flush_rows`` rows wait, one file per log name and date,
each written atomically (``offline/files.py``). The queue holds at most ``queue_rows``
rows: beyond that a request's rows are dropped and counted, never waited for, so a slow
disk costs log rows, not latency. Rows that cannot be written (a full disk, values that
do not fit their column type) are dropped and counted too. So every row handed to
``write`` ends up in a file or in ``dropped``.
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

__all__ = ["QUEUE_FULL", "UNWRITABLE", "ServingLogWriter"]

log = logging.getLogger("featurestore.serving_log")

#: Reasons for dropped rows (a metric label).
QUEUE_FULL = "queue_full"
UNWRITABLE = "unwritable"

#: ``(log name, rows)``, ``(log name, rows, reason)``: how a process counts rows in its metrics.
Written = Callable[[str, int], None]
Dropped = Callable[[str, int, str], None]

Columns = Mapping[str, Sequence]


class ServingLogWriter:
    """Appends rows to the serving logs under ``offline_root`` from a background thread;
    ``folder(name)``, when given, says where each log lives instead (``layout.log_folder``)."""

    def __init__(self, offline_root: str | Path, *, queue_rows: int = 100_000, flush_rows: int = 10_000,
                 flush_seconds: float = 2.0, on_written: Written | None = None, on_dropped: Dropped | None = None,
                 folder: Callable[[str], Path] | None = None):
        self.root = Path(offline_root)
        self._folder = folder or (lambda name: log_folder(self.root, name))
        self.queue_rows, self.flush_rows, self.flush_seconds = queue_rows, flush_rows, flush_seconds
        self._on_written, self._on_dropped = on_written, on_dropped
        self.written = 0
        self.dropped = 0
        # (name, rows: columns, a table or write_later's builder, row count, types)
        self._queue: list[tuple[str, Columns | pa.Table | Callable, int, Mapping[str, pa.DataType] | None]] = []
        self._queued = 0  # rows in _queue
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._asked = self._done = 0  # flush generations asked for and finished
        self._failing = False
        self._oldest = 0.0  # monotonic time the oldest queued rows came

    # -- the request side -------------------------------------------------------------

    def write(self, name: str, rows: Columns | pa.Table, types: Mapping[str, pa.DataType] | None = None) -> bool:
        """Queue ``rows`` (a table, or columns of equal length with their Arrow ``types``,
        any left out inferred) for log ``name``; False when they were dropped instead."""
        n = rows.num_rows if isinstance(rows, pa.Table) else len(next(iter(rows.values()), ()))
        return self._enqueue(name, rows, n, types)

    def write_later(self, name: str, n: int, build: Callable[[], tuple[Columns, Mapping[str, pa.DataType]]]) -> bool:
        """Queue ``n`` rows for log ``name`` that ``build()`` makes (their columns and Arrow
        types, as ``write`` takes them) on the writer's thread, off the request path: what
        ``build`` reads must not change once queued. False when they were dropped instead."""
        return self._enqueue(name, build, n, None)

    def _enqueue(self, name: str, rows, n: int, types) -> bool:
        with self._cond:
            if self._closed or self._queued + n > self.queue_rows:
                self._count_dropped(name, n, QUEUE_FULL)
                return False
            if not self._queue:
                self._oldest = time.monotonic()
            self._queue.append((name, rows, n, types))
            self._queued += n
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="featurestore-serving-log", daemon=True)
                self._thread.start()
            if len(self._queue) == 1 or self._queued >= self.flush_rows:
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
                while not self._due():
                    self._cond.wait(self._wait_time())
                batch, self._queue, self._queued = self._queue, [], 0
                generation, closed = self._asked, self._closed
            if batch:
                self._write_batch(batch)
            with self._cond:
                self._done = generation
                self._cond.notify_all()
                if closed and not self._queue:
                    return

    def _due(self) -> bool:
        if self._closed or self._asked > self._done or self._queued >= self.flush_rows:
            return True
        return bool(self._queue) and time.monotonic() >= self._oldest + self.flush_seconds

    def _wait_time(self) -> float | None:
        if not self._queue:
            return None  # until the first row (write notifies)
        return max(0.0, self._oldest + self.flush_seconds - time.monotonic())

    def _write_batch(self, batch) -> None:
        by_name: dict[str, list] = {}
        for entry in batch:
            name, rows, n, _ = entry
            if callable(rows):  # write_later's: built here
                try:
                    entry = (name, *_built(rows, n))
                except Exception:
                    log.exception("serving log %r: %d row(s) dropped, building them failed", name, n)
                    self._count_dropped(name, n, UNWRITABLE)
                    continue
            by_name.setdefault(name, []).append(entry)
        for name, entries in by_name.items():
            try:
                tables = [_table(rows, types) for rows, _, types in _merged(entries)]
            except (pa.ArrowException, ValueError, TypeError):  # find the requests that do not fit
                tables = self._tables_one_by_one(name, entries)
            try:
                if tables:
                    self._write_log(name, tables)
            except Exception:  # never let one bad batch stop the thread that writes every log
                log.exception("serving log %r: rows dropped after an unexpected error", name)
                self._count_dropped(name, sum(t.num_rows for t in tables), UNWRITABLE)

    def _tables_one_by_one(self, name: str, entries: list) -> list[pa.Table]:
        tables = []
        for _, rows, n, types in entries:
            try:
                tables.append(_table(rows, types))
            except (pa.ArrowException, ValueError, TypeError) as exc:
                log.warning("serving log %r: %d row(s) do not fit their columns and are dropped: %s", name, n, exc)
                self._count_dropped(name, n, UNWRITABLE)
        return tables

    def _write_log(self, name: str, tables: list[pa.Table]) -> None:
        try:
            table = pa.concat_tables(tables, promote_options="permissive")
        except pa.ArrowException as exc:  # two schemas with no common type: write them apart
            log.info("serving log %r: writing rows of differing columns to separate files (%s)", name, exc)
            for t in tables:
                self._write_log(name, [t])
            return
        days = pc.strftime(table.column("log_time"), format="%Y-%m-%d")
        unique = pc.unique(days).to_pylist()
        for day in unique:
            part = table if len(unique) == 1 else table.filter(pc.equal(days, day))
            first = pc.min(part.column("log_time")).value
            path = self._folder(name) / f"date={day}" / f"{first}-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
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


def _built(build: Callable, n: int) -> tuple[Columns, int, Mapping[str, pa.DataType]]:
    columns, types = build()
    return columns, n, types


def _merged(entries: list) -> list[tuple[Columns | pa.Table, int, Mapping[str, pa.DataType] | None]]:
    """Requests with the same columns and types joined into one set of columns (one Arrow
    array per column for the whole batch is far cheaper than one per request)."""
    groups: dict[tuple, tuple[dict[str, list], list[int], Mapping | None]] = {}
    out: list = []
    for _, rows, n, types in entries:
        if isinstance(rows, pa.Table):
            out.append((rows, n, types))
            continue
        key = (tuple(rows), tuple((types or {}).items()))
        group = groups.get(key)
        if group is None:
            groups[key] = ({k: list(v) for k, v in rows.items()}, [n], types)
        else:
            for k, v in rows.items():
                group[0][k].extend(v)
            group[1].append(n)
    return out + [(columns, sum(ns), types) for columns, ns, types in groups.values()]


def _table(rows: Columns | pa.Table, types: Mapping[str, pa.DataType] | None) -> pa.Table:
    if not isinstance(rows, pa.Table):
        types = types or {}
        rows = pa.table({k: pa.array(v, type=types.get(k)) for k, v in rows.items()})
    if rows.schema.field("log_time").type != TIME_TYPE:
        rows = rows.set_column(rows.schema.get_field_index("log_time"), "log_time",
                               rows.column("log_time").cast(TIME_TYPE))
    return rows
