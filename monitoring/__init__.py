"""Observability: Prometheus metrics (``monitoring.metrics``), and the model monitors:
drift against the training set (``monitoring.drift``), monitor runs stored in the
registry (``monitoring.runs``: ``run_monitor``) and their report (``monitoring.report``).

Only ``run_monitor`` is imported here: ``prometheus_client`` picks its single- or
multi-process mode when it is first imported, so ``monitoring.metrics`` must only be
imported after ``PROMETHEUS_MULTIPROC_DIR`` is settled (``featurestore serve`` does that).
"""

from monitoring.runs import MonitorResult, run_monitor

__all__ = ["MonitorResult", "run_monitor"]
