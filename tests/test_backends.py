"""featurestore/backends.py: the backends featurestore.yaml names, built in one place;
injected ones used as they are."""

from __future__ import annotations

from featurestore import FeatureStore
from featurestore.backends import Backends
from featurestore.config import load_config
from featurestore.jobs.locks import RegistryLocks
from featurestore.jobs.redis_locks import RedisLocks
from featurestore.online.redis import RedisOnlineStore
from featurestore.online.redis_events import RedisAggregationState
from featurestore.online.sqlite import SqliteOnlineStore
from featurestore.online.sqlite_events import SqliteAggregationState
from featurestore.scaffold import init_repo


def test_sqlite_keeps_online_values_and_events_in_one_file_and_locks_in_the_registry(tmp_path):
    config = load_config(init_repo(tmp_path / "repo", project="p"), env={})
    backends = Backends(config)
    try:
        assert isinstance(backends.online, SqliteOnlineStore)
        assert isinstance(backends.aggregation_state, SqliteAggregationState)
        assert backends.aggregation_state.path == backends.online.path == config.online_store.path
        assert isinstance(backends.locks, RegistryLocks)
    finally:
        backends.close()


def test_redis_backends_share_one_client(tmp_path, redis_url, redis_project):
    env = {"FEATURESTORE_ONLINE_STORE": "redis", "FEATURESTORE_REDIS_URL": redis_url}
    config = load_config(init_repo(tmp_path / "repo", project=redis_project), env=env)
    backends = Backends(config)
    try:
        assert isinstance(backends.online, RedisOnlineStore)
        assert isinstance(backends.aggregation_state, RedisAggregationState)
        assert isinstance(backends.locks, RedisLocks)
        client = backends.redis_client()
        assert backends.online.client is backends.aggregation_state.client is backends.locks.client is client
        backends.online.health()
    finally:
        backends.close()


def test_injected_backends_are_used_and_left_open(tmp_path):
    repo = init_repo(tmp_path / "repo", project="p")
    config = load_config(repo, env={})
    online = SqliteOnlineStore(tmp_path / "other.db", "p")
    state = SqliteAggregationState(tmp_path / "other.db", "p")
    with FeatureStore(config=config) as built:
        registry = built.registry
        with FeatureStore(config=config, registry=registry, online=online, aggregation_state=state) as store:
            assert store.online is online and store.aggregation_state is state and store.registry is registry
            store.apply()
        registry.list(config.project)  # still open: the injecting store does not close it
        online.health()
    online.close()
    state.close()


def test_the_former_online_store_keyword_still_injects(tmp_path):
    config = load_config(init_repo(tmp_path / "repo", project="p"), env={})
    online = SqliteOnlineStore(tmp_path / "other.db", "p")
    with FeatureStore(config=config, online_store=online) as store:
        assert store.online is online
    online.close()
