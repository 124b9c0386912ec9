"""A trips repo for the streaming tests: a push source of trip events feeding one view of
windowed aggregations and one plain view, on SQLite or on the session's Redis."""

from __future__ import annotations

import textwrap
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.offline.files import write_parquet_atomic

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)

DEFINITIONS = '''
from datetime import timedelta

from featurestore import Aggregation, Entity, FeatureView, Field, FileSource, PushSource
from featurestore.types import Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"])
trips_source = FileSource(name="trips_source", path="data/trips.parquet", timestamp_field="event_timestamp",
                          created_timestamp_field="created")
trips_push = PushSource(name="trips_push", batch_source=trips_source)

trip_stats = FeatureView(
    name="trip_stats",
    entities=[driver],
    schema=[Field("driver_id", Int64), Field("fare", Float64), Field("distance", Int64), Field("city", String)],
    source=trips_push,
    aggregations=[
        Aggregation("fare", "sum", timedelta(minutes=10)),
        Aggregation("fare", "sum", timedelta(hours=1)),
        Aggregation("fare", "count", timedelta(minutes=10)),
        Aggregation("fare", "mean", timedelta(hours=1)),
        Aggregation("distance", "sum", timedelta(minutes=10)),
        Aggregation("distance", "max", timedelta(hours=1)),
        Aggregation("distance", "min", timedelta(minutes=10)),
        Aggregation("city", "last", timedelta(hours=1)),
        Aggregation("city", "count", timedelta(hours=1)),
    ],
)

trips_latest = FeatureView(
    name="trips_latest",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[Field("fare", Float64), Field("city", String)],
    source=trips_push,
)
'''

AGG_FEATURES = ["fare_sum_10m", "fare_sum_1h", "fare_count_10m", "fare_mean_1h", "distance_sum_10m",
                "distance_max_1h", "distance_min_10m", "city_last_1h", "city_count_1h"]
REFS = [f"trip_stats:{f}" for f in AGG_FEATURES]

SCHEMA = pa.schema([
    ("driver_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
    ("created", pa.timestamp("us", tz="UTC")), ("fare", pa.float64()), ("distance", pa.int64()),
    ("city", pa.string()),
])


class Clock:
    """A settable clock for FeatureStore(clock=...) and the worker."""

    def __init__(self, now: datetime = NOW):
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


def write_repo(path: Path, project: str, online: str = "sqlite", redis_url: str = "", streaming: str = "",
               rows: list[dict] | None = None, offline: str = "offline_store: data/offline\n") -> Path:
    path.mkdir(parents=True)
    store = (f"  type: redis\n  connection_string: {redis_url}\n" if online == "redis"
             else "  type: sqlite\n  path: data/online.db\n")
    (path / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\n{offline}online_store:\n{store}"
        + textwrap.dedent(streaming)
    )
    (path / "features.py").write_text(DEFINITIONS)
    write_parquet_atomic(pa.Table.from_pylist(rows or [], schema=SCHEMA), path / "data" / "trips.parquet")
    return path


def event(driver: int, at: datetime, fare: float | None = 10.0, distance: int | None = 3, city: str | None = "a",
          created: datetime | None = None) -> dict:
    return {"driver_id": driver, "event_timestamp": at, "created": created or at, "fare": fare,
            "distance": distance, "city": city}


def micros(at: datetime) -> int:
    return (at - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def project() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


def open_store(repo: Path, clock: Clock) -> FeatureStore:
    store = FeatureStore(config=load_config(repo, env={}), clock=clock)
    store.apply()
    return store


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path, clock, project):
    """The trips repo, applied, on SQLite and on Redis."""
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else ""
    if request.param == "redis":
        project = request.getfixturevalue("redis_project")  # its keys are deleted afterwards
    repo = write_repo(tmp_path / "repo", project, request.param, redis_url)
    with open_store(repo, clock) as s:
        yield s
