"""Job metrics: durations, rows written, failures and freshness of materialization runs.

Runs happen in other processes (the scheduler, a backfill, the CLI), so these metrics are
not counted in memory: they are read from the job records in the registry at each scrape
(one grouped query). Every server process answers the same numbers, and they survive a
restart of the process that ran the jobs. Add them to a scrape with ``render_job_metrics``
or register ``JobMetricsCollector`` on a ``CollectorRegistry``.

- ``featurestore_job_duration_seconds`` (histogram; view, trigger): finished runs;
- ``featurestore_job_runs_total`` (counter; view, trigger, status);
- ``featurestore_job_rows_written_total`` (counter; view, trigger);
- ``featurestore_job_failures_total`` (counter; view, trigger): failed or interrupted runs;
- ``featurestore_view_materialization_age_seconds`` (gauge; view): time since the view's
  last successful run ended (absent until it has one: alert on it with ``absent()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from featurestore.catalog import Catalog

__all__ = ["DURATION_BUCKETS", "JobMetricsCollector", "render_job_metrics"]

#: Seconds: a small view takes well under a second, a big backfill chunk up to an hour.
DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)


class JobMetricsCollector(Collector):
    """The job metrics of one project, read from the registry's job records per scrape."""

    def __init__(self, registry: Catalog, project: str, clock: Callable[[], float] = time.time):
        self.registry, self.project, self.clock = registry, project, clock

    def describe(self) -> list[Metric]:
        # Known names without a registry read at registration time.
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        summaries = self.registry.jobs.summary(self.project, DURATION_BUCKETS)
        duration, runs, rows, failures, age = self._families()
        now = self.clock()
        last: dict[str, float] = {}
        for s in summaries:
            labels = [s.target, s.trigger]
            count = sum(s.runs.values())
            buckets = [(str(b), float(n)) for b, n in zip(DURATION_BUCKETS, s.buckets)] + [("+Inf", float(count))]
            duration.add_metric(labels, buckets, s.seconds)
            for status, n in sorted(s.runs.items()):
                runs.add_metric([*labels, status], n)
            rows.add_metric(labels, s.rows)
            failures.add_metric(labels, s.runs.get("failed", 0) + s.runs.get("interrupted", 0))
            if s.last_success is not None:
                last[s.target] = max(last.get(s.target, 0.0), s.last_success.timestamp())
        for view, ended in sorted(last.items()):
            age.add_metric([view], max(0.0, now - ended))
        yield from (duration, runs, rows, failures, age)

    @staticmethod
    def _families():
        return (
            HistogramMetricFamily("featurestore_job_duration_seconds",
                                  "Duration of finished materialization runs, by view and trigger.",
                                  labels=["view", "trigger"]),
            CounterMetricFamily("featurestore_job_runs",
                                "Finished materialization runs, by view, trigger and status.",
                                labels=["view", "trigger", "status"]),
            CounterMetricFamily("featurestore_job_rows_written",
                                "Rows written to the online store by materialization runs.",
                                labels=["view", "trigger"]),
            CounterMetricFamily("featurestore_job_failures",
                                "Materialization runs that failed or were interrupted.",
                                labels=["view", "trigger"]),
            GaugeMetricFamily("featurestore_view_materialization_age_seconds",
                              "Seconds since the view's last successful materialization ended.",
                              labels=["view"]),
        )


def render_job_metrics(registry: Catalog, project: str) -> bytes:
    """The job metrics as Prometheus exposition text, to append to a /metrics answer."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(JobMetricsCollector(registry, project))
    return generate_latest(scrape)
