"""The one composition point: every backend a ``FeatureStore`` uses, built from its config.

``featurestore.yaml`` names the backends; this module is the only place that turns those
names into objects (httpx builds its default transport in one place the same way):

- registry: ``Catalog.open(config.registry)`` (SQLite file or SQL URL; the Catalog maps
  the registry's errors);
- offline engine: ``DuckDBEngine`` over the Parquet root, or ``SparkEngine``
  (``offline_store.engine: spark``), whose executors open the online store themselves
  (``open_online_store``) to write a materialization;
- online store: ``SqliteOnlineStore`` or ``RedisOnlineStore`` (``online_store.type``);
- aggregation state: next to the online store, in the same SQLite file or the same Redis;
- locks: ``RedisLocks`` when the online store is Redis (or ``scheduler.lock: redis``),
  else ``RegistryLocks``;
- artifact store: ``artifact_store(config.artifacts)``, the folder of model files (a
  ``LocalArtifactStore`` today; an object store later implements the same protocol);
- one redis-py client per store (so per process: the server, the scheduler and the CLI
  each build one store): the online store, the aggregation state and the Redis locks share
  its connection pool; on a Redis Cluster (``redis+cluster://``) the online store and the
  aggregation state also share one ``ClusterRouter`` (the slot map and a pool per node).

Anything passed in is used as it is and left to its owner to close; what is built here
is built on first use (nothing connects before it is needed) and closed by ``close``.
A new backend gets a module beside its seam (``online/``, ``offline/``) and a branch here.
"""

from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING, Any

from registry import Registry

from featurestore.catalog import Catalog
from featurestore.config import OnlineStoreConfig, RepoConfig
from featurestore.jobs.locks import LockBackend, RegistryLocks
from featurestore.jobs.settings import JobSettings
from featurestore.offline.base import OfflineEngine
from featurestore.online.base import AggregationState, OnlineStore

if TYPE_CHECKING:
    import redis

    from featurestore.models.artifacts import ArtifactStore
    from featurestore.online.redis_cluster import ClusterRouter

__all__ = ["Backends", "open_online_store"]

_DEFAULT_REDIS = "redis://localhost:6379/0"


class Backends:
    """The backends of one store: given ones as they are, the others built from ``config``."""

    def __init__(
        self,
        config: RepoConfig,
        *,
        registry: Catalog | Registry | None = None,
        offline: OfflineEngine | None = None,
        online: OnlineStore | None = None,
        aggregation_state: AggregationState | None = None,
        locks: LockBackend | None = None,
        artifacts: ArtifactStore | None = None,
    ):
        self.config = config
        self.project = config.project
        self._owned: list[Any] = []  # built here, closed by close(), newest first
        self.registry = Catalog.wrap(registry) if registry is not None else self._own(Catalog.open(config.registry))
        self.offline: OfflineEngine = offline if offline is not None else self._build_offline()
        self._online = online
        self._aggregation_state = aggregation_state
        self._locks = locks
        self._artifacts = artifacts
        self._redis: redis.Redis | None = None
        self._router: ClusterRouter | None = None
        self._lock = threading.RLock()

    # -- built on first use ----------------------------------------------------------

    @property
    def online(self) -> OnlineStore:
        online = self._online  # the hot path: one attribute read once built
        return online if online is not None else self._once("_online", self._build_online)

    @property
    def aggregation_state(self) -> AggregationState:
        state = self._aggregation_state
        return state if state is not None else self._once("_aggregation_state", self._build_aggregation_state)

    @property
    def locks(self) -> LockBackend:
        locks = self._locks
        return locks if locks is not None else self._once("_locks", self._build_locks)

    @property
    def artifacts(self) -> ArtifactStore:
        """Where model version files live (nothing to close: plain files)."""
        if self._artifacts is None:
            from featurestore.models.artifacts import artifact_store

            with self._lock:
                if self._artifacts is None:
                    self._artifacts = artifact_store(self.config.artifacts)
        return self._artifacts

    def redis_client(self) -> redis.Redis:
        """The redis-py client of the online store's URL, shared by every Redis backend here."""
        with self._lock:
            if self._redis is None:
                from featurestore.online.redis_protocol import connect

                self._redis = self._own(connect(self.config.online_store.connection_string, self.project))
        return self._redis

    def cluster_router(self) -> ClusterRouter | None:
        """The process's router to the Redis Cluster of the online store's URL (None: not a cluster)."""
        from featurestore.online.redis_protocol import is_cluster_url

        url = self.config.online_store.connection_string
        with self._lock:
            if self._router is None and is_cluster_url(url):
                from featurestore.online.redis_cluster import ClusterRouter

                self._router = self._own(ClusterRouter(url, self.project))
        return self._router

    def close(self) -> None:
        """Close what was built here (newest first: the shared Redis client last)."""
        with self._lock:
            owned, self._owned = self._owned, []
        for backend in reversed(owned):
            backend.close()

    # -- the choices -------------------------------------------------------------------

    def _build_offline(self) -> OfflineEngine:
        engine = self.config.offline_engine
        if engine.engine == "spark":
            from featurestore.offline.spark import SparkEngine

            return SparkEngine(str(self.config.offline_store), master=engine.master, conf=engine.conf,
                               open_online=functools.partial(open_online_store, self.config.online_store,
                                                             self.project))
        from featurestore.offline.duckdb import DuckDBEngine

        temp = str(engine.temp_directory) if engine.temp_directory else None
        return DuckDBEngine(str(self.config.offline_store), threads=engine.threads,
                            memory_limit=engine.memory_limit, temp_directory=temp)

    def _build_online(self) -> OnlineStore:
        # Backends are imported when chosen: a SQLite deployment never loads redis.
        online = self.config.online_store
        if online.type == "redis":
            from featurestore.online.redis import RedisOnlineStore

            return RedisOnlineStore(online.connection_string, self.project, read_timeout=online.read_timeout,
                                    client=self.redis_client(), router=self.cluster_router())
        from featurestore.online.sqlite import SqliteOnlineStore

        return SqliteOnlineStore(online.path, self.project)

    def _build_aggregation_state(self) -> AggregationState:
        online = self.config.online_store
        if online.type == "redis":
            from featurestore.online.redis_events import RedisAggregationState

            return RedisAggregationState(self.redis_client(), self.project, router=self.cluster_router())
        from featurestore.online.sqlite_events import SqliteAggregationState

        return SqliteAggregationState(online.path, self.project)

    def _build_locks(self) -> LockBackend:
        online = self.config.online_store
        kind = JobSettings.from_config(self.config).lock
        if kind == "auto":
            kind = "redis" if online.type == "redis" else "registry"
        if kind != "redis":
            return RegistryLocks(self.registry, self.project)
        from featurestore.jobs.redis_locks import RedisLocks

        if online.type == "redis":
            return RedisLocks(online.connection_string, self.project, client=self.redis_client())
        return RedisLocks(online.connection_string or _DEFAULT_REDIS, self.project)

    def _once(self, attribute: str, build):
        """``build()`` into ``attribute`` unless another thread did it first."""
        with self._lock:
            if getattr(self, attribute) is None:
                setattr(self, attribute, self._own(build()))
            return getattr(self, attribute)

    def _own(self, backend):
        self._owned.append(backend)
        return backend


def open_online_store(online: OnlineStoreConfig, project: str) -> OnlineStore:
    """The online store ``online`` names, with its own connections: what a Spark executor
    opens to write its share of a materialization (picklable as a ``functools.partial``)."""
    if online.type == "redis":
        from featurestore.online.redis import RedisOnlineStore

        return RedisOnlineStore(online.connection_string, project, read_timeout=online.read_timeout)
    from featurestore.online.sqlite import SqliteOnlineStore

    return SqliteOnlineStore(online.path, project)
