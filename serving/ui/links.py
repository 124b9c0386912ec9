"""Where each registry object is shown in the UI, and how long ago a time was.

Paths are relative to the UI's root (``/ui`` under ``featurestore serve``); templates put
the root in front, so the UI also works behind a proxy that mounts it elsewhere.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote, urlencode

__all__ = ["DEFINITION_KINDS", "KIND_LABELS", "ago", "duration", "lineage_path", "object_path"]

#: The kinds the Features page lists (featurestore.serialization.DEFINITION_KINDS) plus saved
#: datasets, which share its version-history page.
DEFINITION_KINDS = ("entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service",
                    "saved_dataset")

KIND_LABELS = {
    "entity": "entity", "data_source": "source", "feature_view": "feature view",
    "on_demand_feature_view": "on-demand view", "feature_service": "feature service",
    "saved_dataset": "training dataset", "model": "model", "model_version": "model version",
    "model_alias": "alias", "rollout": "rollout", "monitor_run": "monitor run",
}


def object_path(kind: str, name: str) -> str:
    """The page of one object: definitions have their own, model objects the model's page."""
    if kind in DEFINITION_KINDS:
        return f"/features/{kind}/{quote(name, safe='')}"
    if kind == "model_version":
        model, _, number = name.rpartition("/")
        return f"/models/{quote(model, safe='')}#v{number}"
    if kind == "model_alias":
        model, _, alias = name.partition("@")
        return f"/models/{quote(model, safe='')}#alias-{alias}"
    if kind == "monitor_run":
        return f"/monitoring/{quote(name.rpartition('/')[0], safe='')}"
    if kind == "rollout":
        return f"/models/{quote(name, safe='')}/rollout"
    return f"/models/{quote(name, safe='')}"


def lineage_path(kind: str, name: str) -> str:
    return "/lineage?" + urlencode({"kind": kind, "name": name})


def duration(delta: timedelta | float | None) -> str:
    """``3d 4h``, ``12m``, ``45s``: the two largest units."""
    if delta is None:
        return "-"
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return sign + " ".join(parts[:2])


def ago(when: datetime | None, now: datetime) -> str:
    return "never" if when is None else f"{duration(now - when)} ago"
