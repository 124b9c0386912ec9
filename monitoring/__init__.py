"""Observability: Prometheus metrics (``monitoring.metrics``), and later drift, skew and
freshness monitors.

Nothing is imported here on purpose: ``prometheus_client`` picks its single- or
multi-process mode when it is first imported, so ``monitoring.metrics`` must only be
imported after ``PROMETHEUS_MULTIPROC_DIR`` is settled (``featurestore serve`` does that).
"""

__all__: list[str] = []
