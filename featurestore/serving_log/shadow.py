"""Shadow scoring in the serving log's process: a shadow rollout's candidate answers the
requests stable answered, from stable's logged rows, and its answers are logged beside
them (``variant`` ``shadow``, the same request ids), never returned (docs/rollouts.md).

A server worker already hands every logged ``/predict`` to its serving log process
(``process.py``: flat columns, one pipe write per tick). A shadowed request's entry
names its candidate (``LogEntry.shadow``: its URI and model timeout) and that is all the
worker spends on the shadow: no pickle, no thread, no process of its own. Here, on a
thread of the log's process (the process's main thread keeps reading the worker's pipe
while a model loads or runs):

- the rows of each candidate are turned back into the online answer and the request
  fields they were logged from (``EntryColumns.response``), and the candidate's inputs
  are built from them as the worker would (``read_inputs``: its signature, types and
  ``on_missing``); a candidate that reads other features than stable has them read by
  the worker, off the request path, and sends them as an entry of its own
  (``variant`` ``shadow``, scored here and written only as answered);
- the candidate is called in a ``ModelProcess`` of this process's own, at most
  ``MAX_BATCH_ROWS`` rows a call (a model's fixed cost per call dominates a row or two),
  so a candidate that crashes or hangs takes only its batch down (``model_error``;
  ``timeout`` past its deadline, ``DEADLINE_TIMEOUTS`` times the model's timeout and at
  least ``MIN_DEADLINE``, when the model process is stopped and started anew) and never
  the rows the log holds. A batch the model raised on is scored again request by request,
  so a failure stays with its request;
- the logged ``latency_ms`` is what the request would have taken with the candidate:
  stable's time up to its model call plus the candidate's call for one request (a batch's
  first request is called alone, the rest together: a batch's time grows with its rows,
  and no request waits for that). A batch whose single call took longer than the model's
  timeout is logged as ``timeout``, as its requests would have been answered;
- past ``serving_log.queue_rows`` rows waiting to be scored (a candidate slower than the
  traffic) a request is not scored and counted ``dropped``. The outcomes per candidate go to the worker with
  the log's counts (``featurestore_predictions_total{variant="shadow"}``).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from typing import Any

from featurestore.models.inputs import input_spec, read_inputs
from featurestore.models.process import ModelCallFailed, ModelProcess
from featurestore.models.uri import parse_uri
from featurestore.serving_log.records import EntryColumns, columns_table

__all__ = ["DEADLINE_TIMEOUTS", "MAX_BATCH_ROWS", "MAX_WAITING", "MIN_DEADLINE", "SHADOW", "ShadowScoring", "shadowed"]

log = logging.getLogger("featurestore.serving_log")

SHADOW = "shadow"
#: The most rows one model call is given.
MAX_BATCH_ROWS = 1024
#: A call's deadline: this many times the model's timeout, and at least MIN_DEADLINE seconds.
DEADLINE_TIMEOUTS, MIN_DEADLINE = 10, 2.0
#: Rows waiting to be scored, past which a request is dropped (and counted) instead (the
#: log's process is given its ``queue_rows``).
MAX_WAITING = 100_000
#: Candidates whose input layout is kept (a rollout has one per model).
KEPT = 16


def shadowed(columns: EntryColumns) -> tuple[EntryColumns | None, dict[tuple, EntryColumns]]:
    """The requests of ``columns`` to write as they are (None: none), and those to score, by
    candidate (``(uri, timeout)``) and whether their rows are ``extra`` (beyond those
    written as they are): a stable request that names a candidate is both written and
    scored; a candidate's own read (``variant`` ``shadow``) is only scored."""
    candidates = columns.per_request.get("shadow") if columns.predicted else None  # LogEntry.shadow
    if not candidates or candidates.count(None) == len(candidates):
        return columns, {}
    scored: dict[tuple, list[int]] = {}
    written = []
    for i, (candidate, variant) in enumerate(zip(candidates, columns.per_request["variant"])):
        extra = variant != SHADOW
        if candidate is not None:
            scored.setdefault((candidate, extra), []).append(i)
        if extra:
            written.append(i)
    return (columns.select(written) if written else None,
            {key: columns.select(i) for key, i in scored.items()})


class ShadowScoring:
    """The candidates' rows waiting, and the thread that scores them and writes their rows
    with ``write(log name, table)``."""

    def __init__(self, open_store: Callable[[], Any], write, max_waiting: int = MAX_WAITING):
        """``open_store``: opens the server's store (picklable, as ``ModelProcess`` takes it)."""
        self._open_store, self._write, self._max_waiting = open_store, write, max_waiting
        self._waiting: deque[tuple[str, tuple, EntryColumns]] = deque()
        self._rows = 0
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._outcomes: Counter = Counter()  # (model, version, status) -> requests
        self._added: Counter = Counter()  # log name -> rows written here beyond those the worker sent
        self._store = self._models = None  # opened with the first candidate
        self._specs: OrderedDict = OrderedDict()

    def add(self, name: str, candidate: tuple, columns: EntryColumns, extra: bool) -> None:
        """Queue the requests of ``columns`` for ``candidate``; ``extra``: their shadow rows are
        rows beyond those the worker sent (stable's are written too)."""
        with self._cond:
            if self._closed or self._rows + columns.rows > self._max_waiting:
                self._count(candidate[0], ["dropped"] * len(columns.counts))
                if not extra:  # the worker counts them as held: they are dropped, not written
                    self._added[name] -= columns.rows
                return
            self._waiting.append((name, candidate, columns))
            self._rows += columns.rows
            if extra:
                self._added[name] += columns.rows
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="featurestore-shadow", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def take_counts(self) -> tuple[tuple, tuple]:
        """((model, version, status, requests), ...) scored and ((log name, rows), ...) added since
        the last call: rows added here are held until the log's counts report them written."""
        with self._cond:
            outcomes, self._outcomes = tuple((*key, n) for key, n in self._outcomes.items()), Counter()
            added, self._added = tuple(self._added.items()), Counter()
        return outcomes, added

    def wait(self, timeout: float) -> bool:
        """Wait until every row queued so far is scored and handed to the writer."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def close(self, timeout: float) -> None:
        """Score what waits (within ``timeout``), then stop the thread and the model process."""
        self.wait(timeout)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(1.0)
        if self._models is not None:
            self._models.close()
        if self._store is not None:
            self._store.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                self._cond.wait_for(lambda: self._waiting or self._closed)
                if not self._waiting:
                    return
                name, candidate, columns = self._waiting.popleft()
                self._rows -= columns.rows
                self._busy = True
            for batch in _batches(columns):
                try:
                    self._score(name, candidate, batch)
                except Exception:  # never lose the thread to one batch
                    log.exception("shadow scoring of %d request(s) failed", len(batch.counts))

    def _score(self, name: str, candidate: tuple, columns: EntryColumns) -> None:
        uri, timeout = candidate
        began = time.perf_counter()
        try:
            spec = self._spec(uri)
        except Exception as exc:  # its version cannot be read: every request fails alike
            log.warning("shadow %s cannot be scored: %s", uri, exc)
            self._answer(name, uri, columns, [None] * columns.rows, ["model_error"] * len(columns.counts), 0.0)
            return
        try:
            inputs = read_inputs(spec, columns.response(), columns.request_fields(),
                                 join_keys=columns.names[:columns.keys])
            table, deadline = inputs.table, max(DEADLINE_TIMEOUTS * timeout, MIN_DEADLINE)
            # The first request is called alone, and its call's time stands for each request's:
            # a batch's time grows with its rows, which no request waits for (a heavy model's
            # batch past the timeout would count every request of it as timed out).
            first = columns.counts[0] or table.num_rows
            predictions, took = self._call(uri, table.slice(0, first), deadline)
            if table.num_rows > first:
                predictions += self._call(uri, table.slice(first), deadline)[0]
        except Exception as exc:  # the model's failure, or a value its inputs refuse
            late = isinstance(exc, ModelCallFailed) and exc.late
            if len(columns.counts) > 1 and not late and getattr(exc, "loaded", True):
                for one in columns.requests():  # whose rows was it?
                    self._score(name, candidate, one)
                return
            log.info("shadow %s failed on %d request(s) (%s...): %s", uri, len(columns.counts),
                     columns.per_request["request_id"][0], exc)
            status = "timeout" if late else "model_error"
            self._answer(name, uri, columns, [None] * columns.rows, [status] * len(columns.counts),
                         time.perf_counter() - began)
            return
        status = "timeout" if took > timeout else "ok"
        self._answer(name, uri, columns, predictions if status == "ok" else [None] * columns.rows,
                     [status] * len(columns.counts), took)

    def _call(self, uri: str, table, deadline: float) -> tuple[list, float]:
        """The candidate's predictions for ``table`` and the seconds its call took."""
        predictions, took = self._models.predict(uri, table, deadline)
        if not isinstance(predictions, list) or len(predictions) != table.num_rows:
            raise ModelCallFailed(f"it returned {len(predictions) if isinstance(predictions, list) else 'no list'}"
                                  f" for {table.num_rows} rows", loaded=True)
        return predictions, took

    def _answer(self, name: str, uri: str, columns: EntryColumns, predictions: list, statuses: list[str],
                took: float) -> None:
        version = parse_uri(uri)
        latencies = [None if ms is None else ms + took * 1000.0 for ms in columns.per_request["before_model_ms"]]
        self._count(uri, statuses)
        try:
            table = columns_table(columns.answered(version.name, version.version, predictions, statuses, latencies))
        except Exception as exc:  # e.g. predictions the log's column cannot hold: the rows are not written
            log.warning("serving log %r: %d shadow row(s) of %s do not fit their columns: %s", name, columns.rows,
                        uri, exc)
            with self._cond:
                self._added[name] -= columns.rows  # settled in the worker: neither held nor written
            return
        self._write(name, table)

    def _count(self, uri: str, statuses: list[str]) -> None:
        version = parse_uri(uri)
        with self._cond:  # re-entrant: add() holds it
            for status, n in Counter(statuses).items():
                self._outcomes[version.name, version.version, status] += n

    def _spec(self, uri: str):
        spec = self._specs.get(uri)
        if spec is None:
            if self._store is None:  # a log without shadows never opens one
                # The log's process is a daemon (it exits with the worker), which may not start
                # processes unless told it may: the model process stops with it (close()), or
                # when the pipe to it closes.
                multiprocessing.current_process().daemon = False
                self._store = self._open_store()
                self._models = ModelProcess(self._open_store)
            spec = self._specs[uri] = input_spec(self._store.models.get(uri))
            while len(self._specs) > KEPT:
                self._specs.popitem(last=False)
            # What the store and the version built lives as long as the process: out of the
            # collector's sight (a full collection walking it was ~60% of the CPU of the
            # process that scored shadows before: perf, gc_collect_main).
            gc.freeze()
        return spec


def _batches(columns: EntryColumns) -> list[EntryColumns]:
    """``columns`` split into runs of whole requests of at most MAX_BATCH_ROWS rows."""
    if columns.rows <= MAX_BATCH_ROWS:
        return [columns]
    runs, run, rows = [], [], 0
    for i, n in enumerate(columns.counts):
        if run and rows + n > MAX_BATCH_ROWS:
            runs.append(run)
            run, rows = [], 0
        run.append(i)
        rows += n
    return [columns.select(run) for run in [*runs, run]]
