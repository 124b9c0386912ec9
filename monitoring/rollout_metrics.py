"""``featurestore_rollout_decisions_total{model, decision}``: rollout decisions by outcome.

Decisions are taken by the scheduler's controller (or by hand, from the CLI or HTTP), in
other processes than the server that is scraped, so they are not counted in memory: they
are the entries of the rollouts' registry history, counted at scrape time. Every server
answers the same numbers, they survive restarts, and they never go backwards (history is
only appended to). The count is read again only when the registry's ``rollout`` revision
moved since the last scrape, so an idle scrape costs one revision query.

``decision`` is one of the history's decisions (docs/rollouts.md): ``started``, ``step``,
``inconclusive``, ``failed``, ``promoted``, ``rolled_back``, ``paused``, ``resumed``.
(``featurestore_rollout_weight`` and ``featurestore_rollout_failed_checks`` are set by each
server as it follows the rollouts: ``monitoring.metrics``.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["RolloutDecisionsCollector", "render_rollout_metrics"]


class RolloutDecisionsCollector(Collector):
    """Rollout decisions of one project by model and decision, from the registry history."""

    def __init__(self, registry, project: str):
        self.registry, self.project = registry, project
        self._revision: int | None = None
        self._counts: Counter[tuple[str, str]] = Counter()

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        for (model, decision), count in sorted(self.counts().items()):
            family.add_metric([model, decision], count)
        yield family

    def counts(self) -> Counter[tuple[str, str]]:
        """(model, decision) -> how many times it was decided, over every rollout of the model."""
        revision = self.registry.revision(self.project, "rollout")
        if revision != self._revision:
            counts: Counter[tuple[str, str]] = Counter()
            for obj in self.registry.list(self.project, "rollout"):
                for version in self.registry.history(self.project, "rollout", obj.name):
                    counts[obj.name, version.spec["event"]["decision"]] += 1
            self._counts, self._revision = counts, revision
        return self._counts

    @staticmethod
    def _family() -> CounterMetricFamily:
        return CounterMetricFamily("featurestore_rollout_decisions",
                                   "Rollout decisions by model and outcome (started, step, inconclusive, failed, "
                                   "promoted, rolled_back, paused, resumed), from the registry's rollout history.",
                                   labels=["model", "decision"])


def render_rollout_metrics(collector: RolloutDecisionsCollector) -> bytes:
    """The decisions as Prometheus exposition text, to append to a /metrics answer."""
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(collector)
    return generate_latest(scrape)
