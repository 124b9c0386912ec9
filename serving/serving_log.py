"""The server's side of the serving log: which requests are logged, their request ids,
the metrics, and the one writer of the process (``featurestore/serving_log``).

``/get-online-features`` logs the rows of a feature service whose ``logging_config`` is
set (a ``sample_rate`` share of its requests); ``/predict`` hands each finished
prediction to ``log_prediction`` (a ``serving_log.sample_rate`` share). Logging costs a
request a coin flip and a ``LogEntry`` of references, queued, and drops (and counts) its
rows rather than waiting when the writer falls behind. A server worker's writer is a
``ServingLogProcess``: the entry's values are copied into flat columns at once (a few
microseconds; the request's objects are freed with it), and a thread hands the columns
over to the serving log's process, which turns them into Arrow and Parquet off the
worker's interpreter lock (``featurestore/serving_log/process.py``); elsewhere (the shadow
process, already off the worker) it is a ``ServingLogWriter``, whose thread does that work
in the process itself.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from starlette.requests import Request

from featurestore.clock import clock_us, seconds_to_us
from featurestore.online.read import OnlineResponse, ReadPlan
from featurestore.serving_log import LogEntry, ServingLogWriter, online_log_entry
from featurestore.serving_log.process import ServingLogProcess
from featurestore.serving_log.settings import ServingLogSettings
from featurestore.serving_log.shadow import SHADOW
from featurestore.serving_log.writer import Dropped, Written
from featurestore.store import FeatureStore
from monitoring.metrics import PREDICTIONS, SERVING_LOG_ROWS_DROPPED, SERVING_LOG_ROWS_WRITTEN
from serving.request_ids import new_request_id

__all__ = ["ServingLog", "count_dropped", "count_scored", "count_written", "request_id"]

log = logging.getLogger("featurestore.serving")


def request_id(request: Request) -> str:
    """The client's ``X-Request-ID`` when it sent one, else a new random id."""
    return request.headers.get("x-request-id") or new_request_id()


class ServingLog:
    def __init__(self, store: FeatureStore, settings: ServingLogSettings | None = None, *,
                 on_written: Written | None = None, on_dropped: Dropped | None = None, own_process: bool = False):
        """``on_written``/``on_dropped``: how rows written and dropped are counted (default:
        this process's metrics; the shadow process sends its counts to its worker's).
        ``own_process``: write in a process of its own (a server worker), not on a thread
        of this one."""
        self.store = store
        self.settings = settings or ServingLogSettings.from_config(store.config, os.environ)
        self.writer: ServingLogWriter | ServingLogProcess | None = None
        self._unscored: set[str] = set()  # shadowed models warned about (the log is off)
        if self.settings.enabled:
            # A server worker's process also scores its shadow candidates (featurestore/serving_log/shadow.py).
            shadows = {"open_store": partial(FeatureStore, config=store.config), "on_scored": count_scored} \
                if own_process else {}
            self.writer = (ServingLogProcess if own_process else ServingLogWriter)(
                store.config.offline_store, queue_rows=self.settings.queue_rows, flush_rows=self.settings.flush_rows,
                flush_seconds=self.settings.flush_seconds, folder=store.serving_log_folder,
                on_written=on_written or count_written, on_dropped=on_dropped or count_dropped, **shadows,
            )

    @property
    def scores_shadows(self) -> bool:
        """Whether entries naming a shadow candidate have it scored (a server worker's log)."""
        return isinstance(self.writer, ServingLogProcess)

    def sampled(self) -> bool:
        """Whether to log a ``/predict`` (a ``serving_log.sample_rate`` share of them)."""
        return self.writer is not None and _sampled(self.settings.sample_rate)

    def shadow_unscored(self, model: str) -> None:
        """A request to ``model`` in a shadow rollout, not scored as the log is off (warned once per model)."""
        if self.writer is None and model not in self._unscored:
            self._unscored.add(model)
            log.warning("model %s is in a shadow rollout, but the serving log is off (serving_log.enabled / "
                        "FEATURESTORE_SERVING_LOG): its candidate is scored on the logged requests, so it scores "
                        "none; turn the log on, or roll the shadow back", model)

    def log_features(self, service: str, plan: ReadPlan, response: OnlineResponse,
                     entity_rows: Mapping[str, Any] | Sequence[Mapping[str, Any]], request: Request) -> None:
        """Log an online answer for feature ``service`` when its logging_config samples it."""
        definition = self.store.contents.feature_services.get(service)
        config = definition.logging if definition is not None else None
        if self.writer is None or config is None or not _sampled(config.sample_rate):
            return
        self.writer.write_entry(service, online_log_entry(plan, response, entity_rows,
                                                          log_time_us=clock_us(self.store.clock),
                                                          request_id=request_id(request)))

    def log_prediction(self, model: str, version: int, join_keys: Sequence[str], response: OnlineResponse,
                       entity_rows: Mapping[str, Any] | Sequence[Mapping[str, Any]], predictions: Sequence[Any],
                       request_id: str, *, variant: str = "stable", served_at: float | None = None,
                       status: str = "ok", latency_ms: float | None = None, sampled: bool | None = None,
                       shadow: tuple[str, float] | None = None, before_model_ms: float | None = None) -> None:
        """Log a finished ``/predict`` (``sampled``, else a ``serving_log.sample_rate`` share of
        them): the ``join_keys`` (the read's, the first columns of ``response``), the request
        fields sent (every entity column that is not a join key), the model's inputs as
        ``response`` names them (its signature's names, each with status and event time),
        the predictions, the request's ``status`` and ``latency_ms``, at ``served_at``
        (default: now). ``shadow``: the candidate (URI, model timeout) the log's process
        scores the same rows with (``before_model_ms``: the request's time up to its model
        call)."""
        if self.writer is None or not (_sampled(self.settings.sample_rate) if sampled is None else sampled):
            return
        now = clock_us(self.store.clock) if served_at is None else seconds_to_us(served_at)
        self.writer.write_entry(model, LogEntry(response, len(join_keys), entity_rows, log_time_us=now,
                                                request_id=request_id, model=model, version=version, variant=variant,
                                                predictions=predictions, status=status, latency_ms=latency_ms,
                                                shadow=shadow, before_model_ms=before_model_ms))

    def close(self) -> None:
        """Write what is queued (at shutdown)."""
        if self.writer is not None:
            self.writer.close()


def count_written(name: str, n: int) -> None:
    SERVING_LOG_ROWS_WRITTEN.labels(name).inc(n)


def count_dropped(name: str, n: int, reason: str) -> None:
    SERVING_LOG_ROWS_DROPPED.labels(name, reason).inc(n)


def count_scored(model: str, version: int, status: str, n: int) -> None:
    """Shadow requests the log's process scored (or dropped), as the worker counts its own."""
    PREDICTIONS.labels(model, str(version), SHADOW, status).inc(n)


def _sampled(rate: float) -> bool:
    return rate >= 1.0 or random.random() < rate
