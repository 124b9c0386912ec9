"""Definitions <-> registry specs: the one place that knows the JSON shape of each object.

Kinds in the registry: ``entity``, ``data_source`` (request sources too, ``type: request``),
``feature_view``, ``on_demand_feature_view``, ``feature_service``. A spec is plain JSON;
``depends_on`` gives the lineage edges (source -> view -> on-demand view -> service).
An on-demand view's spec holds its function's source text and where to import it from;
read back, its ``udf`` is None until ``featurestore/transforms.py`` imports it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from registry import ObjectSpec, StoredObject

from featurestore.clock import duration_us
from featurestore.definitions import (
    Aggregation,
    Entity,
    FeatureService,
    FeatureView,
    FeatureViewProjection,
    Field,
    FileLoggingDestination,
    FileSource,
    LoggingConfig,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
)
from featurestore.repo import RepoContents
from featurestore.types import parse_type

__all__ = ["DEFINITION_KINDS", "contents_from_registry", "contents_to_specs"]

DEFINITION_KINDS = ("entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service")


def contents_to_specs(contents: RepoContents) -> list[ObjectSpec]:
    specs = [ObjectSpec("entity", e.name, _entity(e)) for e in contents.entities.values()]
    specs += [ObjectSpec("data_source", s.name, _source(s)) for s in contents.sources.values()]
    specs += [ObjectSpec("data_source", s.name, _request_source(s)) for s in contents.request_sources.values()]
    for view in contents.feature_views.values():
        deps = [("data_source", view.source.name)] + [("entity", e.name) for e in view.entities]
        specs.append(ObjectSpec("feature_view", view.name, _view(view), tuple(deps)))
    for odfv in contents.on_demand_feature_views.values():
        deps = tuple(("data_source", s.name) if isinstance(s, RequestSource) else ("feature_view", s.name)
                     for s in odfv.sources)
        specs.append(ObjectSpec("on_demand_feature_view", odfv.name, _odfv(odfv), deps))
    for service in contents.feature_services.values():
        deps = tuple(("on_demand_feature_view" if isinstance(p.view, OnDemandFeatureView) else "feature_view", p.name)
                     for p in service.features)
        specs.append(ObjectSpec("feature_service", service.name, _service(service), deps))
    return specs


def contents_from_registry(objects: list[StoredObject]) -> RepoContents:
    """Rebuild the definitions from the registry's current specs."""
    by_kind: dict[str, dict[str, dict]] = {k: {} for k in DEFINITION_KINDS}
    for obj in objects:
        if obj.kind in by_kind:
            by_kind[obj.kind][obj.name] = obj.spec
    contents = RepoContents()
    for name, spec in by_kind["entity"].items():
        contents.entities[name] = Entity(
            name=name, join_keys=tuple(spec["join_keys"]), description=spec.get("description", ""),
            tags=spec.get("tags", {}), owner=spec.get("owner", ""),
        )
    for name, spec in by_kind["data_source"].items():
        if spec["type"] == "request":
            contents.request_sources[name] = RequestSource(name, _fields_from(spec["schema"]), **_meta_from(spec))
        else:
            contents.sources[name] = _source_from(spec)
    for name, spec in by_kind["feature_view"].items():
        contents.feature_views[name] = _view_from(name, spec, contents)
    for name, spec in by_kind["on_demand_feature_view"].items():
        contents.on_demand_feature_views[name] = _odfv_from(name, spec, contents)
    views = {**contents.feature_views, **contents.on_demand_feature_views}
    for name, spec in by_kind["feature_service"].items():
        projections = tuple(FeatureViewProjection(views[p["view"]], tuple(p["features"])) for p in spec["features"])
        contents.feature_services[name] = FeatureService(
            name=name, features=projections, description=spec.get("description", ""),
            tags=spec.get("tags", {}), owner=spec.get("owner", ""), logging=_logging_from(spec.get("logging")),
        )
    return contents


def _meta(obj: Any) -> dict:
    return {"description": obj.description, "tags": dict(obj.tags), "owner": obj.owner}


def _meta_from(spec: dict) -> dict:
    return {k: spec.get(k, d) for k, d in (("description", ""), ("tags", {}), ("owner", ""))}


def _fields(fields: tuple[Field, ...]) -> list[dict]:
    return [{"name": f.name, "dtype": str(f.dtype), "description": f.description, "tags": dict(f.tags)}
            for f in fields]


def _fields_from(specs: list[dict]) -> tuple[Field, ...]:
    return tuple(Field(f["name"], parse_type(f["dtype"]), f.get("description", ""), f.get("tags", {}))
                 for f in specs)


def _request_source(s: RequestSource) -> dict:
    return {"type": "request", "name": s.name, "schema": _fields(s.schema), **_meta(s)}


def _odfv(v: OnDemandFeatureView) -> dict:
    return {
        "sources": [
            {"request_source": s.name} if isinstance(s, RequestSource) else {"view": s.name, "features": list(s.features)}
            for s in v.sources
        ],
        "schema": _fields(v.schema),
        "mode": v.mode,
        "udf": {"module": v.udf_module, "qualname": v.udf_qualname, "source": v.udf_source},
        **_meta(v),
    }


def _odfv_from(name: str, spec: dict, contents: RepoContents) -> OnDemandFeatureView:
    sources = tuple(
        contents.request_sources[s["request_source"]] if "request_source" in s
        else FeatureViewProjection(contents.feature_views[s["view"]], tuple(s["features"]))
        for s in spec["sources"]
    )
    udf = spec["udf"]
    return OnDemandFeatureView(
        name=name, sources=sources, schema=_fields_from(spec["schema"]), mode=spec["mode"],
        udf_module=udf["module"], udf_qualname=udf["qualname"], udf_source=udf["source"], **_meta_from(spec),
    )


def _entity(e: Entity) -> dict:
    return {"join_keys": list(e.join_keys), **_meta(e)}


def _file(s: FileSource) -> dict:
    return {
        "type": "file", "name": s.name, "path": s.path, "file_format": s.file_format,
        "timestamp_field": s.timestamp_field, "created_timestamp_field": s.created_timestamp_field,
        **({"date_partition": s.date_partition} if s.date_partition else {}), **_meta(s),
    }


def _source(s: FileSource | PushSource) -> dict:
    if isinstance(s, PushSource):
        return {"type": "push", "name": s.name, "batch_source": _file(s.batch_source), **_meta(s)}
    return _file(s)


def _source_from(spec: dict) -> FileSource | PushSource:
    meta = {k: spec.get(k, d) for k, d in (("description", ""), ("tags", {}), ("owner", ""))}
    if spec["type"] == "push":
        return PushSource(name=spec["name"], batch_source=_source_from(spec["batch_source"]), **meta)
    return FileSource(
        path=spec["path"], name=spec["name"], file_format=spec["file_format"],
        timestamp_field=spec["timestamp_field"], created_timestamp_field=spec["created_timestamp_field"],
        date_partition=spec.get("date_partition"), **meta,
    )


def _view(v: FeatureView) -> dict:
    schedule: Any = v.schedule
    if isinstance(schedule, timedelta):
        schedule = {"every_seconds": schedule.total_seconds()}
    return {
        "entities": [e.name for e in v.entities],
        "source": v.source.name,
        **_ttl(v.ttl),
        "schema": [
            {"name": f.name, "dtype": str(f.dtype), "description": f.description, "tags": dict(f.tags)}
            for f in v.schema
        ],
        "aggregations": [
            {"column": a.column, "function": a.function, "window_seconds": a.time_window.total_seconds(),
             "name": a.name}
            for a in v.aggregations
        ],
        "online": v.online,
        "schedule": schedule,
        **_meta(v),
    }


def _ttl(ttl: timedelta | None) -> dict:
    """``ttl_seconds`` as ever, plus the exact ``ttl_us`` only when the float seconds do not
    read back as the same timedelta (ttls beyond about 300 years with microseconds): so a
    repo applied before ``ttl_us`` existed plans no change, and every ttl reads back exactly."""
    if not ttl:
        return {"ttl_seconds": None}
    seconds = ttl.total_seconds()
    if timedelta(seconds=seconds) == ttl:
        return {"ttl_seconds": seconds}
    return {"ttl_seconds": seconds, "ttl_us": duration_us(ttl)}


def _ttl_from(spec: dict) -> timedelta | None:
    if spec.get("ttl_us"):
        return timedelta(microseconds=spec["ttl_us"])
    return timedelta(seconds=spec["ttl_seconds"]) if spec["ttl_seconds"] else None


def _view_from(name: str, spec: dict, contents: RepoContents) -> FeatureView:
    schedule = spec.get("schedule")
    if isinstance(schedule, dict):
        schedule = timedelta(seconds=schedule["every_seconds"])
    return FeatureView(
        name=name,
        entities=tuple(contents.entities[e] for e in spec["entities"]),
        schema=tuple(
            Field(f["name"], parse_type(f["dtype"]), f.get("description", ""), f.get("tags", {}))
            for f in spec["schema"]
        ),
        source=contents.sources[spec["source"]],
        ttl=_ttl_from(spec),
        aggregations=tuple(
            Aggregation(a["column"], a["function"], timedelta(seconds=a["window_seconds"]), a["name"])
            for a in spec.get("aggregations", [])
        ),
        online=spec["online"],
        schedule=schedule,
        description=spec.get("description", ""),
        tags=spec.get("tags", {}),
        owner=spec.get("owner", ""),
    )


def _service(s: FeatureService) -> dict:
    spec = {"features": [{"view": p.name, "features": list(p.features)} for p in s.features], **_meta(s)}
    if s.logging is not None:  # only when set, so services applied before logging plan no change
        spec["logging"] = {"path": s.logging.destination.path, "sample_rate": s.logging.sample_rate}
    return spec


def _logging_from(spec: dict | None) -> LoggingConfig | None:
    if spec is None:
        return None
    return LoggingConfig(FileLoggingDestination(spec["path"]), spec["sample_rate"])
