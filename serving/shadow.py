"""Shadow scoring: a shadow rollout's candidate answers the request stable answered, off
the request path, and its answer is logged, never returned (docs/rollouts.md).

Nothing on the request path waits for the candidate. The request puts one job on a
bounded queue after its answer is built (a few microseconds); a thread of the shadow's
own gathers the jobs, has the candidate called in a process of its own
(``featurestore.models.process``) and hands each answer on (``serving.finished``: the
serving log, variant ``shadow``, the same request id). So:

- the candidate never runs on the event loop, on the runner threads that answer
  requests, nor under this process's interpreter lock: a model call holds that lock for
  most of its time (scikit-learn validates its input in Python), and the requests of a
  busy server would wait for it, one in every batch. Here the lock is held only to stack
  the batch's input tables, send them down a pipe and log the answers, one job at a time
  (released in between); a slow or hung candidate delays only later shadow scorings;
- a candidate that reads what stable read (the same features and inputs, the usual case
  for a retrained model) is given stable's input table: no second online read. One that
  reads other features has them read first, on the event loop like any read, in a task
  the request does not wait for;
- when the queue is full (the candidate is slower than the traffic) the job is dropped
  and counted as ``featurestore_predictions_total{variant="shadow",status="dropped"}``;
- the thread scores the jobs that arrived within ``BATCH_WINDOW`` in one model call per
  candidate (their input tables stacked), since a model's fixed cost per call dominates
  a row or two (scikit-learn spends most of a millisecond validating its input). A batch
  the model raised on is scored again job by job, so a failure stays with the request
  that caused it;
- the logged ``latency_ms`` is what the request would have taken with the candidate:
  stable's time up to its model call, plus the candidate's call (its batch's, as timed in
  the model process: never less than the request's own would have been), and its own
  read. A call that took longer than the model's timeout is logged as ``timeout``, as
  the request would have been answered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa

from featurestore.config import RepoConfig
from featurestore.models.inputs import InputSpec, ModelInputs
from featurestore.models.process import ModelCallFailed, ModelProcess
from featurestore.online.read import OnlineResponse, ReadPlan
from featurestore.store import FeatureStore
from serving.finished import FinishedPrediction, prediction_finished
from serving.model_cache import ServedModel

__all__ = ["SHADOW", "ShadowJob", "ShadowScorer", "same_inputs"]

log = logging.getLogger("featurestore.serving")

SHADOW = "shadow"
#: Jobs waiting for the shadow thread before new ones are dropped (per worker process).
MAX_PENDING = 1024
#: Seconds the thread lets jobs gather after the first before it scores them together,
#: and the most rows one model call is given.
BATCH_WINDOW, MAX_BATCH_ROWS = 0.02, 1024


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """One request to score with the candidate: what stable was given, and when."""

    served: ServedModel                 # the candidate
    request_id: str
    served_at: float                    # the store clock's time of stable's answer
    entities: Any
    request: Any
    plan: ReadPlan
    features: OnlineResponse
    inputs: ModelInputs                 # in the candidate's signature order and types (table built here)
    before_model_ms: float              # the request's time up to a model call


def same_inputs(a: InputSpec, b: InputSpec) -> bool:
    """Whether two versions read the same features into the same input table."""
    return (a.features == b.features and a.full_feature_names == b.full_feature_names and a.columns == b.columns
            and a.types == b.types and a.defaults == b.defaults and a.on_missing == b.on_missing)


class ShadowScorer:
    """The bounded queue of shadow jobs, the thread that batches them and the process
    (``featurestore.models.process``) that calls the candidates."""

    def __init__(self, sinks: Sequence, config: RepoConfig, max_pending: int = MAX_PENDING):
        self.sinks = sinks
        self._queue: queue.Queue = queue.Queue(max_pending)
        self._models = ModelProcess(partial(FeatureStore, config=config))
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: ShadowJob) -> bool:
        """Queue ``job``; False (counted as dropped) when the queue is full."""
        if self._thread is None:
            self._start()
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            job.served.count("dropped", SHADOW)
            return False
        return True

    def stop(self) -> None:
        """Let the thread finish the jobs queued, then exit with the model process (nothing
        waits for it)."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="featurestore-shadow", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            while (first := self._queue.get()) is not None:
                time.sleep(BATCH_WINDOW)  # the GIL is the requests' meanwhile
                jobs, stopping = [first], False
                while not stopping and len(jobs) < MAX_PENDING:
                    try:
                        job = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    stopping = job is None
                    if not stopping:
                        jobs.append(job)
                for batch in _batches(jobs):
                    try:
                        self.score(batch)
                    except Exception:  # never lose the thread to one batch
                        log.exception("shadow scoring of %d request(s) failed", len(batch))
                if stopping:
                    return
        finally:
            self._models.close()

    def score(self, jobs: list[ShadowJob]) -> None:
        """Call the candidate on ``jobs`` (one candidate's) in one call in the model process
        and hand each answer on; a batch the model raised on is scored again job by job."""
        served = jobs[0].served
        began = time.perf_counter()
        # The tables are built on this thread, not on the request path (a served request
        # that needed no table has a matrix only).
        tables = [job.inputs.table for job in jobs]
        table = tables[0] if len(tables) == 1 else pa.concat_tables(tables)
        try:
            predictions, took = self._models.predict(served.version.uri, table)
            if not isinstance(predictions, list) or len(predictions) != table.num_rows:
                raise ModelCallFailed(f"it returned {len(predictions) if isinstance(predictions, list) else 'no list'}"
                                      f" for {table.num_rows} rows", loaded=True)
        except ModelCallFailed as exc:  # the callers have stable's answers; the log has the failure
            if len(jobs) > 1 and exc.loaded:
                for job in jobs:
                    self.score([job])
                return
            log.info("shadow %s failed on %d request(s) (%s...): %s", served.version.uri, len(jobs),
                     jobs[0].request_id, exc)
            took = time.perf_counter() - began
            for job in jobs:
                self._finish(job, [None] * job.inputs.num_rows, "model_error", took)
            return
        start = 0
        for job in jobs:
            n = job.inputs.num_rows
            answered = predictions[start:start + n]
            start += n
            if took > served.timeout:
                self._finish(job, [None] * n, "timeout", took)
            else:
                self._finish(job, answered, "ok", took)

    def _finish(self, job: ShadowJob, predictions: list, status: str, took: float) -> None:
        # Logging a batch's answers back to back would hold the GIL for as long as a model
        # call did: between jobs it is released, and a request waiting for it takes it.
        time.sleep(0)
        served = job.served
        served.count(status, SHADOW)
        version = served.version
        prediction_finished(self.sinks, FinishedPrediction(
            request_id=job.request_id, model=version.name, version=version.version, variant=SHADOW,
            served_at=job.served_at, entities=job.entities, request=job.request, features=job.features,
            plan=job.plan, inputs=job.inputs, predictions=predictions, status=status,
            latency_ms=job.before_model_ms + took * 1000.0,
        ))


def _batches(jobs: list[ShadowJob]) -> list[list[ShadowJob]]:
    """The jobs grouped per candidate (and input schema), in order, at most MAX_BATCH_ROWS rows each."""
    groups: dict[tuple, list[list[ShadowJob]]] = {}
    for job in jobs:
        runs = groups.setdefault((id(job.served), job.inputs.spec.schema), [[]])
        if runs[-1] and sum(j.inputs.num_rows for j in runs[-1]) + job.inputs.num_rows > MAX_BATCH_ROWS:
            runs.append([])
        runs[-1].append(job)
    return [batch for runs in groups.values() for batch in runs]
