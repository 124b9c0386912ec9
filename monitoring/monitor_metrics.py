"""Model monitor metrics, read from the latest stored monitor run of each model at each
scrape (like the job metrics of ``monitoring.jobs``): every server process answers the
same values, whichever process ran the monitor.

- ``featurestore_drift_score`` (gauge; model, feature, method): the drift statistic of
  the latest run; a p-value for ``ks``, ``chisquare`` and ``z`` (low means drift), a
  distance for ``wasserstein``, ``jensenshannon`` and ``psi`` (high means drift);
- ``featurestore_drift_detected`` (gauge; model, feature): 1 when that feature drifted;
- ``featurestore_dataset_drift`` (gauge; model): 1 when the dataset drifted;
- ``featurestore_skew_mismatch_ratio`` (gauge; model, feature): served values that differ
  from the ones recomputed offline;
- ``featurestore_monitor_run_timestamp_seconds`` (gauge; model): when that run was made
  (alert on its age: a monitor that stopped running).

The ``prediction`` is one of the features. A feature without enough data has no score.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.runs import latest

__all__ = ["MonitorMetricsCollector", "render_monitor_metrics"]


class MonitorMetricsCollector(Collector):
    """The monitor gauges of one store's project, from the registry per scrape."""

    def __init__(self, store):
        self.store = store

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        score, detected, dataset, skew, when = families = self._families()
        for model, result in sorted(latest(self.store).items()):
            for d in result.drift:
                if d["statistic"] is not None:
                    score.add_metric([model, d["feature"], d["method"]], d["statistic"])
                    detected.add_metric([model, d["feature"]], float(d["drifted"]))
            dataset.add_metric([model], float(result.dataset_drift))
            for s in result.skew:
                skew.add_metric([model, s["feature"]], s["mismatch_ratio"])
            if result.created_at is not None:
                when.add_metric([model], result.created_at.timestamp())
        yield from families

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, ...]:
        return (
            GaugeMetricFamily("featurestore_drift_score", "Drift statistic of the latest monitor run: a p-value "
                              "for ks, chisquare and z (low: drift), a distance for wasserstein, jensenshannon "
                              "and psi (high: drift).", labels=["model", "feature", "method"]),
            GaugeMetricFamily("featurestore_drift_detected", "1 when the feature drifted in the latest monitor run.",
                              labels=["model", "feature"]),
            GaugeMetricFamily("featurestore_dataset_drift", "1 when at least half of the model's features drifted "
                              "in the latest monitor run.", labels=["model"]),
            GaugeMetricFamily("featurestore_skew_mismatch_ratio", "Share of served feature values that differ from "
                              "the values recomputed offline, in the latest monitor run.", labels=["model", "feature"]),
            GaugeMetricFamily("featurestore_monitor_run_timestamp_seconds", "When the latest monitor run of the model "
                              "was made (Unix time).", labels=["model"]),
        )


def render_monitor_metrics(store) -> bytes:
    """The monitor gauges as exposition text, to append to a /metrics answer."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(MonitorMetricsCollector(store))
    return generate_latest(scrape)
