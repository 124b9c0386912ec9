"""Shadow scoring: a shadow rollout's candidate answers the request stable answered, off
the request path, and its answer is logged, never returned (docs/rollouts.md).

Nothing on the request path waits for the candidate, and the worker spends next to
nothing on it. The request puts one job on a bounded queue after its answer is built (a
few microseconds); a thread of the shadow's own gathers the jobs of each
``BATCH_WINDOW`` and sends them, as plain values in one pickle, to the worker's shadow
process (``serving.shadow_process``), which builds the input table, has the candidate
called (in a model process of its own) and writes the answers to the serving log
(variant ``shadow``, the same request id). The thread reads back what to count in this
worker's metrics. So the worker's interpreter lock is held, per batch, only to gather
and pickle the jobs (the requests of a busy server wait for whoever holds it):

- a candidate that reads what stable read (the same features and inputs, the usual case
  for a retrained model) is given stable's input values: no second online read. One that
  reads other features has them read first, on the event loop like any read, in a task
  the request does not wait for;
- when the queue is full (the candidate is slower than the traffic) the job is dropped
  and counted as ``featurestore_predictions_total{variant="shadow",status="dropped"}``;
  so are the jobs of a batch the shadow process died on (it is started anew).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from featurestore.child_process import ChildGone, ChildProcess
from featurestore.config import RepoConfig
from featurestore.models.inputs import InputSpec, ModelInputs
from featurestore.online.read import OnlineResponse, ReadPlan
from monitoring.metrics import SERVING_LOG_ROWS_DROPPED, SERVING_LOG_ROWS_WRITTEN
from serving.model_cache import ServedModel
from serving.shadow_process import SHADOW, job_message, serve

__all__ = ["SHADOW", "ShadowJob", "ShadowScorer", "same_inputs"]

log = logging.getLogger("featurestore.serving")

#: Jobs waiting for the shadow thread before new ones are dropped (per worker process).
MAX_PENDING = 1024
#: Seconds the thread lets jobs gather after the first before it sends them together.
BATCH_WINDOW = 0.02
#: Seconds without jobs after which the thread asks the shadow process for the serving
#: log rows it has written since (the worker's metrics count them).
COUNTS_EVERY = 5.0
#: Seconds a stopping server waits for its shadow process to log what it was sent.
STOP_SECONDS = 15.0


@dataclass(slots=True)
class ShadowJob:
    """One request to score with the candidate: what stable was given, and when."""

    served: ServedModel                 # the candidate
    request_id: str
    served_at: float                    # the store clock's time of stable's answer
    entities: Any
    request: Any
    plan: ReadPlan
    features: OnlineResponse
    inputs: ModelInputs                 # in the candidate's signature order and types
    before_model_ms: float              # the request's time up to a model call


def same_inputs(a: InputSpec, b: InputSpec) -> bool:
    """Whether two versions read the same features into the same input table."""
    return (a.features == b.features and a.full_feature_names == b.full_feature_names and a.columns == b.columns
            and a.types == b.types and a.defaults == b.defaults and a.on_missing == b.on_missing)


class ShadowScorer:
    """The bounded queue of shadow jobs, the thread that batches them and the shadow
    process (``serving.shadow_process``) that scores and logs them."""

    def __init__(self, config: RepoConfig, max_pending: int = MAX_PENDING):
        self._queue: queue.Queue = queue.Queue(max_pending)
        self._process = ChildProcess(serve, (config,), name="featurestore-shadow-process")
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

    def stop(self, wait: float = STOP_SECONDS) -> None:
        """Let the thread send the jobs queued, and wait (at most ``wait`` seconds) while the
        shadow process scores them, writes its serving log rows and exits."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(wait)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="featurestore-shadow", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        unreported = False  # whether the shadow process may have written rows not counted yet
        try:
            while True:
                try:
                    first = self._queue.get(timeout=COUNTS_EVERY if unreported else None)
                except queue.Empty:
                    self._exchange("counts", {})
                    unreported = False
                    continue
                if first is None:
                    return
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
                self.score(jobs)
                unreported = True
                if stopping:
                    return
        finally:
            self._process.close()

    def score(self, jobs: list[ShadowJob]) -> None:
        """Send ``jobs`` to the shadow process and count what it did with them."""
        served: dict[str, ServedModel] = {}
        messages = []
        for job in jobs:
            candidate = job.served
            uri = candidate.version.uri
            served[uri] = candidate
            messages.append(job_message(uri, candidate.timeout, job.request_id, job.served_at, job.before_model_ms,
                                        job.inputs, job.entities, job.request, job.plan.join_keys, job.features))
        if not self._exchange(messages, served):
            for job in jobs:
                job.served.count("dropped", SHADOW)

    def _exchange(self, message, served: dict[str, ServedModel]) -> bool:
        """``message`` to the shadow process and its counts into the metrics; False when
        the process died meanwhile (it is started anew with the next message)."""
        try:
            self._process.send(message)
            outcomes, written, dropped = self._process.receive()
        except ChildGone as exc:
            log.warning("the shadow process failed (%s); its batch is counted as dropped", exc)
            return False
        for (uri, status), n in outcomes.items():
            if uri in served:
                served[uri].count(status, SHADOW, n)
        for name, n in written.items():
            SERVING_LOG_ROWS_WRITTEN.labels(name).inc(n)
        for (name, reason), n in dropped.items():
            SERVING_LOG_ROWS_DROPPED.labels(name, reason).inc(n)
        return True
