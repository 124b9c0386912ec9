"""Stream worker metrics: what ``featurestore stream`` counts, and the streams' backlog.

Counted by the worker (through ``PrometheusStreamObserver``, its ``StreamObserver``):

- ``featurestore_stream_events_total`` (counter; stream, push_source): entries applied;
- ``featurestore_stream_reclaimed_events_total`` (counter; stream): of those, entries
  that were pending before (re-read after a restart, or claimed from a dead worker);
- ``featurestore_stream_duplicate_events_total`` (counter; stream): events an
  aggregation state already held (redeliveries; counted once, as they should be);
- ``featurestore_stream_late_events_total`` (counter; feature_view): events older than
  the view's longest window, dropped online (the offline store still gets them);
- ``featurestore_stream_dead_letters_total`` (counter; stream): bad entries moved to
  ``{stream}:dead``;
- ``featurestore_stream_batch_duration_seconds`` (histogram; stream): reading a batch
  to having it applied online;
- ``featurestore_stream_event_delay_seconds`` (histogram; stream): XADD to applied
  online, i.e. when a lookup sees it (sampled: up to 64 entries per batch);
- ``featurestore_stream_offline_rows_total`` (counter; push_source) and
  ``featurestore_stream_flush_duration_seconds`` (histogram): offline appends.

Read from Redis at each scrape (``StreamLagCollector``; ``XINFO GROUPS``), so any
process can expose them and they are right even while every worker is down:

- ``featurestore_stream_lag`` (gauge; stream, group): entries not yet delivered to the group;
- ``featurestore_stream_pending`` (gauge; stream, group): delivered, not yet acknowledged;
- ``featurestore_stream_length`` (gauge; stream): entries in the stream.

Exposition: ``featurestore stream`` serves all of these on ``--metrics-port`` (9108)
with ``serve_stream_metrics``. The API server can add the backlog gauges to its own
``/metrics`` with ``render_stream_lag(store)``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from featurestore.streaming.config import StreamSettings
from featurestore.streaming.worker import BatchReport, FlushReport

__all__ = [
    "PrometheusStreamObserver",
    "STREAM_BATCH_DURATION",
    "STREAM_DEAD_LETTERS",
    "STREAM_DUPLICATES",
    "STREAM_EVENTS",
    "STREAM_EVENT_DELAY",
    "STREAM_FLUSH_DURATION",
    "STREAM_LATE_EVENTS",
    "STREAM_OFFLINE_ROWS",
    "STREAM_RECLAIMED",
    "StreamLagCollector",
    "render_stream_lag",
    "serve_stream_metrics",
]

log = logging.getLogger("featurestore.stream")

#: Seconds: a batch takes milliseconds; a delay past a few seconds means a backlog.
DELAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0)

STREAM_EVENTS = Counter(
    "featurestore_stream_events_total",
    "Stream entries applied by the worker (online at once, offline at the next flush), by stream and push source.",
    ["stream", "push_source"],
)
STREAM_RECLAIMED = Counter(
    "featurestore_stream_reclaimed_events_total",
    "Applied entries that were pending before: re-read after a restart or claimed from a stopped worker.",
    ["stream"],
)
STREAM_DUPLICATES = Counter(
    "featurestore_stream_duplicate_events_total",
    "Events an aggregation state already held (redelivered); they are not counted again.",
    ["stream"],
)
STREAM_LATE_EVENTS = Counter(
    "featurestore_stream_late_events_total",
    "Events older than the feature view's longest window: dropped online, still appended offline.",
    ["feature_view"],
)
STREAM_DEAD_LETTERS = Counter(
    "featurestore_stream_dead_letters_total",
    "Bad stream entries (missing or unconvertible fields) moved to the {stream}:dead stream.",
    ["stream"],
)
STREAM_BATCH_DURATION = Histogram(
    "featurestore_stream_batch_duration_seconds",
    "Time to check, cast and apply one batch of stream entries online.",
    ["stream"],
    buckets=DELAY_BUCKETS,
)
STREAM_EVENT_DELAY = Histogram(
    "featurestore_stream_event_delay_seconds",
    "Seconds from XADD to the event being applied online (visible to lookups); sampled, up to 64 per batch.",
    ["stream"],
    buckets=DELAY_BUCKETS,
)
STREAM_OFFLINE_ROWS = Counter(
    "featurestore_stream_offline_rows_total",
    "Rows the stream worker appended to the offline store, by push source.",
    ["push_source"],
)
STREAM_FLUSH_DURATION = Histogram(
    "featurestore_stream_flush_duration_seconds",
    "Time to write one offline Parquet file of buffered stream rows.",
    buckets=DELAY_BUCKETS,
)


class PrometheusStreamObserver:
    """The worker's ``StreamObserver`` that records the counters and histograms above."""

    def batch(self, report: BatchReport) -> None:
        stream = report.stream
        STREAM_EVENTS.labels(stream, report.push_source).inc(report.events)
        if report.reclaimed:
            STREAM_RECLAIMED.labels(stream).inc(report.reclaimed)
        if report.duplicates:
            STREAM_DUPLICATES.labels(stream).inc(report.duplicates)
        for view, n in report.late.items():
            if n:
                STREAM_LATE_EVENTS.labels(view).inc(n)
        if report.dead:
            STREAM_DEAD_LETTERS.labels(stream).inc(report.dead)
        STREAM_BATCH_DURATION.labels(stream).observe(report.seconds)
        observe = STREAM_EVENT_DELAY.labels(stream).observe
        for delay in report.delays:
            observe(delay)

    def flush(self, report: FlushReport) -> None:
        STREAM_OFFLINE_ROWS.labels(report.push_source).inc(report.rows)
        STREAM_FLUSH_DURATION.observe(report.seconds)


class StreamLagCollector(Collector):
    """``featurestore_stream_lag``/``_pending``/``_length``, read with ``XINFO`` per scrape."""

    def __init__(self, redis_url: str, streams: list[str], group: str):
        from featurestore.online.redis_protocol import connect

        # A redis-py client, or a RedisCluster for a redis+cluster:// URL.
        self.client = connect(redis_url, "stream-metrics", socket_timeout=2.0, retries=0)
        self.streams, self.group = streams, group

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        lag, pending, length = self._families()
        for stream in self.streams:
            try:
                length.add_metric([stream], self.client.xlen(stream))
                for info in self.client.xinfo_groups(stream):
                    name = _text(info.get("name"))
                    if name != self.group:
                        continue
                    pending.add_metric([stream, name], info.get("pending") or 0)
                    if info.get("lag") is not None:  # Redis 7+; unknown after some deletions
                        lag.add_metric([stream, name], info["lag"])
            except Exception as exc:  # a scrape must not fail because Redis is away
                log.warning("stream backlog of %s left out of the metrics: %s", stream, exc)
        yield from (lag, pending, length)

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily("featurestore_stream_lag", "Stream entries not yet delivered to the consumer group.",
                              labels=["stream", "group"]),
            GaugeMetricFamily("featurestore_stream_pending",
                              "Stream entries delivered to the consumer group but not yet acknowledged.",
                              labels=["stream", "group"]),
            GaugeMetricFamily("featurestore_stream_length", "Entries in the stream.", labels=["stream"]),
        )


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def serve_stream_metrics(port: int, settings: StreamSettings, addr: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``addr:port`` from a background thread: the worker's counters
    and the backlog gauges of its streams. Loopback by default, like ``featurestore serve``:
    listening on every interface is a choice (``--metrics-host 0.0.0.0``)."""
    REGISTRY.register(StreamLagCollector(settings.redis_url, [s.stream for s in settings.streams], settings.group))
    start_http_server(port, addr=addr, registry=REGISTRY)


def render_stream_lag(store) -> bytes:
    """The backlog gauges of the repo's configured streams, in the exposition format
    (empty when featurestore.yaml has no streaming section)."""
    if not store.config.extra.get("streaming"):
        return b""
    settings = StreamSettings.from_config(store.config)
    registry = CollectorRegistry()
    collector = StreamLagCollector(settings.redis_url, [s.stream for s in settings.streams], settings.group)
    registry.register(collector)
    try:
        return generate_latest(registry)
    finally:
        collector.client.close()
