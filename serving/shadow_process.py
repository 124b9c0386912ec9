"""The shadow process: what a server worker hands its shadow jobs to (``serving.shadow``).

The worker sends each tick's jobs down a pipe in one message, each job pickled by its
request as plain Python values (``job_message``: the model's input values, in signature
order, and what the serving log row needs; feature types by name, which pickle in a
third of the time); everything else happens here, off the worker's interpreter lock: the input table
is built, the candidate is called in a ``ModelProcess`` of this process's own, and each
answer is logged to the serving log (this process's own writer, with the worker's
settings and folders: the same rows, ``variant`` ``shadow``, as the worker would have
written). The answer to the worker is what to count in its metrics: the outcomes per
candidate, and the serving log rows written and dropped since the last answer.

The candidate runs one process further, so a candidate that crashes or hangs takes only
its batch down (``model_error``; ``timeout`` for a call past its deadline, when the
model process is stopped and started anew) and never the rows logged before it.

- the jobs of each candidate are scored in one model call per ``MAX_BATCH_ROWS`` rows,
  since a model's fixed cost per call dominates a row or two; a batch the model raised
  on is scored again job by job, so a failure stays with the request that caused it;
- a call is given ``max(DEADLINE_TIMEOUTS * timeout, MIN_DEADLINE)`` seconds (a batch's
  rows are many requests'), then the model process is stopped;
- the logged ``latency_ms`` is what the request would have taken with the candidate:
  stable's time up to its model call plus the candidate's call (its batch's, as timed in
  the model process: never less than the request's own would have been). A call longer
  than the model's timeout is logged as ``timeout``, as the request would have been answered.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
import signal
import time
from collections import Counter, OrderedDict
from functools import lru_cache, partial
from typing import Any, NamedTuple

import pyarrow as pa

from featurestore.child_process import messages, run_behind_requests
from featurestore.config import RepoConfig
from featurestore.errors import FeatureStoreError
from featurestore.models.inputs import InputSpec, ModelInputs, input_spec
from featurestore.models.process import ModelCallFailed, ModelProcess
from featurestore.models.uri import ModelURI, parse_uri
from featurestore.online.read import OnlineResponse
from featurestore.store import FeatureStore
from featurestore.types import parse_type
from serving.serving_log import ServingLog

__all__ = ["MAX_BATCH_ROWS", "MIN_DEADLINE", "job_message", "serve"]

log = logging.getLogger("featurestore.serving")

SHADOW = "shadow"
#: The most rows one model call is given.
MAX_BATCH_ROWS = 1024
#: A call's deadline: this many times the model's timeout, and at least MIN_DEADLINE seconds.
DEADLINE_TIMEOUTS, MIN_DEADLINE = 10, 2.0
#: Candidates whose input layout is kept (a rollout has one per model).
KEPT = 16


class Job(NamedTuple):
    """One request, as the worker sends it (plain values, cheap to pickle)."""

    uri: str                   # the candidate, ``name/2``
    timeout: float             # its model timeout (seconds)
    request_id: str
    served_at: float           # the store clock's time of stable's answer
    before_model_ms: float     # the request's time up to a model call
    inputs: list | pa.Table    # the input values per input, in signature order, policy applied (or a table)
    num_rows: int
    entities: Any              # as the caller sent them
    request: Any
    join_keys: tuple
    features: tuple            # the OnlineResponse's lists: names, values, statuses, event times, type names


def job_message(uri: str, timeout: float, request_id: str, served_at: float, before_model_ms: float,
                inputs: ModelInputs, entities: Any, request: Any, join_keys: tuple,
                features: OnlineResponse) -> tuple:
    """The job as sent to the shadow process (a plain tuple: a ``Job``'s fields)."""
    values = inputs.columns if inputs.columns is not None else inputs.table
    return (uri, timeout, request_id, served_at, before_model_ms, values, inputs.num_rows, entities, request,
            join_keys, (features.feature_names, features.values, features.statuses, features.event_timestamps,
                        [None if t is None else str(t) for t in features.dtypes]))  # a type pickles in ~2 us


class ShadowBatches:
    """This process's side: scores the worker's batches and logs the answers."""

    def __init__(self, store: FeatureStore, config: RepoConfig):
        self._written: Counter = Counter()
        self._dropped: Counter = Counter()
        self.log = ServingLog(store, on_written=self._count_written, on_dropped=self._count_dropped)
        self.models = ModelProcess(partial(FeatureStore, config=config))
        self._store = store
        self._specs: OrderedDict[str, InputSpec] = OrderedDict()
        self._uris: dict[str, ModelURI] = {}  # parsed once per candidate (~5 us a parse)
        self._outcomes: Counter = Counter()
        self._learned = False

    def score(self, messages: list[tuple]) -> tuple[tuple, tuple, tuple]:
        """Score and log the jobs; what to count since the last answer (``counts``)."""
        for batch in _batches([Job(*m) for m in messages]):
            try:
                self._score(batch)
            except Exception:  # never lose the process to one batch
                log.exception("shadow scoring of %d request(s) failed", len(batch))
        return self.counts()

    def counts(self) -> tuple[tuple, tuple, tuple]:
        """What to count since the last answer, as flat tuples (cheap for the worker to
        unpickle): ((uri, status, n), ...), ((log name, n), ...), ((log name, reason, n), ...)."""
        outcomes, self._outcomes = tuple((*key, n) for key, n in self._outcomes.items()), Counter()
        written, self._written = tuple(self._written.items()), Counter()
        dropped, self._dropped = tuple((*key, n) for key, n in self._dropped.items()), Counter()
        return outcomes, written, dropped

    def learned(self) -> bool:
        """Whether a candidate's input layout was loaded since the last call."""
        learned, self._learned = self._learned, False
        return learned

    def close(self) -> None:
        self.models.close()
        self.log.close()

    def _score(self, jobs: list[Job]) -> None:
        uri, timeout = jobs[0].uri, jobs[0].timeout
        began = time.perf_counter()
        try:
            table = _table(self._spec(uri), jobs)
            predictions, took = self.models.predict(uri, table, max(DEADLINE_TIMEOUTS * timeout, MIN_DEADLINE))
            if not isinstance(predictions, list) or len(predictions) != table.num_rows:
                raise ModelCallFailed(f"it returned {len(predictions) if isinstance(predictions, list) else 'no list'}"
                                      f" for {table.num_rows} rows", loaded=True)
        except FeatureStoreError as exc:  # the model's failure, its version not found, a value its inputs refuse
            late = isinstance(exc, ModelCallFailed) and exc.late
            if len(jobs) > 1 and not late and getattr(exc, "loaded", True):
                for job in jobs:  # whose rows was it?
                    self._score([job])
                return
            log.info("shadow %s failed on %d request(s) (%s...): %s", uri, len(jobs), jobs[0].request_id, exc)
            took = time.perf_counter() - began
            for job in jobs:  # the callers have stable's answers; the log has the failure
                self._finish(uri, job, [None] * job.num_rows, "timeout" if late else "model_error", took)
            return
        start = 0
        for job in jobs:
            n = job.num_rows
            if took > timeout:
                self._finish(uri, job, [None] * n, "timeout", took)
            else:
                self._finish(uri, job, predictions[start:start + n], "ok", took)
            start += n

    def _finish(self, uri: str, job: Job, predictions: list, status: str, took: float) -> None:
        self._outcomes[uri, status] += 1
        candidate = self._uris.get(uri)
        if candidate is None:
            if len(self._uris) >= KEPT:
                self._uris.clear()
            candidate = self._uris[uri] = parse_uri(uri)
        self.log.log_prediction(candidate.name, candidate.version, job.join_keys,
                                _response(*job.features), job.entities, predictions, job.request_id,
                                variant=SHADOW, served_at=job.served_at, status=status,
                                latency_ms=job.before_model_ms + took * 1000.0)

    def _spec(self, uri: str) -> InputSpec:
        spec = self._specs.get(uri)
        if spec is None:
            spec = self._specs[uri] = input_spec(self._store.models.get(uri))
            self._learned = True
            while len(self._specs) > KEPT:
                self._specs.popitem(last=False)
        return spec

    def _count_written(self, name: str, n: int) -> None:
        self._written[name] += n

    def _count_dropped(self, name: str, n: int, reason: str) -> None:
        self._dropped[name, reason] += n


def serve(conn, config: RepoConfig) -> None:
    """The process's loop: lists of pickled ``job_message`` tuples in (a worker's tick's
    jobs), ``ShadowBatches.score``'s counts out (``"counts"`` in: the counts
    alone), until ``None`` or the worker's end of the pipe closes."""
    signal.signal(signal.SIGTERM, _exit)  # the worker exiting: the rows queued are written first
    _yield_to_requests()
    # A daemon (it exits with the worker) may not start processes unless told it may: its
    # model process stops with it (ModelProcess.close), or when the pipe to it closes.
    multiprocessing.current_process().daemon = False
    with FeatureStore(config=config) as store:
        batches = ShadowBatches(store, config)
        # What start-up built lives as long as the process: out of the collector's sight, as
        # in the worker (serving/app.py); a full collection walking it was ~60% of this
        # process's CPU (perf: gc_collect_main, visit_decref, visit_reachable). Again after
        # a candidate's first batch (its input layout, the model process's handle).
        gc.freeze()
        try:
            for asked in messages(conn):  # "counts", or the pickles of a tick's jobs
                conn.send(batches.counts() if asked == "counts"
                          else batches.score([pickle.loads(job) for job in asked]))
                if batches.learned():
                    gc.freeze()
        finally:
            batches.close()


def _yield_to_requests() -> None:
    """Run behind the worker when cores are short (``run_behind_requests``; the model
    process started from here inherits it): the shadow's batches (a few milliseconds of
    CPU every ``serving.shadow.BATCH_WINDOW``) would otherwise take a core from the requests, whose
    latency the shadow may not cost. Under load the jobs wait, and past the worker's
    bound they are dropped and counted."""
    run_behind_requests()


def _exit(signum, frame) -> None:
    raise SystemExit(0)


def _batches(jobs: list[Job]) -> list[list[Job]]:
    """The jobs grouped per candidate, in order, at most MAX_BATCH_ROWS rows each."""
    groups: dict[str, list[list[Job]]] = {}
    rows: dict[str, int] = {}
    for job in jobs:
        runs = groups.setdefault(job.uri, [[]])
        if runs[-1] and rows[job.uri] + job.num_rows > MAX_BATCH_ROWS:
            runs.append([])
            rows[job.uri] = 0
        runs[-1].append(job)
        rows[job.uri] = rows.get(job.uri, 0) + job.num_rows
    return [batch for runs in groups.values() for batch in runs]


def _response(names: list, values: list, statuses: list, event_timestamps: list, types: list) -> OnlineResponse:
    return OnlineResponse(names, values, statuses, event_timestamps,
                          [None if t is None else _feature_type(t) for t in types])


_feature_type = lru_cache(maxsize=256)(parse_type)  # a handful of types, parsed once


def _table(spec: InputSpec, jobs: list[Job]) -> pa.Table:
    """The jobs' input table, in ``spec``'s order and types (an InputError for a value that
    does not fit)."""
    if len(jobs) == 1 or any(isinstance(job.inputs, pa.Table) for job in jobs):
        tables = [job.inputs if isinstance(job.inputs, pa.Table) else ModelInputs(spec, job.inputs, job.num_rows).table
                  for job in jobs]
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)
    columns = [[] for _ in spec.columns]
    for job in jobs:
        for column, values in zip(columns, job.inputs):
            column.extend(values)
    return ModelInputs(spec, columns, sum(job.num_rows for job in jobs)).table
