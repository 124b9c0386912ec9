"""Shadow scoring: a shadow rollout's candidate answers the request stable answered, off
the request path, and its answer is logged, never returned (docs/rollouts.md).

Nothing on the request path waits for the candidate, and the worker spends little on it.
After its answer is built, the request pickles what stable was given (``job_message``:
plain values, a few µs) and appends the bytes to a deque (no lock: a deque's append and
popleft are atomic), and wakes no one: a thread of the shadow's own takes the jobs from
the deque's other end every ``BATCH_WINDOW`` on a timer (a request that woke it would be
preempted for it on a busy machine, and wait for it) and sends them, in one message, to
the worker's shadow process (``serving.shadow_process``), which builds the input table,
has the candidate called (in a model process of its own), writes the answers to the
serving log (variant ``shadow``, the same request id) and answers what to count in this
worker's metrics; the thread reads that answer at its next tick, before it sends again
(one message in flight).

The pickling is the request's, not the thread's, for the caller's p99: pickled on the
thread, a tick's jobs held the interpreter lock for a millisecond at a time, which the
requests of that moment waited for, and the jobs' objects outlived their requests by a
window, in the collector's sight (bench/rollout.py: the c1 p99 ratio went from 1.19 to
1.05 one run after the other; later hosts measured 1.02 to 1.10: docs/rollouts.md). A
tick then costs the worker the thread's wake, a list of bytes and one pipe write; the
shadow and model processes do the rest, behind the requests (``run_behind_requests``):

- a candidate that reads what stable read (the same features and inputs, the usual case
  for a retrained model) is given stable's input values: no second online read. One that
  reads other features has them read first, on the event loop like any read, in a task
  the request does not wait for;
- when ``MAX_PENDING`` jobs wait (the candidate is slower than the traffic) a new one is
  dropped and counted as ``featurestore_predictions_total{variant="shadow",status="dropped"}``;
  so are the jobs of a batch the shadow process died on (it is started anew);
- a thread that found no job for ``IDLE_AFTER`` seconds stops ticking, and the next job
  wakes it (one wake per quiet spell, not per request).
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
from collections import deque
from typing import Any

from featurestore.child_process import ChildGone, ChildProcess, wait_as_requests
from featurestore.config import RepoConfig
from featurestore.models.inputs import InputSpec, ModelInputs
from featurestore.online.read import OnlineResponse
from monitoring.metrics import SERVING_LOG_ROWS_DROPPED, SERVING_LOG_ROWS_WRITTEN
from serving.model_cache import ServedModel
from serving.shadow_process import SHADOW, job_message, serve

__all__ = ["SHADOW", "ShadowScorer", "same_inputs"]

log = logging.getLogger("featurestore.serving")

#: Jobs waiting for the shadow thread before new ones are dropped (per worker process).
MAX_PENDING = 1024
#: Seconds between the thread's looks at the jobs waiting (they go in one message). Half a
#: second measured worse (bigger batches scored at once in the shadow process).
BATCH_WINDOW = 0.1
#: Seconds without jobs after which the thread stops ticking until the next job.
IDLE_AFTER = 1.0
#: Seconds without jobs after which the thread asks the shadow process for the serving
#: log rows it has written since (the worker's metrics count them).
COUNTS_EVERY = 5.0
#: Seconds a stopping server waits for its shadow process to log what it was sent.
STOP_SECONDS = 15.0

_same: dict[tuple[int, int], tuple[InputSpec, InputSpec, bool]] = {}


def same_inputs(a: InputSpec, b: InputSpec) -> bool:
    """Whether two versions read the same features into the same input table (answered
    once per pair of specs: comparing Arrow types costs microseconds)."""
    known = _same.get((id(a), id(b)))
    if known is not None and known[0] is a and known[1] is b:
        return known[2]
    same = (a.features == b.features and a.full_feature_names == b.full_feature_names and a.columns == b.columns
            and a.types == b.types and a.defaults == b.defaults and a.on_missing == b.on_missing)
    if len(_same) >= 64:  # specs are kept per version; a few rollouts at a time
        _same.clear()
    _same[id(a), id(b)] = (a, b, same)
    return same


class ShadowScorer:
    """The jobs waiting, the thread that batches them and the shadow process
    (``serving.shadow_process``) that scores and logs them."""

    def __init__(self, config: RepoConfig, max_pending: int = MAX_PENDING):
        self._max_pending = max_pending
        # Appended on the event loop, taken by the thread from the other end: a job appended
        # while the thread takes them waits for its next tick (swapping a list could lose it).
        self._pending: deque[tuple] = deque()
        self._process = ChildProcess(serve, (config,), name="featurestore-shadow-process")
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._wake = threading.Event()  # set by stop(), and by a job that finds the thread idle
        self._idle = False
        self._stopping = False
        self._in_flight: tuple | None = None  # the jobs sent whose answer is not read yet, and their candidates

    def submit(self, candidate: ServedModel, request_id: str, served_at: float, entities: Any, request: Any,
               join_keys: tuple, features: OnlineResponse, inputs: ModelInputs, before_model_ms: float) -> bool:
        """Queue one request for ``candidate`` (what stable was given: its features and
        inputs, in the candidate's signature order and types; ``served_at``: the store
        clock's time of stable's answer; ``before_model_ms``: the request's time up to a
        model call); False (counted as dropped) when MAX_PENDING jobs wait."""
        if self._thread is None:
            self._start()
        pending = self._pending
        if len(pending) >= self._max_pending:
            candidate.count("dropped", SHADOW)
            return False
        # Pickled now, on the request path (~4 us in a loop of its own, ~15 us on a request's
        # cold caches, measured in docs/rollouts.md): the queue holds bytes, not the request's
        # objects, and the thread's tick has no pickling to hold the interpreter lock for.
        pending.append((candidate, request_id, pickle.dumps(
            job_message(candidate.uri, candidate.timeout, request_id, served_at, before_model_ms, inputs,
                        entities, request, join_keys, features), protocol=pickle.HIGHEST_PROTOCOL)))
        if self._idle:  # read after the append: the thread sets it before its last look (_run)
            self._wake.set()
        return True

    def stop(self, wait: float = STOP_SECONDS) -> None:
        """Let the thread send the jobs waiting, and wait (at most ``wait`` seconds) while the
        shadow process, back at the worker's priority, scores them, writes its serving log
        rows and exits."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._stopping = True
                self._wake.set()
        if thread is None:
            return

        def finished(turn: float) -> bool:
            thread.join(turn)
            return not thread.is_alive()

        # No requests left to run behind: at their priority the shadow process (and its
        # model process) scores and writes its rows in time on busy cores.
        wait_as_requests(lambda: self._process.pid, finished, wait)

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._stopping = self._idle = False
                self._wake.clear()
                self._thread = threading.Thread(target=self._run, name="featurestore-shadow", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        quiet_since = time.monotonic()
        unreported = False  # whether the shadow process may have written rows not counted yet
        try:
            self._process.start()  # starting up while the first jobs gather
            while True:
                if self._idle:
                    if not self._wake.wait(COUNTS_EVERY if unreported else None):
                        self._exchange("counts", {})  # still quiet: the rows written since are counted
                        unreported = False
                        continue
                    self._idle = False  # a job (or stop()) woke it: the job's batch gathers for a window
                time.sleep(BATCH_WINDOW)  # a timer: no request wakes this thread
                stopping = self._stopping
                self._collect()  # the last piece's answer, there since (unless the candidate is slow)
                jobs = self._take()
                if jobs:
                    self.score(jobs)
                    unreported, quiet_since = True, time.monotonic()
                if stopping:
                    self._collect()
                    return
                if not jobs and time.monotonic() - quiet_since >= IDLE_AFTER:
                    self._wake.clear()
                    self._idle = True
                    if self._pending or self._stopping:  # they came before _idle was set: no wake
                        self._idle = False
        finally:
            self._process.close()

    def _take(self) -> list[tuple]:
        """The jobs waiting now, oldest first (those appended meanwhile stay for the next tick)."""
        pending = self._pending
        return [pending.popleft() for _ in range(len(pending))]

    def score(self, jobs: list[tuple]) -> None:
        """Send ``jobs`` (each pickled by ``submit``) to the shadow process in one message (one
        wake of it); its answer is read by ``_collect``, at the thread's next tick (by then it
        waits in the pipe, and reading it wakes no thread)."""
        self._collect()  # one message in flight
        served = {candidate.uri: candidate for candidate, _, _ in jobs}
        try:
            self._process.send([message for _, _, message in jobs])
        except ChildGone as exc:
            self._failed(jobs, exc)
            return
        self._in_flight = (jobs, served)

    def _collect(self) -> None:
        """The answer to the jobs in flight (waiting for it while the process scores them),
        its counts into the metrics; the jobs counted as dropped when the process died."""
        if self._in_flight is None:
            return
        (jobs, served), self._in_flight = self._in_flight, None
        try:
            answer = self._process.receive()
        except ChildGone as exc:
            self._failed(jobs, exc)
            return
        self._count(answer, served)

    def _exchange(self, message, served: dict[str, ServedModel]) -> None:
        """``message`` to the shadow process and its counts into the metrics (nothing in flight)."""
        try:
            self._process.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
            answer = self._process.receive()
        except ChildGone as exc:
            log.warning("the shadow process failed (%s)", exc)
            return
        self._count(answer, served)

    @staticmethod
    def _failed(jobs: list[tuple], exc: ChildGone) -> None:
        """Jobs the shadow process died on (it is started anew with the next message)."""
        log.warning("the shadow process failed (%s); its batch is counted as dropped", exc)
        for job in jobs:
            job[0].count("dropped", SHADOW)

    @staticmethod
    def _count(answer: tuple, served: dict[str, ServedModel]) -> None:
        outcomes, written, dropped = answer
        for uri, status, n in outcomes:
            if uri in served:
                served[uri].count(status, SHADOW, n)
        for name, n in written:
            SERVING_LOG_ROWS_WRITTEN.labels(name).inc(n)
        for name, reason, n in dropped:
            SERVING_LOG_ROWS_DROPPED.labels(name, reason).inc(n)
