"""Page data of the Models pages: every model, one model (versions, aliases and their
history, signature, metrics, training set, rollout, latest monitor verdict) and its
rollout (the weight over time, each analysis and its decision)."""

from __future__ import annotations

from typing import Any

from featurestore.errors import NotFoundError
from monitoring.runs import history as monitor_history
from monitoring.runs import latest as latest_runs
from serving.ui.alerts import run_alerts
from serving.ui.charts import time_chart
from serving.ui.links import object_path

__all__ = ["model_page", "models_page", "rollout_page"]


def models_page(store) -> dict[str, Any]:
    rollouts = {r.model: r for r in store.models.rollouts.list()}
    runs = latest_runs(store)
    models = []
    for model in store.models.list():
        run = runs.get(model.name)
        models.append({**model.to_dict(), "rollout": rollouts.get(model.name),
                       "monitor": None if run is None else {**run.to_dict(), **run_alerts(run)}})
    return {"models": models}


def model_page(store, name: str) -> dict[str, Any]:
    model = store.models.get_model(name)  # an unknown name lists the known ones
    versions = []
    for version in reversed(store.models.versions(name)):
        data = version.to_dict()
        dataset = data["training_dataset"]
        data["dataset_url"] = object_path("saved_dataset", dataset["name"]) if dataset else None
        data["service_url"] = (object_path("feature_service", data["feature_service"]["name"])
                               if data["feature_service"] else None)
        versions.append(data)
    aliases = []
    for alias, version in model.aliases.items():
        moves = store.models.alias_history(name, alias)
        aliases.append({"alias": alias, "version": version, "moves": [m.to_dict() for m in reversed(moves)]})
    try:
        rollout = store.models.rollouts.get(name)
    except NotFoundError:
        rollout = None
    runs = monitor_history(store, name, limit=1)
    monitor = {**runs[0].to_dict(), **run_alerts(runs[0])} if runs else None
    return {"model": model.to_dict(), "versions": versions, "aliases": aliases, "rollout": rollout,
            "monitor": monitor}


def rollout_page(store, name: str) -> dict[str, Any]:
    """The current (or last) rollout of ``name``; earlier rollouts of the model listed
    by their start, end and outcome."""
    rollout = store.models.rollouts.get(name)
    events = list(rollout.history)
    chart = time_chart([(e.at, e.weight) for e in events], top=100, step=True)
    earlier = _earlier_rollouts(store, name, rollout.rollout_id)
    return {"model": name, "rollout": rollout.to_dict(), "rollout_id": rollout.rollout_id,
            "events": [e.to_dict() for e in reversed(events)], "chart": chart, "earlier": earlier}


def _earlier_rollouts(store, name: str, current_id: str) -> list[dict[str, Any]]:
    grouped: dict[str, list] = {}
    for obj in store.registry.history(store.project, "rollout", name):
        grouped.setdefault(obj.spec["rollout_id"], []).append(obj)
    out = []
    for rollout_id, objects in grouped.items():
        if rollout_id == current_id:
            continue
        first, last = objects[0].spec, objects[-1].spec
        out.append({"rollout_id": rollout_id, "candidate": last["candidate"], "stable": last["stable"],
                    "state": last["state"], "started": first["event"]["at"], "ended": last["event"]["at"]})
    return out[::-1]
