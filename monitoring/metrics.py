"""The Prometheus metrics a process counts itself, in one place, grouped by the subsystem
that records them. (Metrics computed at scrape time from stored records, such as the job
metrics of ``monitoring.jobs``, are collectors of their own.) docs/metrics.md lists them
for operators; keep the two in step.

Conventions (https://prometheus.io/docs/practices/naming/):

- names are ``featurestore_<subsystem>_<what>_<unit>``; counters end in ``_total``,
  durations are in ``_seconds``, plain counts have no unit suffix;
- label values come from a small, known set (route templates, view names, status codes),
  never from request data, so the number of series stays bounded;
- add a new subsystem as a new section below, with its own bucket choice if the defaults
  do not fit.

Several processes: ``prometheus_client`` decides when it is first imported whether to
keep values in memory or in per-process files under ``PROMETHEUS_MULTIPROC_DIR``.
``featurestore serve --workers N`` (N > 1) sets that variable to a fresh temporary folder
before anything imports this module, and ``render()`` then sums every worker's files, so
a scrape sees the whole server whichever worker answers it.

The metrics a request records are updated through ``monitoring.metric_batches`` (added to
these values in batches: a prometheus_client update costs microseconds, several workers'
more); it is imported before the metrics are defined, so that a collection of the
default registry adds the pending updates before it reads them.
"""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from monitoring import metric_batches

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_DURATION",
    "MODEL_INFO",
    "MODEL_INLINE",
    "MULTIPROCESS",
    "ONLINE_NULL_VALUES",
    "ONLINE_READ_DURATION",
    "ONLINE_REQUEST_ENTITIES",
    "ONLINE_VALUE_AGE",
    "PREDICTIONS",
    "PREDICTION_DURATION",
    "PUSH_LATE_EVENTS",
    "PUSH_ROWS",
    "REGISTRY_RELOADS",
    "SERVING_LOG_ROWS_DROPPED",
    "SERVING_LOG_ROWS_WRITTEN",
    "mark_process_dead",
    "render",
]

#: Whether values live in per-process files (fixed when prometheus_client was imported).
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

#: Seconds; fine below a millisecond, where online reads live.
FAST_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

# --- HTTP serving (serving/) ----------------------------------------------------------

HTTP_REQUESTS = Counter(
    "featurestore_http_requests_total",
    "HTTP requests answered, by endpoint (the route template), method and status code.",
    ["endpoint", "method", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "featurestore_http_request_duration_seconds",
    "Time from receiving an HTTP request to sending its last byte, by endpoint, method and status code.",
    ["endpoint", "method", "status"],
    buckets=FAST_LATENCY_BUCKETS,
)
REGISTRY_RELOADS = Counter(
    "featurestore_serving_registry_reloads_total",
    "Times the server loaded new definitions after an apply (without a restart).",
)

# --- online features (serving/routes/features.py) -------------------------------------

ONLINE_READ_DURATION = Histogram(
    "featurestore_online_read_duration_seconds",
    "One online store round trip of an online features request, by store type.",
    ["store"],
    buckets=FAST_LATENCY_BUCKETS,
)
ONLINE_REQUEST_ENTITIES = Histogram(
    "featurestore_online_request_entities",
    "Entity rows per online features request.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
)
ONLINE_NULL_VALUES = Counter(
    "featurestore_online_null_values_total",
    "Feature values served as null, by feature view and reason: not_found (no row for the "
    "entity), outside_max_age (the row is older than the view's ttl), null_value (stored null).",
    ["feature_view", "reason"],
)
ONLINE_VALUE_AGE = Histogram(
    "featurestore_online_value_age_seconds",
    "Age (serving time minus event time) of the oldest feature row served, one observation "
    "per online request and feature view.",
    ["feature_view"],
    buckets=(1, 10, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400, 30 * 86400),
)

# --- push (serving/routes/push.py) -----------------------------------------------------

PUSH_ROWS = Counter(
    "featurestore_push_rows_total",
    "Rows accepted by push, by push source and target (online, offline, online_and_offline).",
    ["push_source", "to"],
)
PUSH_LATE_EVENTS = Counter(
    "featurestore_push_late_events_total",
    "Pushed events dropped online because they are older than the aggregation view's longest "
    "window (they still reach the offline store), by feature view. The stream worker counts "
    "its own as featurestore_stream_late_events_total.",
    ["feature_view"],
)

# --- serving log (featurestore/serving_log, serving/serving_log.py) ---------------------

SERVING_LOG_ROWS_WRITTEN = Counter(
    "featurestore_serving_log_rows_written_total",
    "Rows written to the serving log, by log (the model or feature service served).",
    ["log"],
)
SERVING_LOG_ROWS_DROPPED = Counter(
    "featurestore_serving_log_rows_dropped_total",
    "Rows not logged, by log and reason: queue_full (the writer fell behind; requests never "
    "wait for it) or unwritable (the offline store could not be written, or a value did not fit).",
    ["log", "reason"],
)


# --- predictions (serving/routes/predict.py, serving/routes/inference.py) -------------
# The model label is a registered model's name (never request text: an unknown name is
# answered 404 before anything is counted), so the series are bounded by the registry.

PREDICTIONS = Counter(
    "featurestore_predictions_total",
    "Prediction requests for a resolved model version, by model, version, variant and status: ok, "
    "invalid_input (4xx: bad body, missing feature under on_missing=error), unavailable (online store "
    "down), load_failed (503), model_error (the model raised), timeout (504), dropped (a shadow scoring "
    "not made: its queue was full).",
    ["model", "version", "variant", "status"],
)
PREDICTION_DURATION = Histogram(
    "featurestore_prediction_duration_seconds",
    "Time spent per prediction request and stage: features (the online read, on-demand transforms "
    "included), transform (building the model's input table: on_missing policy, signature order), "
    "model (the model call, the thread hop included when it runs on one).",
    ["model", "stage"],
    buckets=FAST_LATENCY_BUCKETS,
)
MODEL_INFO = Gauge(
    "featurestore_model_info",
    "1 for the version each model alias points at, as this server sees it (0 for versions it "
    "pointed at earlier in the server's life).",
    ["model", "version", "alias"],
    multiprocess_mode="livemax",
)
MODEL_INLINE = Gauge(
    "featurestore_model_inline",
    "1 while this server calls the model version on its event loop (it proved fast: "
    "serving.inline_call_budget_ms), 0 while on its model threads; with several workers, how many do.",
    ["model", "version"],
    multiprocess_mode="livesum",
)

ROLLOUT_WEIGHT = Gauge(
    "featurestore_rollout_weight",
    "The percent of a model's traffic its running or paused rollout sends to the candidate, as this "
    "server sees it (0 when none).",
    ["model"],
    multiprocess_mode="livemax",
)
ROLLOUT_FAILED_CHECKS = Gauge(
    "featurestore_rollout_failed_checks",
    "Failed analysis intervals of a model's running or paused rollout (0 when none).",
    ["model"],
    multiprocess_mode="livemax",
)


def render() -> tuple[bytes, str]:
    """The exposition text for a scrape and its content type; with several processes,
    the sum over all of them (live or exited: counters must never go backwards)."""
    if MULTIPROCESS:
        metric_batches.flush()  # this worker's own; the others flush every FLUSH_SECONDS
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def mark_process_dead(pid: int) -> None:
    """Called by a worker as it exits: its pending updates are added, and live-process
    gauges drop its values."""
    metric_batches.flush()
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid)
