"""Page data of the Overview: the project, how many objects of each kind, how fresh every
view is (from the job records), failing jobs, rollouts and models with alerts."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from featurestore.jobs.runner import record_json
from monitoring.runs import latest
from serving.disclosure import public_job
from serving.ui.alerts import run_alerts
from serving.ui.links import KIND_LABELS, ago, duration, object_path

__all__ = ["overview_page", "view_freshness"]

_COUNTED = ("entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service", "saved_dataset",
            "model", "model_version")


def overview_page(store, now: datetime, trusted: bool) -> dict[str, Any]:
    reg, project = store.registry, store.project
    objects = reg.list(project)
    counts = Counter(o.kind for o in objects)
    views = [o for o in objects if o.kind == "feature_view"]
    failing = [record_json(r) for r in reg.jobs.list(project, statuses=("failed", "interrupted"), limit=10)]
    rollouts = store.models.rollouts.list()
    alerts = []
    for model, run in sorted(latest(store).items()):
        found = run_alerts(run)
        if found["alert"]:
            alerts.append({"model": model, "run": run.to_dict(), **found})
    return {
        "revision": reg.revision(project),
        "counts": [{"kind": k, "label": KIND_LABELS[k], "count": counts.get(k, 0)} for k in _COUNTED],
        "freshness": view_freshness(store, views, now),
        "failing": failing if trusted else [public_job(j) for j in failing],
        "active_rollouts": [r.to_dict() for r in rollouts if r.active],
        "finished_rollouts": [r.to_dict() for r in rollouts if not r.active],
        "alerts": alerts,
    }


def view_freshness(store, views, now: datetime) -> list[dict[str, Any]]:
    """Per view: its last run and last successful materialization. ``stale`` when no run
    succeeded yet, or the newest data loaded is older than the view's ttl (online reads
    of it now answer null)."""
    jobs, project = store.registry.jobs, store.project
    rows = []
    for view in views:
        last = jobs.list(project, target=view.name, limit=1)
        ok = jobs.list(project, target=view.name, statuses=("succeeded",), limit=1)
        ttl = view.spec.get("ttl_seconds")
        loaded_until = ok[0].window_end if ok else None
        stale = loaded_until is None or bool(ttl and now - loaded_until > timedelta(seconds=ttl))
        rows.append({
            "view": view.name, "url": object_path("feature_view", view.name), "ttl": duration(ttl) if ttl else "none",
            "last_success": ok[0].ended_at if ok else None,
            "since_success": ago(ok[0].ended_at if ok else None, now),
            "loaded_until": loaded_until, "data_age": ago(loaded_until, now),
            "last_status": last[0].status if last else None, "stale": stale,
            "online": view.spec.get("online", True),
        })
    return rows
