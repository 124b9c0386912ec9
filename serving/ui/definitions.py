"""Page data of the Features pages: every definition, one object's version history with
the diff between consecutive versions, and the search box."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from registry import StoredObject
from registry.diff import changed_fields

from featurestore.datasets import shown_path
from featurestore.errors import InputError, NotFoundError
from serving.ui.links import DEFINITION_KINDS, KIND_LABELS, duration, lineage_path, object_path

__all__ = ["definition_page", "features_page", "search"]

_ABSENT = "(absent)"


def features_page(store) -> dict[str, Any]:
    """Every current definition, grouped by kind, with what each kind's table shows."""
    objects = store.registry.list(store.project)
    groups = {kind: [] for kind in DEFINITION_KINDS}
    keys = _join_keys(objects)
    for obj in objects:
        if obj.kind in groups:
            groups[obj.kind].append(describe(obj, keys))
    return {"groups": [{"kind": k, "label": KIND_LABELS[k], "objects": groups[k]} for k in DEFINITION_KINDS]}


def describe(obj: StoredObject, join_keys: dict[str, list[str]]) -> dict[str, Any]:
    """What a list row or an object page shows of a definition, read off its spec
    (``join_keys``: each entity's, to tell a view's keys from its features)."""
    spec = obj.spec
    out = {"kind": obj.kind, "name": obj.name, "version": obj.version, "created_at": obj.created_at,
           "url": object_path(obj.kind, obj.name), "lineage_url": lineage_path(obj.kind, obj.name),
           "description": spec.get("description", ""), "tags": spec.get("tags") or {}, "owner": spec.get("owner", "")}
    if obj.kind in ("feature_view", "on_demand_feature_view"):
        out["schema"] = spec.get("schema", [])
        out["features"] = [f["name"] for f in spec.get("schema", [])]
    if obj.kind == "feature_view":
        ttl = spec.get("ttl_seconds")
        out.update(ttl=duration(ttl) if ttl else "none", entities=spec.get("entities", []),
                   source=spec.get("source"), online=spec.get("online", True), schedule=_schedule(spec.get("schedule")),
                   aggregations=[{**a, "window": duration(a.get("window_seconds"))} for a in spec.get("aggregations", [])])
        keys = {k for entity in out["entities"] for k in join_keys.get(entity, ())}
        out["key_columns"] = sorted(keys)
        out["features"] = [f for f in out["features"] if f not in keys] + [a["name"] for a in out["aggregations"]]
    elif obj.kind == "on_demand_feature_view":
        udf = spec.get("udf") or {}
        out.update(mode=spec.get("mode"), code=udf.get("source", ""), function=udf.get("qualname", ""),
                   sources=[s.get("view") or s.get("request_source") for s in spec.get("sources", [])])
    elif obj.kind == "feature_service":
        out["features"] = [f"{p['view']}:{f}" for p in spec.get("features", []) for f in p.get("features", [])]
    elif obj.kind == "data_source":
        out.update(type=spec.get("type"), path=spec.get("path") or (spec.get("batch_source") or {}).get("path"),
                   timestamp_field=spec.get("timestamp_field") or (spec.get("batch_source") or {}).get("timestamp_field"))
    elif obj.kind == "entity":
        out["join_keys"] = spec.get("join_keys", [])
    elif obj.kind == "saved_dataset":
        out.update(rows=spec.get("rows"), features=spec.get("features", []), sha256=spec.get("sha256", ""))
    return out


def definition_page(store, kind: str, name: str) -> dict[str, Any]:
    """An object's current state and every version, newest first, each with what changed
    from the version before it."""
    if kind not in DEFINITION_KINDS:
        raise InputError(f"no page for kind {kind!r}; the Features pages show {', '.join(DEFINITION_KINDS)}")
    versions = [_shown(store, v) for v in store.registry.history(store.project, kind, name)]
    if not versions:
        known = [o.name for o in store.registry.list(store.project, kind)]
        raise NotFoundError(KIND_LABELS[kind], name, known, hint="run `featurestore apply` after defining it")
    history = []
    for previous, current in zip([None, *versions], versions):
        history.append({"version": current.version, "created_at": current.created_at, "revision": current.revision,
                        "removed": current.removed, "changes": version_changes(previous, current)})
    latest = versions[-1]
    keys = _join_keys(store.registry.list(store.project, "entity"))
    return {"object": describe(latest, keys), "removed": latest.removed, "history": history[::-1],
            "spec_json": json.dumps(latest.spec, indent=2, sort_keys=True),
            "depends_on": [{"kind": k, "name": n, "url": object_path(k, n)} for k, n in latest.depends_on]}


def version_changes(old: StoredObject | None, new: StoredObject) -> list[dict[str, str]]:
    """``[{"path", "old", "new"}]``: each spec field that differs (dotted path, values as
    JSON), and ``depends_on`` when the dependencies moved. Empty for the first version."""
    if old is None:
        return []
    if new.removed:
        return [{"path": "(removed)", "old": f"version {old.version}", "new": _ABSENT}]
    changes = [{"path": path, "old": _at(old.spec, path), "new": _at(new.spec, path)}
               for path in changed_fields(old.spec, new.spec)]
    if old.depends_on != new.depends_on:
        changes.append({"path": "depends_on", "old": _pairs(old.depends_on), "new": _pairs(new.depends_on)})
    return changes


def search(store, query: str) -> dict[str, Any]:
    """Definitions and features whose name (or description) holds ``query``, case-insensitive:
    features first, as ``view:feature``, since a feature is what people look for."""
    words = query.strip().lower()
    if not words:
        return {"query": query, "hits": []}
    hits = []
    objects = store.registry.list(store.project)
    keys = _join_keys(objects)
    for obj in objects:
        if obj.kind not in DEFINITION_KINDS:
            continue
        row = describe(obj, keys)
        if obj.kind in ("feature_view", "on_demand_feature_view"):
            descriptions = {f["name"]: f.get("description", "") for f in row["schema"]}
            for feature in row["features"]:
                if words in feature.lower() or words in descriptions.get(feature, "").lower():
                    hits.append({"rank": 0, "what": "feature", "name": f"{obj.name}:{feature}", "url": row["url"],
                                 "detail": descriptions.get(feature, ""), "anchor": f"feature-{feature}"})
        if words in obj.name.lower() or words in row["description"].lower():
            hits.append({"rank": 1, "what": KIND_LABELS[obj.kind], "name": obj.name, "url": row["url"],
                         "detail": row["description"], "anchor": ""})
    hits.sort(key=lambda h: (h["rank"], h["name"]))
    return {"query": query, "hits": hits}


def _shown(store, obj: StoredObject) -> StoredObject:
    """The version as a browser may see it: a saved dataset's file relative to the offline store."""
    if obj.kind != "saved_dataset" or "path" not in obj.spec:
        return obj
    return dataclasses.replace(obj, spec={**obj.spec, "path": shown_path(obj.spec["path"], store.config.offline_store)})


def _join_keys(objects: list[StoredObject]) -> dict[str, list[str]]:
    # A view's schema lists its entities' join keys too (apply adds them); they are not features.
    return {o.name: o.spec.get("join_keys", []) for o in objects if o.kind == "entity"}


def _schedule(schedule: Any) -> str:
    if not schedule:
        return "none"
    if isinstance(schedule, dict) and "every_seconds" in schedule:
        return f"every {duration(schedule['every_seconds'])}"
    return schedule if isinstance(schedule, str) else json.dumps(schedule, sort_keys=True)


def _at(spec: Any, path: str) -> str:
    value = spec
    if path != ".":
        for part in path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            else:
                return _ABSENT
    return json.dumps(value, sort_keys=True)


def _pairs(pairs) -> str:
    return ", ".join(f"{k} {n}" for k, n in pairs) or "none"
