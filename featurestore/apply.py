"""``plan`` and ``apply``: check a repo's definitions against their data, then commit them.

Validation reads each source's schema (not its rows): the file exists, the timestamp,
created-timestamp and join key columns are there, and every declared field's column has
a compatible type. Each on-demand view's transform runs on three generated rows of its
declared input types, and its outputs must have the declared names and types. Nothing reaches the registry unless every object passes, and the
registry commits the whole set in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pyarrow as pa

from registry import ApplyResult, Change

from featurestore.catalog import Catalog
from featurestore.definitions import FeatureView, Field
from featurestore.errors import ConflictError, DefinitionError, NotFoundError, Problems, SchemaError, StoreUnavailableError
from featurestore.offline.base import OfflineEngine
from featurestore.online_writes import clear_online
from featurestore.repo import RepoContents, discover
from featurestore.serialization import DEFINITION_KINDS, contents_to_specs
from featurestore.source_tables import source_table
from featurestore.streaming.events import ViewLayout
from featurestore.transforms import check_transform
from featurestore.types import compatible, from_arrow

__all__ = ["PINNING_KINDS", "apply_repo", "check_plan", "commit", "load_repo", "stale_online_views", "validate"]

log = logging.getLogger("featurestore")


def load_repo(repo: Path, engine: OfflineEngine, offline_root: Path, project: str | None = None) -> RepoContents:
    """The repo's definitions, checked against their data; every problem in one error. A
    Feast ``Project`` in the repo must name featurestore.yaml's ``project``."""
    problems = Problems()
    discovered = discover(repo, problems)
    for name in discovered.projects:
        if project is not None and name != project:
            with problems.each():
                raise DefinitionError(f"the repo defines Project {name!r} but featurestore.yaml's project is "
                                      f"{project!r}; use one name in both (or remove the Project object)")
    contents = validate(discovered, engine, repo, offline_root, problems)
    problems.raise_any()
    return contents


#: What a model version depends on (its feature service, its saved dataset) cannot be
#: removed by apply or deleted.
PINNING_KINDS = ("model_version",)


def check_plan(registry: Catalog, project: str, contents: RepoContents) -> list[Change]:
    """What committing ``contents`` would change; InUseError when it would remove what a
    model version depends on (so apply can refuse before it touches the online store)."""
    return registry.plan(project, contents_to_specs(contents), DEFINITION_KINDS, pinned_by=PINNING_KINDS)


def commit(registry: Catalog, project: str, contents: RepoContents,
           expected_revision: int | None = None) -> ApplyResult:
    """Commit ``contents``; ConflictError when ``expected_revision`` is given and the
    project's revision moved past it."""
    return registry.apply(project, contents_to_specs(contents), DEFINITION_KINDS, expected_revision,
                          pinned_by=PINNING_KINDS)


def apply_repo(store, base: RepoContents, base_revision: int, contents: RepoContents, force: bool) -> ApplyResult:
    """``store.apply``: commit ``contents`` against ``base`` (the definitions the store last
    read, at ``base_revision``), clearing the online values of retyped views first and of
    removed views after; ``force`` commits against whatever the registry holds."""
    if force:
        store.refresh()
        base = store.contents
    else:
        _unchanged_since(store, base_revision)
    retyped, removed = stale_online_views(base, contents)
    check_plan(store.registry, store.project, contents)  # a refused removal clears nothing
    for view in retyped:
        clear_online(store, view)
    for attempt in range(3):
        expected = None if force else _unchanged_since(store, base_revision)
        try:
            result = commit(store.registry, store.project, contents, expected_revision=expected)
            break
        except ConflictError:
            # Another kind (a saved dataset, a model) was written in between: the
            # definitions are checked again and the commit retried; a definition
            # written meanwhile makes _unchanged_since raise the conflict.
            if attempt == 2:
                raise _conflict(store, base_revision) from None
    store.refresh()
    for view in removed:
        try:
            clear_online(store, view)
        except StoreUnavailableError as exc:
            log.warning("could not clear the online values of removed view %r: %s", view.name, exc)
    return result


def _unchanged_since(store, base_revision: int) -> int:
    """The project revision to commit against, after checking that no definition
    changed since ``base_revision``. The project revision is read first: a definition
    written after it moves it too, so the registry's own check at commit catches it."""
    project_revision = store.registry.revision(store.project)
    if store.definitions_revision() != base_revision:
        raise _conflict(store, base_revision)
    return project_revision


def _conflict(store, base_revision: int) -> ConflictError:
    return ConflictError(
        f"the registry's definitions of project {store.project!r} changed while this apply was "
        f"prepared (it planned against revision {base_revision}, the registry is now at "
        f"{store.definitions_revision()}): another apply ran in between. Run `featurestore plan` "
        "(store.plan()) again to see the registry as it is now, then apply; or apply with --force "
        "(store.apply(force=True)) to overwrite it"
    )


def stale_online_views(before: RepoContents, after: RepoContents) -> tuple[list[FeatureView], list[FeatureView]]:
    """Views whose online values the new definitions can no longer read: (retyped, removed).

    Online values carry no type tag (docs/online-store.md), so a view whose join keys or
    feature types change must be cleared before the new definition is served; a removed
    view's values are dead weight."""
    retyped, removed = [], []
    for name, old in before.feature_views.items():
        new = after.feature_views.get(name)
        if new is None:
            removed.append(old)
            continue
        old_types = {f.name: f.dtype for f in old.features}
        new_types = {f.name: f.dtype for f in new.features}
        key_types = lambda v: [(f.name, f.dtype) for f in v.schema if f.name in v.join_keys]  # noqa: E731
        if key_types(old) != key_types(new) or any(
            n in new_types and new_types[n] != t for n, t in old_types.items()
        ):
            retyped.append(old)
    return retyped, removed


def validate(contents: RepoContents, engine: OfflineEngine, repo: Path, offline_root: Path,
             problems: Problems | None = None) -> RepoContents:
    """The contents with join key types filled in from the data. Each object that does not
    fit its data is reported in ``problems`` (without it: raised at the end, all together);
    what depends on a failed object is left out rather than reported twice."""
    gathered = problems if problems is not None else Problems()
    known = {**contents.feature_views, **contents.on_demand_feature_views}
    for service in contents.feature_services.values():
        for projection in service.features:
            if projection.name not in known:
                with gathered.each():
                    raise NotFoundError(f"feature view of service {service.name!r}", projection.name, known)
    checked = RepoContents(dict(contents.entities), dict(contents.sources),
                           request_sources=dict(contents.request_sources))
    for view in contents.feature_views.values():
        with gathered.each():
            schema = engine.read_schema(source_table(view, repo, offline_root, contents.sources.values()))
            _check_view(view, schema)
            checked.feature_views[view.name] = _with_key_fields(view, schema)
    for odfv in contents.on_demand_feature_views.values():
        with gathered.each():
            for source in odfv.view_sources:
                if source.name not in contents.feature_views:
                    raise NotFoundError(f"source view of on-demand feature view {odfv.name!r}", source.name,
                                        contents.feature_views)
            if all(s.name in checked.feature_views for s in odfv.view_sources):
                check_transform(odfv, checked)
                checked.on_demand_feature_views[odfv.name] = odfv
    views = {**checked.feature_views, **checked.on_demand_feature_views}
    for service in contents.feature_services.values():
        if all(p.name in views for p in service.features):
            checked.feature_services[service.name] = replace(service, features=tuple(
                replace(p, view=views[p.name]) for p in service.features))
    if problems is None:
        gathered.raise_any()
    return checked


def _with_key_fields(view: FeatureView, schema: pa.Schema) -> FeatureView:
    """The view with a Field for each join key its schema leaves out, typed from the data,
    so online reads can check key types without reading the source."""
    declared = {f.name for f in view.schema}
    missing = tuple(Field(k, from_arrow(schema.field(k).type)) for k in view.join_keys if k not in declared)
    return replace(view, schema=missing + view.schema) if missing else view


def _check_view(view: FeatureView, schema: pa.Schema) -> None:
    path = view.batch_source.path
    columns = {f.name: f.type for f in schema}

    def require(column: str, role: str) -> pa.DataType:
        if column not in columns:
            raise SchemaError(
                f"feature view {view.name!r}: source {path!r} has no {role} column {column!r} "
                f"(its columns: {', '.join(columns)}); fix the definition or the data"
            )
        return columns[column]

    for role, column in (("timestamp", view.batch_source.timestamp_field),
                         ("created timestamp", view.batch_source.created_timestamp_field)):
        if column is None:
            continue
        dtype = require(column, role)
        if not (pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)):
            raise SchemaError(
                f"feature view {view.name!r}: {role} column {column!r} in {path!r} has type {dtype}, "
                "expected a timestamp"
            )
    declared = {f.name: f.dtype for f in view.schema}
    for key in view.join_keys:
        require(key, "join key")
    if view.aggregations:  # each function can read its column's declared type
        ViewLayout.of(view)
    for name, dtype in declared.items():
        actual_arrow = require(name, "schema")
        actual = from_arrow(actual_arrow)
        if actual is None or not compatible(actual, dtype):
            raise SchemaError(
                f"feature view {view.name!r}: column {name!r} in {path!r} is {actual or actual_arrow} "
                f"but the schema declares {dtype}; change the Field's dtype or cast the column"
            )
