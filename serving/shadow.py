"""Shadow scoring: a shadow rollout's candidate answers the request stable answered, off
the request path, and its answer is logged, never returned (docs/rollouts.md).

Nothing on the request path waits for the candidate. The request puts one job on a
bounded queue after its answer is built (a few microseconds); a thread of the shadow's
own takes the jobs one by one, calls the candidate's model and hands its answer on
(``serving.finished``: the serving log, variant ``shadow``, the same request id). So:

- the candidate never runs on the event loop nor on the runner threads that answer
  requests: a slow or hung candidate delays only later shadow scorings;
- a candidate that reads what stable read (the same features and inputs, the usual case
  for a retrained model) is given stable's input table: no second online read. One that
  reads other features has them read first, on the event loop like any read, in a task
  the request does not wait for;
- when the queue is full (the candidate is slower than the traffic) the job is dropped
  and counted as ``featurestore_predictions_total{variant="shadow",status="dropped"}``;
- the logged ``latency_ms`` is what the request would have taken with the candidate:
  stable's time up to its model call, plus the candidate's call (and its own read). A
  call that took longer than the model's timeout is logged as ``timeout``, as the
  request would have been answered.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from featurestore.models.inputs import InputSpec
from featurestore.online.read import OnlineResponse, ReadPlan
from serving.finished import FinishedPrediction, prediction_finished
from serving.model_cache import ServedModel

__all__ = ["SHADOW", "ShadowJob", "ShadowScorer", "same_inputs"]

log = logging.getLogger("featurestore.serving")

SHADOW = "shadow"
#: Jobs waiting for the shadow thread before new ones are dropped (per worker process).
MAX_PENDING = 1024


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
    inputs: pa.Table                    # in the candidate's signature order and types
    before_model_ms: float              # the request's time up to a model call


def same_inputs(a: InputSpec, b: InputSpec) -> bool:
    """Whether two versions read the same features into the same input table."""
    return (a.features == b.features and a.full_feature_names == b.full_feature_names and a.columns == b.columns
            and a.types == b.types and a.defaults == b.defaults and a.on_missing == b.on_missing)


class ShadowScorer:
    """The bounded queue of shadow jobs and the thread that scores them."""

    def __init__(self, sinks: Sequence, max_pending: int = MAX_PENDING):
        self.sinks = sinks
        self._queue: queue.Queue = queue.Queue(max_pending)
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
        """Let the thread finish the jobs queued, then exit (nothing waits for it)."""
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
        while (job := self._queue.get()) is not None:
            try:
                self.score(job)
            except Exception:  # never lose the thread to one job
                log.exception("shadow scoring of request %s failed", job.request_id)

    def score(self, job: ShadowJob) -> None:
        """Call the candidate on ``job`` and hand its answer on (in the calling thread)."""
        served, n = job.served, job.inputs.num_rows
        began = time.perf_counter()
        try:
            predictions = served.loaded.predictor.predict(job.inputs)
            if not isinstance(predictions, list) or len(predictions) != n:
                raise TypeError(f"it returned {len(predictions) if isinstance(predictions, list) else 'no list'} "
                                f"for {n} rows")
            status = "ok"
        except Exception as exc:  # the caller has stable's answer; the log has the failure
            log.info("shadow %s failed on request %s: %s: %s", served.version.uri, job.request_id,
                     type(exc).__name__, exc)
            predictions, status = [None] * n, "model_error"
        took = time.perf_counter() - began
        if status == "ok" and took > served.timeout:
            predictions, status = [None] * n, "timeout"
        served.count(status, SHADOW)
        version = served.version
        prediction_finished(self.sinks, FinishedPrediction(
            request_id=job.request_id, model=version.name, version=version.version, variant=SHADOW,
            served_at=job.served_at, entities=job.entities, request=job.request, features=job.features,
            plan=job.plan, inputs=job.inputs, predictions=predictions, status=status,
            latency_ms=job.before_model_ms + took * 1000.0,
        ))
