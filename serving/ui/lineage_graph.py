"""Page data of the Lineage page: registry objects as nodes in layers, in the direction
data flows (source -> view -> service -> dataset -> model version -> alias).

The whole project by default; with a focus object, only what it reads from and what
reads from it, transitively (``Registry.lineage``). The browser lays the layers out and
draws them (static/lineage.js); a click on a node focuses the graph on it, so one can
walk from any object both ways.
"""

from __future__ import annotations

from typing import Any

from featurestore.errors import NotFoundError
from serving.ui.links import KIND_LABELS, lineage_path, object_path

__all__ = ["LAYERS", "lineage_page"]

#: Graph kinds in data-flow order; each kind is one column. Models (the containers of
#: versions), rollouts and monitor runs are left out: their pages show them.
LAYERS = ("entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service", "saved_dataset",
          "model_version", "model_alias")


def lineage_page(store, kind: str | None = None, name: str | None = None) -> dict[str, Any]:
    """``{"nodes", "edges", "focus"}``: nodes carry their layer, label, page and focus link."""
    reg, project = store.registry, store.project
    if kind and name:
        if reg.get(project, kind, name) is None:
            known = [o.name for o in reg.list(project, kind)] if kind in LAYERS else []
            raise NotFoundError(KIND_LABELS.get(kind, kind), name, known,
                                hint="pick an object on the Features or Models pages")
        pairs = {(e.from_kind, e.from_name, e.to_kind, e.to_name) for e in reg.lineage(project, kind, name)}
        focus = {"kind": kind, "name": name, "id": _id(kind, name), "label": KIND_LABELS.get(kind, kind),
                 "url": object_path(kind, name)}
        ids = {(kind, name)} | {(k, n) for e in pairs for k, n in (e[:2], e[2:])}
    else:
        objects = reg.list(project)
        pairs = {(k, n, o.kind, o.name) for o in objects for k, n in o.depends_on}
        focus = None
        ids = {(o.kind, o.name) for o in objects}
    ids = {(k, n) for k, n in ids if k in LAYERS}
    nodes = [{"id": _id(k, n), "kind": k, "name": n, "layer": LAYERS.index(k), "label": KIND_LABELS[k],
              "url": object_path(k, n), "focus_url": lineage_path(k, n)}
             for k, n in sorted(ids, key=lambda kn: (LAYERS.index(kn[0]), kn[1]))]
    edges = [{"from": _id(a, b), "to": _id(c, d)} for a, b, c, d in sorted(pairs)
             if (a, b) in ids and (c, d) in ids]
    return {"nodes": nodes, "edges": edges, "focus": focus, "layers": [KIND_LABELS[k] for k in LAYERS]}


def _id(kind: str, name: str) -> str:
    return f"{kind}:{name}"
