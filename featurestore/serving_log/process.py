"""``ServingLogProcess``: a ``ServingLogWriter`` whose work is done in a process of its own.

A server worker logs through it (``serving/serving_log.py``). Building Arrow arrays and
Parquet files holds the interpreter lock for milliseconds at a time, and a request that
arrives meanwhile waits for it; so the worker only hands its rows over, and the serving
log's process (``child.py``) does the rest with an ordinary ``ServingLogWriter``: the same
files, per-day split, flush points and drops.

On the worker's side:

- ``write`` appends to a list under a lock, as ``ServingLogWriter`` does; ``write_entry``
  gathers the entry's values into flat columns (``records.ColumnGroups``: one
  ``EntryColumns`` per group of the same columns and types, of at most ``PIECE``
  requests), so the request's objects are freed at once and nothing is left to turn
  into plain values later (gathering them on the thread instead, a tick later, cost the
  thread 8-9 us more a request, for ~3 us saved on the request: bench/serving_log.py
  cpu, c16, 1 and 10 entities); a request whose values cannot be gathered (its fields
  unreadable, a value that is no list or of another length) is dropped and counted
  (``UNWRITABLE``). Neither wakes anyone: a thread of its own takes what waits every
  ``TICK`` on a timer (a request that woke it would be preempted for it on a busy
  machine) and sends it, in one pickle per ``PIECE`` requests (flat lists, the
  interpreter lock held meanwhile), without waiting for an answer. While the
  process holds rows not yet reported, it is asked every
  ``COUNTS_EVERY`` for the rows it wrote and dropped since; they are counted here
  (``written``, ``dropped``, ``on_written``, ``on_dropped``). A thread that has nothing to
  send or wait for stops ticking after ``IDLE_AFTER``; the next row wakes it.
- ``queue_rows`` bounds the rows waiting here or in the process, not yet reported written
  or dropped: beyond it a request's rows are dropped and counted (``QUEUE_FULL``).
- a process that dies, or does not answer within ``ANSWER_SECONDS`` (it is killed), has
  the rows it held counted as dropped (``UNWRITABLE``; a few may be in a file already, if
  it died between writing them and reporting them), with a warning; the next rows start a
  new one, after ``RESTART_SECONDS`` (doubled while starts keep failing, up to
  ``MAX_RESTART_SECONDS``). Rows that cannot be pickled are dropped and counted alone.
- ``flush`` and ``close`` go through the thread: everything handed over before them is
  written (and counted) when they return, unless their timeout passed. While they wait,
  the process runs at the worker's priority (``child_process.wait_as_requests``): behind
  the requests, on cores other processes keep busy, it might not write in time; after
  the last flush waiting returns it goes back behind them (it keeps serving).
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from featurestore.child_process import ChildGone, ChildProcess, run_behind_requests, wait_as_requests
from featurestore.serving_log import child
from featurestore.serving_log.layout import log_folder
from featurestore.serving_log.records import ColumnGroups, EntryColumns, LogEntry
from featurestore.serving_log.writer import QUEUE_FULL, UNWRITABLE, Columns, Dropped, Written

__all__ = ["ANSWER_SECONDS", "PIECE", "TICK", "ServingLogProcess"]

log = logging.getLogger("featurestore.serving_log")

#: Seconds between the thread's looks at the rows waiting (they go in one batch). Each
#: look costs the worker and the process ~0.5-1 ms of CPU however few rows wait (the
#: timer, a pipe write that wakes the process, a message's Arrow arrays there), and its
#: pickles and pipe writes hold up the requests that arrive meanwhile: at 0.1 s they
#: touched about 1% of the requests at concurrency 1, and /predict's p99 was ~10% longer
#: than with the log off; at 0.5 s it is level with the log off (bench/predict_ab.py,
#: 30 interleaved rounds, gbm_1: B/A p99 0.88 and 0.93, log off 0.91). The price: a
#: worker killed outright loses up to half a second of its log rows.
TICK = 0.5
#: The most requests gathered in one ``EntryColumns`` and pickled at once (~0.5 us a
#: request of 1 row, ~3 us of 10 rows: under 1 ms holding the interpreter lock); the
#: process's Arrow for a message costs ~0.25 ms whatever its size.
PIECE = 256
#: Seconds without rows to send or counts to wait for after which the thread stops ticking.
IDLE_AFTER = 1.0
#: Seconds between asks for the counts of the rows the process holds (the metrics lag that much).
COUNTS_EVERY = 0.25
#: Seconds the process has to answer an ask (at once for counts; for a flush, once written).
ANSWER_SECONDS = 60.0
#: How the outcomes of shadow requests are counted: (model, version, status, requests).
Scored = Callable[[str, int, str, int], None]
#: Seconds before a new process is started after one died; doubled while they keep dying.
RESTART_SECONDS, MAX_RESTART_SECONDS = 1.0, 60.0


class ServingLogProcess:
    """``ServingLogWriter``'s interface (``write``, ``write_entry``, ``flush``, ``close``,
    ``written``, ``dropped``), with the writing done in a child process."""

    def __init__(self, offline_root: str | Path, *, queue_rows: int = 100_000, flush_rows: int = 10_000,
                 flush_seconds: float = 2.0, on_written: Written | None = None, on_dropped: Dropped | None = None,
                 folder: Callable[[str], Path] | None = None, open_store: Callable[[], Any] | None = None,
                 on_scored: Scored | None = None):
        """``open_store``: opens the server's store (picklable), when entries may name a
        shadow candidate to score (``shadow.py``), whose outcomes go to ``on_scored``."""
        self.root = Path(offline_root)
        self._open_store, self._on_scored = open_store, on_scored
        self._folder = folder or (lambda name: log_folder(self.root, name))
        self.queue_rows, self.flush_rows, self.flush_seconds = queue_rows, flush_rows, flush_seconds
        self._on_written, self._on_dropped = on_written, on_dropped
        self.written = 0
        self.dropped = 0
        self._cond = threading.Condition()
        self._pending: list[tuple] = []  # (name, rows, n, types), swapped out by the thread
        self._gathering: dict[str, ColumnGroups] = {}  # per log name; its new EntryColumns go to _pending
        self._waiting = 0  # rows pending or held by the process, not yet reported
        self._held: Counter = Counter()  # log name -> rows sent, not yet reported (the thread's)
        self._process = self._new_process()
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()  # set by flush()/close(), and by a row that finds the thread idle
        self._idle = False
        self._closed = False
        self._asked = self._done = 0  # flush generations asked for and finished
        self._flushing = 0  # flush() calls waiting
        self._restart_at, self._restart_wait = 0.0, RESTART_SECONDS

    def _new_process(self) -> ChildProcess:
        return ChildProcess(child.serve, (str(self.root), self.queue_rows, self.flush_rows, self.flush_seconds,
                                          os.getpid(), self._open_store), name="featurestore-serving-log-process")

    # -- the request side -------------------------------------------------------------

    def write(self, name: str, rows: Columns | pa.Table, types: Mapping[str, pa.DataType] | None = None) -> bool:
        """Queue ``rows`` (a table, or columns of equal length with their Arrow ``types``)
        for log ``name``; False when they were dropped instead."""
        n = rows.num_rows if isinstance(rows, pa.Table) else len(next(iter(rows.values()), ()))
        return self._enqueue(name, rows, n, types)

    def write_entry(self, name: str, entry: LogEntry) -> bool:
        """Gather the rows of ``entry`` for log ``name``; False when they were dropped instead."""
        return self._enqueue(name, entry, entry.rows, None)

    def _enqueue(self, name: str, rows, n: int, types) -> bool:
        unfit = None
        with self._cond:
            if self._closed or self._waiting + n > self.queue_rows:
                self._count_dropped(name, n, QUEUE_FULL)
                return False
            if isinstance(rows, LogEntry):
                try:
                    started = self._gathering.setdefault(name, ColumnGroups(PIECE)).add(rows)
                except Exception as exc:
                    unfit = exc
                else:
                    if started is not None:
                        self._pending.append((name, started, 0, None))  # n: its rows when it is sent
            else:
                self._pending.append((name, rows, n, types))
            if unfit is None:
                self._waiting += n
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="featurestore-serving-log", daemon=True)
                self._thread.start()
        if unfit is not None:
            log.warning("serving log %r: %d row(s) do not fit their columns and are dropped: %s", name, n, unfit)
            self._count_dropped(name, n, UNWRITABLE)
            return False
        if self._idle:  # read after the append: the thread sets it before its last look (_run)
            self._wake.set()
        return True

    @property
    def held(self) -> int:
        """Rows handed to the process and not yet reported written or dropped."""
        return sum(list(self._held.values()))  # list(): one step under the interpreter lock

    # -- control ----------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything queued so far now; False when that took longer than ``timeout``."""
        with self._cond:
            if self._thread is None:
                return True
            self._asked += 1
            self._flushing += 1
            target = self._asked
        self._wake.set()

        def flushed(turn: float) -> bool:
            with self._cond:
                return self._cond.wait_for(lambda: self._done >= target, turn)

        try:
            return wait_as_requests(lambda: self._process.pid, flushed, timeout)
        finally:
            with self._cond:
                self._flushing -= 1
                behind = not self._flushing and not self._closed
            pid = self._process.pid
            if behind and pid is not None:
                run_behind_requests(pid)

    def close(self, timeout: float | None = 10.0) -> None:
        """Write what is queued, stop the thread and the process; later rows are dropped."""
        with self._cond:
            self._closed = True
            thread = self._thread
        self._wake.set()
        if thread is None:
            return
        if not wait_as_requests(lambda: self._process.pid, lambda turn: _joined(thread, turn), timeout):
            log.warning("serving log: the process writing it did not finish within %s s; rows not written by "
                        "then may be lost", timeout)

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        quiet_since = asked_counts = time.monotonic()
        while True:
            if self._idle:
                self._wake.wait()
                self._idle = False  # a row, flush() or close() woke it
            time.sleep(TICK)  # a timer: no request wakes this thread
            with self._cond:
                items, self._pending, self._gathering = self._pending, [], {}
                asked, closed = self._asked, self._closed
            try:
                unsent = self._send(items, closed or asked > self._done) if items else []
                if unsent:
                    with self._cond:  # waiting for a new process: these go first with the next rows
                        self._pending[:0] = unsent
                now = time.monotonic()
                if self._held and (asked > self._done or closed):
                    self._ask(child.FLUSH)
                elif self._held and now - asked_counts >= COUNTS_EVERY:
                    self._ask(child.COUNTS)
                    asked_counts = now
            except Exception:  # never lose the thread that writes every log
                log.exception("serving log: unexpected error handing rows to its process")
            now = time.monotonic()
            if items:
                quiet_since = now
            if asked > self._done:
                with self._cond:
                    self._done = asked
                    self._cond.notify_all()
            if closed:
                try:
                    self._process.close()
                except Exception:  # one that never started
                    pass
                return
            if not items and not self._held and now - quiet_since >= IDLE_AFTER:
                self._wake.clear()
                self._idle = True
                if self._pending or self._asked > self._done or self._closed:  # they came before _idle was set
                    self._idle = False

    def _send(self, items: list[tuple], now: bool) -> list[tuple]:
        """Hand ``items`` to the process, ``PIECE`` requests at a time; those not sent because
        the process died and a new one may not start yet (``now``, for a flush or close:
        one starts regardless)."""
        folders: dict[str, Path] = {}
        start = 0
        while start < len(items):
            if time.monotonic() < self._restart_at and not now:
                return items[start:]
            piece, requests = [], 0
            while start < len(items) and requests < PIECE:
                name, rows, n, types = items[start]
                start += 1
                if isinstance(rows, EntryColumns):
                    n = rows.rows
                    requests += len(rows.counts)
                else:
                    requests += 1
                if name in folders or self._add_folder(folders, name, n):
                    piece.append((name, rows, n, types))
            data = self._pickled(folders, piece)
            sent: Counter = Counter()
            for name, _, n, _ in piece:
                sent[name] += n
            self._hand_over(data, sent)
        return []

    def _add_folder(self, folders: dict[str, Path], name: str, n: int) -> bool:
        try:
            folders[name] = self._folder(name)
            return True
        except Exception as exc:
            log.warning("serving log %r: %d row(s) dropped, no folder for them: %s", name, n, exc)
            self._settle(name, n, UNWRITABLE)
            return False

    def _pickled(self, folders: dict[str, Path], piece: list[tuple]) -> bytes:
        """The message of ``piece``; a request whose values cannot be pickled is dropped and
        counted (the others are sent)."""
        try:
            return pickle.dumps((child.ROWS, folders, piece), protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            pass
        good = []
        for item in _per_request(piece):
            try:
                pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
                good.append(item)
            except Exception as exc:
                log.warning("serving log %r: %d row(s) dropped, they cannot be sent to its process: %s",
                            item[0], item[2], exc)
                self._settle(item[0], item[2], UNWRITABLE)
        piece[:] = good
        return pickle.dumps((child.ROWS, folders, piece), protocol=pickle.HIGHEST_PROTOCOL)

    def _hand_over(self, data: bytes, rows: Counter) -> bool:
        """Send ``data`` (``rows``: log name -> rows) to the process without waiting for it
        (a pipe that is full waits for it to read, the interpreter lock free); False when
        it could not be sent."""
        before = self._process.pid
        try:
            self._process.send_bytes(data)  # starts a process when none runs (or it died)
        except ChildGone as exc:
            self._lost(rows, exc)
            return False
        except Exception as exc:  # it could not be started: the next try starts from scratch
            self._process = self._new_process()
            self._lost(rows, exc)
            return False
        if before is not None and self._process.pid != before:  # it died since the last message
            self._lost(None, f"pid {before} exited", restarted=True)
        self._held.update(rows)
        return True

    def _ask(self, what: str) -> None:
        """Ask the process for its counts (``child.COUNTS``; ``child.FLUSH``: once it has
        written all it holds) and count them here."""
        if not self._hand_over(pickle.dumps((what,), protocol=pickle.HIGHEST_PROTOCOL), Counter()):
            return
        try:
            written, dropped, scored, added = self._process.receive(ANSWER_SECONDS)
        except ChildGone as exc:
            self._lost(None, exc)
            return
        self._restart_wait = RESTART_SECONDS
        for name, n in added:  # shadow rows: held there from now on, as if sent
            self._held[name] += n
            with self._cond:
                self._waiting += n
        if self._on_scored is not None:
            for model, version, status, n in scored:
                self._on_scored(model, version, status, n)
        for name, n in written:
            self._held[name] -= n
            with self._cond:
                self.written += n
                self._waiting -= n
            if self._on_written is not None:
                self._on_written(name, n)
        for name, reason, n in dropped:
            self._held[name] -= n
            self._settle(name, n, reason)
        self._held = +self._held  # drop the names at zero

    def _lost(self, rows: Counter | None, why, restarted: bool = False) -> None:
        """The process is gone: the rows it held (and ``rows``, not delivered) are dropped;
        unless a new one was ``restarted`` already, the next starts after a wait."""
        held, self._held = self._held + (rows or Counter()), Counter()
        later = "a new one was started" if restarted else f"a new one starts in {self._restart_wait:g} s"
        log.warning("serving log: its process failed (%s); the %d row(s) it held are counted as dropped; %s",
                    why, sum(held.values()), later)
        for name, n in held.items():
            self._settle(name, n, UNWRITABLE)
        if not restarted:
            self._restart_at = time.monotonic() + self._restart_wait
            self._restart_wait = min(2 * self._restart_wait, MAX_RESTART_SECONDS)

    def _settle(self, name: str, n: int, reason: str) -> None:
        """Count ``n`` rows that left the queue as dropped."""
        with self._cond:
            self._waiting -= n
        self._count_dropped(name, n, reason)

    def _count_dropped(self, name: str, n: int, reason: str) -> None:
        with self._cond:  # re-entrant: _enqueue calls this holding it
            self.dropped += n
        if self._on_dropped is not None:
            self._on_dropped(name, n, reason)


def _joined(thread: threading.Thread, seconds: float) -> bool:
    thread.join(seconds)
    return not thread.is_alive()


def _per_request(piece: list[tuple]) -> list[tuple]:
    """``piece`` with each ``EntryColumns`` split into one per request."""
    out = []
    for name, rows, n, types in piece:
        if isinstance(rows, EntryColumns):
            out += [(name, one, one.rows, None) for one in rows.requests()]
        else:
            out.append((name, rows, n, types))
    return out
