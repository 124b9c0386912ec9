"""Fixtures for the job tests: the example repo (data ending at NOW) applied, a store on
it, a movable clock, and an offline engine wrapper that fails or pauses chosen windows.

The stores are real (DuckDB over the repo's Parquet, SQLite or Redis online, the SQLite
registry); the wrapper only adds faults in front of the real engine.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.offline.duckdb import DuckDBEngine
from featurestore.online.base import online_view
from featurestore.scaffold import init_repo

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
VIEW = "driver_hourly_stats"
DRIVERS = (1001, 1002, 1003, 1004, 1005)


class Clock:
    """A settable clock (epoch seconds) for schedulers and lock backends."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FaultyEngine:
    """The real offline engine; ``fail[(start, end)] = n`` makes the next n reads of that
    window raise, ``pause = (start, end)`` makes a read of it wait on ``release`` after
    announcing itself on ``paused``."""

    def __init__(self, engine):
        self.engine = engine
        self.fail: dict[tuple, int] = {}
        self.pause: tuple | None = None
        self.paused = threading.Event()
        self.release = threading.Event()
        self.reads: list[tuple] = []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def latest_rows(self, view, start, end, batch_rows=100_000):
        self.reads.append((view.name, start, end))
        if self.fail.get((start, end), 0) > 0:
            self.fail[(start, end)] -= 1
            raise OSError(f"source unavailable for {start:%Y-%m-%d} (injected)")
        if self.pause == (start, end):
            self.paused.set()
            self.release.wait(60)
        return self.engine.latest_rows(view, start, end, batch_rows)


def faulty_engine(config) -> FaultyEngine:
    """A FaultyEngine (no faults set yet) over the real engine of ``config``'s offline store."""
    return FaultyEngine(DuckDBEngine(str(config.offline_store)))


def open_store(repo, env=None) -> FeatureStore:
    """A store on ``repo`` whose config ignores this machine's FEATURESTORE_* variables,
    reading offline through a FaultyEngine (``store.offline``) a test may set faults on."""
    config = load_config(repo, env=env or {})
    return FeatureStore(config=config, offline=faulty_engine(config), clock=lambda: NOW.timestamp())


def make_repo(path, project=None, scheduler_yaml: str = ""):
    repo = init_repo(path, project=project or f"test_{uuid.uuid4().hex[:10]}", now=NOW)
    if scheduler_yaml:
        with open(repo / "featurestore.yaml", "a") as f:
            f.write("\n" + scheduler_yaml)
    return repo


@pytest.fixture
def repo(tmp_path):
    return make_repo(tmp_path / "repo", scheduler_yaml="scheduler:\n  lock_wait: 0\n  retry_backoff: 1s\n")


@pytest.fixture
def store(repo):
    with open_store(repo) as s:
        s.apply()
        yield s


def online_state(store, view=VIEW):
    """Every driver's stored online row of ``view``: (event time, values) or None."""
    target = online_view(store.get_feature_view(view))
    [rows] = store.online.read([(target, target.features, [(d,) for d in DRIVERS])])
    return dict(zip(DRIVERS, rows))


def days(n: float) -> timedelta:
    return timedelta(days=n)
