"""The one place a finished ``/predict`` hands its prediction on: ``prediction_finished``.

What a prediction was made of and what it answered, as the server holds it after the
answer is built, goes to every callable in ``ServingState.prediction_sinks``; the serving
log (``serving.serving_log``) is the first. A sink runs on the
event loop before the answer is sent, so it must only enqueue (never block or do I/O); a
sink that raises is logged and skipped, never failing the request. A shadow candidate's
answers are not handed on here: the serving log's process scores the candidate on the
logged rows and writes them itself (``featurestore/serving_log/shadow.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.models.inputs import ModelInputs
from featurestore.online.read import OnlineResponse, ReadPlan

__all__ = ["FinishedPrediction", "prediction_finished"]

log = logging.getLogger("featurestore.serving")


@dataclass(frozen=True, slots=True)
class FinishedPrediction:
    """One ``/predict`` request's prediction, row j of every column being entity row j."""

    request_id: str
    model: str
    version: int
    variant: str
    served_at: float                       # seconds since the epoch (the store's clock)
    # What the caller sent: join key -> values, request field -> values (column-major), or
    # the entity rows as sent (a list of row objects, request fields inside).
    entities: Mapping[str, list] | Sequence[Mapping[str, Any]]
    request: Mapping[str, list] | None
    # The online read: join keys then the model's feature inputs (named as in its
    # signature), with per value a status (PRESENT, NULL_VALUE, NOT_FOUND,
    # OUTSIDE_MAX_AGE) and an event time in microseconds, UTC (None: none).
    features: OnlineResponse
    plan: ReadPlan                         # the read's plan (join keys, views)
    inputs: ModelInputs                    # what the model received, in signature order (``.table``)
    predictions: list                      # one value (or list of values) per entity row; None: failed
    # The outcome, as featurestore_predictions_total spells it: ok, model_error or timeout
    # (a request that failed before its model was called is not handed on).
    status: str = "ok"
    latency_ms: float | None = None        # from the request's arrival to its answer or failure
    # Whether the serving log keeps it (None: its sample rate decides), and the shadow
    # candidate, (URI, model timeout), that scores the same rows there (a logged request's).
    sampled: bool | None = None
    shadow: tuple[str, float] | None = None
    before_model_ms: float | None = None   # from the request's arrival to its model call


def prediction_finished(sinks: Sequence, finished: FinishedPrediction) -> None:
    """Hand ``finished`` to every sink; a failing sink is logged, the request goes on."""
    for sink in sinks:
        try:
            sink(finished)
        except Exception:
            log.exception("a prediction sink (%r) failed; the prediction was answered anyway", sink)
