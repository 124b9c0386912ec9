"""Page data of the Monitoring pages: each model's latest drift and skew verdicts, one
model's runs over time, and the monitor report of a run (its distribution plots).

A run never changes once stored (monitoring/runs.py), so its report, which takes
matplotlib a while to draw, is drawn once per process and kept (``ReportCache``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from featurestore.errors import NotFoundError
from monitoring.report import render_report
from monitoring.runs import MonitorResult, history, latest
from serving.ui.alerts import run_alerts
from serving.ui.charts import time_chart

__all__ = ["ReportCache", "model_monitoring_page", "monitoring_page"]


def monitoring_page(store) -> dict[str, Any]:
    runs = latest(store)
    models = []
    for model in store.models.list():
        run = runs.get(model.name)
        models.append({"name": model.name, "run": None if run is None else {**run.to_dict(), **run_alerts(run)}})
    return {"models": models}


def model_monitoring_page(store, name: str, limit: int = 100) -> dict[str, Any]:
    runs = history(store, name, limit=limit)  # an unknown model names the known ones
    shown = [{**r.to_dict(), **run_alerts(r)} for r in runs]
    oldest_first = runs[::-1]
    chart = time_chart([(r.end, r.drifted_share) for r in oldest_first], top=1.0)
    return {"model": name, "latest": shown[0] if shown else None, "runs": shown, "chart": chart,
            "skew_chart": time_chart([(r.end, max((s["mismatch_ratio"] for s in r.skew), default=0.0))
                                      for r in oldest_first if r.skew], top=1.0)}


class ReportCache:
    """Rendered monitor reports by (project, model, run), the newest ``size`` kept."""

    def __init__(self, size: int = 16):
        self._pages: OrderedDict[tuple[str, str, int], str] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def report(self, store, name: str, run: int) -> str:
        key = (store.project, name, run)
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        obj = store.registry.get(store.project, "monitor_run", f"{name}/{run}")
        if obj is None:
            raise NotFoundError("monitor run", f"{name}/{run}",
                                hint=f"the Monitoring page of {name} lists its runs")
        result = MonitorResult.from_object(obj)
        profile = store.models.profile(f"{result.model}/{result.version}")
        if profile is None:
            raise NotFoundError("training profile of model", f"{result.model}/{result.version}",
                                hint="register the version with training_dataset= to monitor it")
        page = render_report(result, profile)
        with self._lock:
            self._pages[key] = page
            while len(self._pages) > self._size:
                self._pages.popitem(last=False)
        return page
