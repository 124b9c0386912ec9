"""The model monitors ``featurestore scheduler`` runs: one ``ScheduledTask`` per model
with a ``schedule`` under ``monitoring.models`` in featurestore.yaml.

Each fire at time F judges the window ``[F - window, F)``, so every scheduler computes the
same window for the same fire time; under the model's lock, a window already judged by a
scheduled run is not judged again, so several schedulers store one run per fire.
"""

from __future__ import annotations

import logging
from datetime import datetime

from featurestore.jobs.locks import LockBusyError, acquire, owner_id
from featurestore.jobs.scheduler import ScheduledTask
from featurestore.jobs.settings import JobSettings

from monitoring.runs import MonitorResult, history, run_monitor
from monitoring.settings import MonitorSettings, monitor_settings

__all__ = ["monitor_tasks"]

log = logging.getLogger("featurestore.monitoring")


def monitor_tasks(store) -> dict[str, ScheduledTask]:
    """``monitor <model>`` -> its task, for every model whose monitor has a schedule."""
    jobs = JobSettings.from_config(store.config)
    return {f"monitor {name}": ScheduledTask(s.schedule, _runner(store, s, jobs))
            for name, s in sorted(monitor_settings(store.config).items()) if s.schedule is not None}


def _runner(store, settings: MonitorSettings, jobs: JobSettings):
    def run(fire: datetime) -> MonitorResult | None:
        try:
            with acquire(store.locks, f"monitor:{settings.model}", owner_id("scheduler"), jobs.lock_ttl):
                if any(r.trigger == "scheduled" and r.end == fire for r in history(store, settings.model, limit=50)):
                    return None
                result = run_monitor(store, settings.model, end=fire, settings=settings, trigger="scheduled")
        except LockBusyError:
            return None  # another scheduler is judging this window
        log.info("monitor %s: %d row(s), dataset drift %s", settings.model, result.rows, result.dataset_drift)
        return result

    return run
