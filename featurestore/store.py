"""``FeatureStore``: the facade a notebook, the CLI, the server and the scheduler use.

Its backends (registry, offline engine, online store, aggregation state, locks) are
injected or built from featurestore.yaml by ``backends.py``; the work is delegated:
``apply.py`` (plan/apply), ``retrieval.py`` (training sets), ``online/read.py`` (online
lookups), ``jobs/runner.py`` around ``materialize.py`` (materialization) and ``push.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from registry import ApplyResult, Change, Registry

from featurestore import datasets
from featurestore.apply import PINNING_KINDS, check_plan, commit, load_repo, stale_online_views
from featurestore.backends import Backends
from featurestore.catalog import Catalog
from featurestore.clock import TimeRange, clock_us, from_micros, parse_utc, to_micros
from featurestore.config import RepoConfig, load_config
from featurestore.definitions import Entity, FeatureService, FeatureView, PushSource
from featurestore.entity_values import convert_key_columns
from featurestore.errors import ConfigError, ConflictError, InputError, NotFoundError, StoreUnavailableError
from featurestore.feast_args import either, no_entityless_retrieval
from featurestore.jobs.locks import LockBackend
from featurestore.jobs.runner import run_manual
from featurestore.jobs.settings import JobSettings
from featurestore.materialize import MaterializeResult, Materializer, Progress, check_online, explain_empty
from featurestore.offline.base import OfflineEngine, ViewRequest
from featurestore.online.base import AggregationState, OnlineStore, online_view
from featurestore.online.read import OnlineReader, OnlineResponse, ReadPlan
from featurestore.push import PushMode, PushResult, push_rows, write_view_rows
from featurestore.refs import ResolvedView, resolve_request
from featurestore.repo import RepoContents
from featurestore.retrieval import RetrievalJob, to_arrow_table
from featurestore.serialization import DEFINITION_KINDS, contents_from_registry
from featurestore.serving_log import log_folder, logged_names, read_log
from featurestore.source_tables import same_batch_views, source_table
from featurestore.streaming.aggregate import AggregateReader
from featurestore.transforms import import_path, input_types

if TYPE_CHECKING:
    from featurestore.models.artifacts import ArtifactStore
    import pyarrow as pa

    from featurestore.models.predict import Prediction, Predictions
    from featurestore.models.registry import ModelRegistry

__all__ = ["FeatureStore"]

log = logging.getLogger("featurestore")


class FeatureStore:
    """A feature repo's stores. ``FeatureStore(repo_path=".")`` reads featurestore.yaml there."""

    def __init__(
        self,
        repo_path: str | Path = ".",
        *,
        config: RepoConfig | None = None,
        registry: Catalog | Registry | None = None,
        offline: OfflineEngine | None = None,
        online: OnlineStore | None = None,
        aggregation_state: AggregationState | None = None,
        locks: LockBackend | None = None,
        artifacts: ArtifactStore | None = None,
        online_store: OnlineStore | None = None,  # the former name of ``online``
        clock: Callable[[], float] = time.time,
        monitor: Callable[..., Any] | None = None,
    ):
        """Backends given here are used as they are (and closed by their owner); the
        others are built from featurestore.yaml (``config``, or the one at ``repo_path``)."""
        self.config = config or load_config(repo_path)
        self.repo_path = self.config.repo_path
        self.project = self.config.project
        self.clock = clock
        # The event times and window ends this store takes (featurestore/clock.py).
        self.times = TimeRange(self.config.limits.max_future, clock)
        # Every registry call of the store and of its users goes through a Catalog, which
        # turns the registry library's errors into FeatureStoreErrors (featurestore/catalog.py).
        self.backends = Backends(self.config, registry=registry, offline=offline,
                                 online=online if online is not None else online_store,
                                 aggregation_state=aggregation_state, locks=locks, artifacts=artifacts)
        self.materializer = Materializer(self.backends, self._full_request, clock)
        self._reader = OnlineReader(lambda: self.contents, self._aggregates, clock)
        self._lock = threading.Lock()
        self._contents: RepoContents | None = None
        self._revision = -1
        self._models = None
        self._predictions: Predictions | None = None
        # The model monitor lives in ``monitoring``, a layer above this one, so it is
        # handed in (``monitor=monitoring.run_monitor``) rather than imported.
        self._monitor = monitor

    @property
    def registry(self) -> Catalog:
        """The registry, behind the Catalog that maps its errors."""
        return self.backends.registry

    @property
    def offline(self) -> OfflineEngine:
        return self.backends.offline

    # -- definitions -------------------------------------------------------------------

    def plan(self) -> list[Change]:
        """What ``apply`` would change in the registry, without changing it. The next
        ``apply`` commits against the definitions this plan saw (see ``apply``)."""
        self.refresh()
        return check_plan(self.registry, self.project, self._load_repo())

    def _load_repo(self) -> RepoContents:
        """The repo's definitions, checked against their data and their schedules."""
        contents = load_repo(self.repo_path, self.offline, self.config.offline_store, self.project)
        JobSettings.from_config(self.config).check_views(contents.feature_views)
        return contents

    def apply(self, *, force: bool = False) -> ApplyResult:
        """Discover, validate and commit the repo's definitions in one transaction.

        The commit is against the registry's definitions as this store last read them
        (when it first loaded them, at ``plan`` or after its own last ``apply``): if another
        apply changed them since, this raises ConflictError (run ``plan`` again) instead of
        silently undoing that change; ``force=True`` overwrites whatever is there.
        Online values of views whose keys or feature types changed are cleared first (a
        stale encoding must never be served); a removed view's values are cleared after."""
        if self._contents is None:
            self.refresh()
        with self._lock:
            base, base_revision = self._contents, self._revision
        contents = self._load_repo()
        if force:
            self.refresh()
            base = self.contents
        else:
            self._unchanged_since(base_revision)
        retyped, removed = stale_online_views(base, contents)
        check_plan(self.registry, self.project, contents)  # a refused removal clears nothing
        for view in retyped:
            self._clear_online(view)
        for attempt in range(3):
            expected = None if force else self._unchanged_since(base_revision)
            try:
                result = commit(self.registry, self.project, contents, expected_revision=expected)
                break
            except ConflictError:
                # Another kind (a saved dataset, a model) was written in between: the
                # definitions are checked again and the commit retried; a definition
                # written meanwhile makes _unchanged_since raise the conflict.
                if attempt == 2:
                    raise self._conflict(base_revision) from None
        self.refresh()
        for view in removed:
            try:
                self._clear_online(view)
            except StoreUnavailableError as exc:
                log.warning("could not clear the online values of removed view %r: %s", view.name, exc)
        return result

    def _unchanged_since(self, base_revision: int) -> int:
        """The project revision to commit against, after checking that no definition
        changed since ``base_revision``. The project revision is read first: a definition
        written after it moves it too, so the registry's own check at commit catches it."""
        project_revision = self.registry.revision(self.project)
        if self.definitions_revision() != base_revision:
            raise self._conflict(base_revision)
        return project_revision

    def _conflict(self, base_revision: int) -> ConflictError:
        return ConflictError(
            f"the registry's definitions of project {self.project!r} changed while this apply was "
            f"prepared (it planned against revision {base_revision}, the registry is now at "
            f"{self.definitions_revision()}): another apply ran in between. Run `featurestore plan` "
            "(store.plan()) again to see the registry as it is now, then apply; or apply with --force "
            "(store.apply(force=True)) to overwrite it"
        )

    def _clear_online(self, view: FeatureView) -> None:
        self.online.delete_view(online_view(view))
        if view.aggregations:
            self.aggregation_state.delete_view(view.name)
        # The next incremental run must start from scratch, not from the old watermark.
        self.materializer.reset(view.name)

    def definitions_revision(self) -> int:
        """The registry revision of the feature definitions: it moves when an entity, source,
        view or service changes, not when a saved dataset (or another kind) is written."""
        return self.registry.revision(self.project, DEFINITION_KINDS)

    def refresh(self) -> bool:
        """Reload definitions if the registry changed them; True when it did."""
        revision = self.definitions_revision()
        if revision == self._revision:
            return False
        contents = contents_from_registry(self.registry.list(self.project))
        if contents.on_demand_feature_views:  # their functions are imported from the repo
            import_path(self.repo_path)
        with self._lock:
            self._contents, self._revision = contents, revision
            self._reader.reset()
        return True

    @property
    def contents(self) -> RepoContents:
        if self._contents is None:
            self.refresh()
        return self._contents

    def list_entities(self) -> list[Entity]:
        return list(self.contents.entities.values())

    def list_feature_views(self) -> list[FeatureView]:
        return list(self.contents.feature_views.values())

    def list_feature_services(self) -> list[FeatureService]:
        return list(self.contents.feature_services.values())

    def get_feature_view(self, name: str) -> FeatureView:
        return self._get(self.contents.feature_views, "feature view", name)

    def get_feature_service(self, name: str) -> FeatureService:
        return self._get(self.contents.feature_services, "feature service", name)

    def get_entity(self, name: str) -> Entity:
        return self._get(self.contents.entities, "entity", name)

    @property
    def models(self) -> ModelRegistry:
        """The model registry: register, alias, load and archive model versions (docs/models.md)."""
        if self._models is None:
            from featurestore.models.registry import ModelRegistry

            self._models = ModelRegistry(self, self.backends.artifacts)
        return self._models

    def predict_online(self, uri: str, entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
                       request: Mapping[str, Sequence[Any]] | None = None, *, trusted: bool = False) -> Prediction:
        """The model's answer per entity row from its online features: one online read (with
        its on-demand transforms; request fields beside the join keys or in ``request``),
        the signature's columns under the version's ``on_missing`` policy, the model
        (loaded once per version; ``trusted`` lets a pickled one load). See docs/predict.md."""
        return self._prediction_side().online(uri, entity_rows, request, trusted)

    def predict(self, uri: str, entity_df: Any, *, timestamp_field: str = "event_timestamp",
                batch_rows: int | None = None, progress: Progress | None = None,
                prediction_column: str = "prediction", trusted: bool = False) -> pa.Table:
        """Batch scoring: the entity rows with the version's point-in-time features and a
        prediction column, as the model would have answered at each row's time. Runs in
        chunks of ``batch_rows``; ``progress(uri, rows_done)`` after each. See docs/predict.md."""
        from featurestore.models.predict import BATCH_ROWS

        return self._prediction_side().batch(uri, entity_df, timestamp_field=timestamp_field,
                                             batch_rows=BATCH_ROWS if batch_rows is None else batch_rows,
                                             progress=progress,
                                             prediction_column=prediction_column, trusted=trusted)

    def _prediction_side(self) -> Predictions:
        if self._predictions is None:
            from featurestore.models.predict import Predictions

            self._predictions = Predictions(self)
        return self._predictions

    def monitor(self, uri: str, start: datetime | None = None, end: datetime | None = None) -> Any:
        """Judge the served rows of ``uri``'s model in ``[start, end)`` for drift against its
        training set and for skew; the result (``drift``, ``dataset_drift``, ``skew``) is
        also stored in the registry (docs/monitoring.md). Needs the store opened with
        ``monitor=monitoring.run_monitor``."""
        if self._monitor is None:
            raise ConfigError("store.monitor needs the monitoring package: open the store as FeatureStore(..., "
                              "monitor=monitoring.run_monitor), or call monitoring.run_monitor(store, uri)")
        return self._monitor(self, uri, start, end)

    # -- offline -----------------------------------------------------------------------

    def get_historical_features(
        self,
        entity_df: Any = None,
        features: Sequence[str] | FeatureService | str = (),
        full_feature_names: bool = False,
        *,
        timestamp_field: str = "event_timestamp",
        known_at_timestamp: bool = False,
        filter_by_created_timestamp: bool = False,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
    ) -> RetrievalJob:
        """A point-in-time-correct training set for ``entity_df`` (see docs/concepts.md).

        With ``known_at_timestamp=True`` (Feast: ``filter_by_created_timestamp=True``) a
        feature row counts only if it was also created by the entity row's time, so late
        corrections cannot leak into training sets. String keys such as ``"1001"`` for an
        Int64 key are converted as Feast converts them (featurestore/entity_values.py).
        """
        no_entityless_retrieval(entity_df, start_date, end_date)
        known_at_timestamp = known_at_timestamp or filter_by_created_timestamp
        resolution = resolve_request(self.contents, features, full_feature_names)
        views = resolution.views
        aggregated = [v.view.name for v in views if v.view.aggregations]
        if known_at_timestamp and aggregated:
            raise InputError(
                f"known_at_timestamp=True applies to plain feature views, not to aggregation views "
                f"({', '.join(aggregated)}): their events count from their event time; request them "
                "in a separate call without the option"
            )
        entities = convert_key_columns(to_arrow_table(entity_df, self.offline), {
            f.name: f.dtype for v in views for f in v.view.schema if f.name in v.view.join_keys})
        return RetrievalJob(
            self.offline, entities, timestamp_field, views, [self._request(v) for v in views],
            known_at_timestamp, saver=self._save_dataset,
            transforms=[(t, input_types(t.odfv, self.contents)) for t in resolution.transforms],
            hidden=resolution.hidden,
        )

    def _request(self, rv: ResolvedView) -> ViewRequest:
        view = rv.view
        return ViewRequest(
            name=view.name,
            source=source_table(view, self.repo_path, self.config.offline_store, self.contents.sources.values()),
            join_keys=view.join_keys,
            features=rv.features,
            output_names=rv.output_names,
            ttl=view.ttl,
            aggregations=tuple(a for a in view.aggregations if a.name in rv.features),
            tie_columns=() if view.aggregations else view.feature_names,
            # Registered types of the source columns read (join key fields are filled in
            # at apply): reads check the files against them (offline/conform.py).
            declared=tuple((f.name, f.dtype) for f in view.schema),
        )

    def _save_dataset(self, name: str, job: RetrievalJob) -> dict:
        return datasets.save_dataset(self.registry, self.project, self.config.offline_store, name, job).to_dict()

    def get_saved_dataset(self, name: str, version: int | None = None) -> datasets.SavedDataset:
        """A saved training set's version (the latest by default); ``.to_arrow()`` reads its rows
        after checking their sha256 (featurestore/datasets.py)."""
        return datasets.get_saved_dataset(self.registry, self.project, name, version)

    def list_saved_datasets(self) -> list[dict]:
        return datasets.list_saved_datasets(self.registry, self.project)

    def delete_saved_dataset(self, name: str) -> None:
        """Remove a saved dataset (its history stays); refused while a model version was trained on it."""
        datasets.delete_saved_dataset(self.registry, self.project, name, PINNING_KINDS)

    # -- online ------------------------------------------------------------------------

    @property
    def online(self) -> OnlineStore:
        return self.backends.online

    @property
    def aggregation_state(self) -> AggregationState:
        """The events of aggregation views, next to the online store."""
        return self.backends.aggregation_state

    @property
    def locks(self) -> LockBackend:
        """The locks that keep two runs of one view apart (featurestore/jobs)."""
        return self.backends.locks

    @property
    def online_reader(self) -> OnlineReader:
        """The one online read: this facade and ``POST /get-online-features`` use it."""
        return self._reader

    def read_plan(self, features: Sequence[str] | FeatureService | str, full_feature_names: bool = False) -> ReadPlan:
        """The cached plan for a feature list (the hot path resolves each list once)."""
        return self._reader.plan(features, full_feature_names)

    def get_online_features(
        self,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
    ) -> OnlineResponse:
        """The newest values per entity, null (with a status) where unknown or past ttl."""
        return self._reader.read(self.online, features, entity_rows, full_feature_names)[1]

    def materialize(
        self,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        views: Sequence[str] | None = None,
        progress: Progress | None = None,
        *,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
        feature_views: Sequence[str] | None = None,
        disable_event_timestamp: bool = False,
    ) -> list[MaterializeResult]:
        """Write each entity's latest row with ``start <= event_timestamp <= end`` online.
        Feast's keywords work too (``disable_event_timestamp``: every row up to now).

        Each view's run is a job record, under the view's lock (featurestore/jobs)."""
        start, views = either("start", start, "start_date", start_date), either("views", views, "feature_views", feature_views)
        end = from_micros(clock_us(self.clock)) if disable_event_timestamp else either("end", end, "end_date", end_date)
        start = None if disable_event_timestamp else start
        if end is None:
            raise InputError("materialize needs an end time: end= (or Feast's end_date=), or 'now'")
        start, end = self.times.check(start, "materialize start"), self.times.check(end, "materialize end")
        if start is not None and start > end:
            raise InputError(f"materialize start {start} is after end {end}")
        settings = JobSettings.from_config(self.config)
        return [explain_empty(self.offline, self._full_request(v),
                              run_manual(self.materializer, self.locks, settings, v, start, end, progress))
                for v in self._online_views(views)]

    def materialize_incremental(
        self, end: datetime | str | None = None, views: Sequence[str] | None = None, progress: Progress | None = None,
        *, end_date: datetime | str | None = None, feature_views: Sequence[str] | None = None,
    ) -> list[MaterializeResult]:
        """Materialize each view from where its last run ended (first run: ``end - ttl``).
        Feast's keywords ``end_date`` and ``feature_views`` work too."""
        end, views = either("end", end, "end_date", end_date), either("views", views, "feature_views", feature_views)
        if end is None:
            raise InputError("materialize_incremental needs an end time: end= (or Feast's end_date=)")
        end = self.times.check(end, "materialize end")
        settings = JobSettings.from_config(self.config)
        chosen = self._online_views(views)
        for view in chosen:  # an end before a watermark fails before any view runs
            self.materializer.incremental_start(view, end)
        return [run_manual(self.materializer, self.locks, settings, v, None, end, progress, incremental=True)
                for v in chosen]

    def teardown(self, views: Sequence[str] | None = None) -> list[str]:
        """Delete the online values (and aggregation events) of the named views, or of every
        view, from this store's online store, and forget their watermarks there: the next
        ``materialize_incremental`` fills them from scratch. Offline data and the registry
        stay. Returns the names of the views cleared."""
        chosen = (list(self.contents.feature_views.values()) if views is None
                  else [self.get_feature_view(name) for name in views])
        for view in chosen:
            self._clear_online(view)
        return [view.name for view in chosen]

    def _aggregates(self, view: FeatureView, features: tuple[str, ...]) -> AggregateReader:
        return AggregateReader(view, features, self.aggregation_state)

    def _full_request(self, view: FeatureView) -> ViewRequest:
        return self._request(ResolvedView(view, view.feature_names, view.feature_names))

    def _online_views(self, names: Sequence[str] | str | None) -> list[FeatureView]:
        if isinstance(names, str):
            names = [names]
        if names is None:
            return [v for v in self.contents.feature_views.values() if v.online]
        views = [self.get_feature_view(n) for n in names]
        check_online(views)
        return views

    def push(self, push_source_name: str, df: Any, to: str = "online") -> PushResult:
        """Write rows to the views fed by a push source: online, offline or both.
        Returns the rows pushed and, per aggregation view, the events too late to count online."""
        source = self.contents.sources.get(push_source_name)
        if not isinstance(source, PushSource):
            pushes = [n for n, s in self.contents.sources.items() if isinstance(s, PushSource)]
            raise NotFoundError("push source", push_source_name, pushes)
        views = [v for v in self.contents.feature_views.values()
                 if isinstance(v.source, PushSource) and v.source.name == source.name]
        to = to.value if isinstance(to, PushMode) else to
        online = self.online if to != "offline" else None
        state = self.aggregation_state if online is not None and any(v.aggregations for v in views) else None
        also = same_batch_views(source, self.contents.feature_views.values(), self.repo_path)
        return push_rows(source, views, df, to, online, self.config.offline_store, state=state, times=self.times,
                         also=also)

    def write_to_online_store(self, feature_view_name: str, df: Any) -> int:
        """Feast's ``write_to_online_store``: rows of one view into the online store (newer
        event time wins); returns how many. Nothing is written when any row is invalid."""
        return write_view_rows(self.get_feature_view(feature_view_name), df, self.online, times=self.times)

    def get_logs(self, name: str, start: datetime | str | None = None, end: datetime | str | None = None) -> pa.Table:
        """The serving log of a model (rows from ``/predict``) or a feature service (rows
        from ``/get-online-features`` when its ``logging_config`` is set), with
        ``start <= log_time < end``, in log time order (docs/monitoring.md)."""
        start_us, end_us = (None if t is None else to_micros(t)
                            for t in (parse_utc(start, "logs start"), parse_utc(end, "logs end")))
        folder = self.serving_log_folder(name)
        if not folder.is_dir() and name not in self.contents.feature_services:
            try:
                self.models.get_model(name)
            except NotFoundError:
                raise NotFoundError("model or feature service", name,
                                    [*logged_names(self.config.offline_store), *self.contents.feature_services],
                                    hint="a serving log is named after the model or feature service served") from None
        return read_log(folder, start_us, end_us)

    def serving_log_folder(self, name: str) -> Path:
        """Where the serving log of a model or feature service lives (docs/monitoring.md)."""
        service = self.contents.feature_services.get(name)
        destination = service.logging.destination.path if service is not None and service.logging else ""
        return log_folder(self.config.offline_store, name, destination, self.repo_path)

    # -- plumbing ----------------------------------------------------------------------

    def _get(self, table: dict, kind: str, name: str):
        try:
            return table[name]
        except KeyError:
            raise NotFoundError(kind, name, table) from None

    def close(self) -> None:
        """Close the backends this store built (injected ones stay open)."""
        self.backends.close()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureStore(project={self.project!r}, repo={str(self.repo_path)!r})"

