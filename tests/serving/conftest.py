"""Fixtures for the HTTP tests: the example repo, applied and materialized up to NOW, and
an app on it. The store's clock is fixed (and movable), so ttl statuses are exact."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timezone

import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.scaffold import init_repo
from serving import create_app

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]


class Clock:
    """A settable clock for FeatureStore(clock=...)."""

    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def repo(tmp_path):
    """The example repo in a project of its own (tests may share one Redis)."""
    return init_repo(tmp_path / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=NOW)


def open_store(repo, clock, env=None, **serving) -> FeatureStore:
    config = load_config(repo, env=env or {})
    if serving:
        config = dataclasses.replace(config, serving=dataclasses.replace(config.serving, **serving))
    return FeatureStore(config=config, clock=clock)


@pytest.fixture
def store(repo, clock):
    """The example repo on its SQLite online store, applied and materialized up to NOW."""
    with open_store(repo, clock) as s:
        s.apply()
        s.materialize_incremental(NOW)
        yield s


@pytest.fixture
def client(store):
    with TestClient(create_app(store, watch_interval=0)) as c:
        yield c


def redis_cleanup(url: str, project: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{project}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="session")
def prediction_server(tmp_path_factory, redis_url):
    """One real server with models (tests/serving/prediction_server.py) for the /predict and
    /v2 tests; a test that moves an alias or breaks a model puts it back."""
    from .prediction_server import start, stop

    served = start(tmp_path_factory.mktemp("predict"), redis_url)
    yield served
    stop(served, redis_url)
