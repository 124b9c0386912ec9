"""``FeatureStore``: the facade a notebook, the CLI, the server and the scheduler use.

Its backends (registry, offline engine, online store, aggregation state, locks) are
injected or built from featurestore.yaml by ``backends.py``. The class holds the loaded
definitions and one-line delegations; the work lives in modules that take the store:
``apply.py`` (plan/apply), ``historical.py`` (training sets), ``online/read.py`` (online
lookups), ``online_writes.py`` (materialize, teardown), ``push.py``, ``models/`` (the
model registry, predictions), ``serving_log/lookup.py`` (serving logs) and
``feast_args.py`` (Feast's keyword spellings).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import ApplyResult, Change, Registry

from featurestore import datasets, feast_args, online_writes
from featurestore.apply import PINNING_KINDS, apply_repo, check_plan, load_repo
from featurestore.backends import Backends
from featurestore.catalog import Catalog
from featurestore.clock import TimeRange
from featurestore.config import RepoConfig, load_config
from featurestore.definitions import FeatureService, FeatureView
from featurestore.errors import ConfigError
from featurestore.historical import full_request, historical_features
from featurestore.jobs.locks import LockBackend
from featurestore.lookups import DefinitionLookups
from featurestore.jobs.settings import JobSettings
from featurestore.materialize import MaterializeResult, Materializer, Progress
from featurestore.offline.base import OfflineEngine
from featurestore.online.base import AggregationState, OnlineStore
from featurestore.online.read import OnlineReader, OnlineResponse, ReadPlan
from featurestore.push import PushResult, push_to_source, write_view_rows
from featurestore.registered import RegisteredDefinitions
from featurestore.repo import RepoContents
from featurestore.retrieval import RetrievalJob
from featurestore.serving_log import lookup as serving_logs
from featurestore.streaming.aggregate import AggregateReader

if TYPE_CHECKING:
    from featurestore.models.artifacts import ArtifactStore
    import pyarrow as pa

    from featurestore.models.predict import Prediction, Predictions
    from featurestore.models.registry import ModelRegistry
    from featurestore.remote import RemoteFeatureStore

__all__ = ["FeatureStore"]


class FeatureStore(DefinitionLookups):
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
        self.materializer = Materializer(self.backends, partial(full_request, self), clock)
        self._reader = OnlineReader(lambda: self.contents, self._aggregates, clock)
        self._definitions = RegisteredDefinitions(self.backends, self.project, self.repo_path, self._reader.reset)
        # The model monitor lives in ``monitoring``, a layer above this one, so it is
        # handed in (``monitor=monitoring.run_monitor``) rather than imported.
        self._monitor = monitor

    @staticmethod
    def remote(url: str, api_key: str | None = None, **options: Any) -> RemoteFeatureStore:
        """The store a server runs (``featurestore serve --flight-port``), over Arrow Flight:
        the same method names and return types for training sets, saved datasets, scoring,
        online reads, push and the registry's listings (docs/remote.md). ``options``:
        ``tls_root_certs``, ``timeout``, ``grpc_options``."""
        from featurestore.remote import RemoteFeatureStore  # pyarrow.flight loads on first use

        return RemoteFeatureStore(url, api_key, **options)

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
        base, base_revision = self._definitions.seen()
        return apply_repo(self, base, base_revision, self._load_repo(), force)

    def definitions_revision(self) -> int:
        """The registry revision of the feature definitions: it moves when an entity, source,
        view or service changes, not when a saved dataset (or another kind) is written."""
        return self._definitions.revision()

    def refresh(self) -> bool:
        """Reload definitions if the registry changed them; True when it did."""
        return self._definitions.refresh()

    @property
    def contents(self) -> RepoContents:
        return self._definitions.contents

    @cached_property
    def models(self) -> ModelRegistry:
        """The model registry: register, alias, load and archive model versions (docs/models.md)."""
        from featurestore.models.registry import ModelRegistry  # models load on first use

        return ModelRegistry(self, self.backends.artifacts)

    def predict_online(self, uri: str, entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
                       request: Mapping[str, Sequence[Any]] | None = None, *, trusted: bool = False) -> Prediction:
        """The model's answer per entity row from its online features: one online read (with
        its on-demand transforms; request fields beside the join keys or in ``request``),
        the signature's columns under the version's ``on_missing`` policy, the model
        (loaded once per version; ``trusted`` lets a pickled one load). See docs/predict.md."""
        return self._predictions.online(uri, entity_rows, request, trusted)

    def predict(self, uri: str, entity_df: Any, *, timestamp_field: str = "event_timestamp",
                batch_rows: int | None = None, progress: Progress | None = None,
                prediction_column: str = "prediction", trusted: bool = False) -> pa.Table:
        """Batch scoring: the entity rows with the version's point-in-time features and a
        prediction column, as the model would have answered at each row's time. Runs in
        chunks of ``batch_rows``; ``progress(uri, rows_done)`` after each. See docs/predict.md."""
        from featurestore.models.predict import BATCH_ROWS

        return self._predictions.batch(uri, entity_df, timestamp_field=timestamp_field,
                                       batch_rows=BATCH_ROWS if batch_rows is None else batch_rows,
                                       progress=progress, prediction_column=prediction_column, trusted=trusted)

    @cached_property
    def _predictions(self) -> Predictions:
        """The loaded models and the two prediction flows (featurestore/models/predict.py)."""
        from featurestore.models.predict import Predictions  # models load on first use

        return Predictions(self)

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
        known_at_timestamp = feast_args.retrieval_args(
            entity_df, known_at_timestamp, filter_by_created_timestamp=filter_by_created_timestamp,
            start_date=start_date, end_date=end_date)
        return historical_features(self, entity_df, features, full_feature_names, timestamp_field, known_at_timestamp)

    def get_saved_dataset(self, name: str, version: int | None = None) -> datasets.SavedDataset:
        """A saved training set's version (the latest by default); ``.to_arrow()`` reads its rows
        after checking their sha256 (featurestore/datasets.py)."""
        return datasets.get_saved_dataset(self.registry, self.project, name, version, self.config.offline_store)

    def list_saved_datasets(self) -> list[dict]:
        return datasets.list_saved_datasets(self.registry, self.project, self.config.offline_store)

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
        start, end, views = feast_args.materialize_args(
            start, end, views, start_date=start_date, end_date=end_date, feature_views=feature_views,
            disable_event_timestamp=disable_event_timestamp, clock=self.clock)
        return online_writes.materialize(self, start, end, views, progress)

    def materialize_incremental(
        self, end: datetime | str | None = None, views: Sequence[str] | None = None, progress: Progress | None = None,
        *, end_date: datetime | str | None = None, feature_views: Sequence[str] | None = None,
    ) -> list[MaterializeResult]:
        """Materialize each view from where its last run ended (first run: ``end - ttl``).
        Feast's keywords ``end_date`` and ``feature_views`` work too."""
        end, views = feast_args.incremental_args(end, views, end_date=end_date, feature_views=feature_views)
        return online_writes.materialize_incremental(self, end, views, progress)

    def teardown(self, views: Sequence[str] | None = None) -> list[str]:
        """Delete the online values (and aggregation events) of the named views, or of every
        view, from this store's online store, and forget their watermarks there: the next
        ``materialize_incremental`` fills them from scratch. Offline data and the registry
        stay. Returns the names of the views cleared."""
        return online_writes.teardown(self, views)

    def _aggregates(self, view: FeatureView, features: tuple[str, ...]) -> AggregateReader:
        return AggregateReader(view, features, self.aggregation_state)

    def push(self, push_source_name: str, df: Any, to: str = "online") -> PushResult:
        """Write rows to the views fed by a push source: online, offline or both.
        Returns the rows pushed and, per aggregation view, the events too late to count online."""
        return push_to_source(self, push_source_name, df, to)

    def write_to_online_store(self, feature_view_name: str, df: Any) -> int:
        """Feast's ``write_to_online_store``: rows of one view into the online store (newer
        event time wins); returns how many. Nothing is written when any row is invalid."""
        return write_view_rows(self.get_feature_view(feature_view_name), df, self.online, times=self.times)

    def get_logs(self, name: str, start: datetime | str | None = None, end: datetime | str | None = None) -> pa.Table:
        """The serving log of a model (rows from ``/predict``) or a feature service (rows
        from ``/get-online-features`` when its ``logging_config`` is set), with
        ``start <= log_time < end``, in log time order (docs/monitoring.md)."""
        return serving_logs.get_logs(self, name, start, end)

    def serving_log_folder(self, name: str) -> Path:
        """Where the serving log of a model or feature service lives (docs/monitoring.md)."""
        return serving_logs.serving_log_folder(self, name)

    # -- plumbing ----------------------------------------------------------------------

    def close(self) -> None:
        """Close the backends this store built (injected ones stay open)."""
        self.backends.close()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureStore(project={self.project!r}, repo={str(self.repo_path)!r})"

