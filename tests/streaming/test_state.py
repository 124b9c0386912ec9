"""The aggregation state contract, on the real Redis, a real Redis Cluster and on SQLite: idempotent by event id,
bounded by the longest window, reads exactly the asked window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from featurestore import Aggregation, Entity, FeatureView, Field, FileSource
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.streaming.events import ViewLayout
from featurestore.online.redis_events import RedisAggregationState
from featurestore.online.sqlite_events import SqliteAggregationState
from featurestore.types import Float64, Int64

MIN = 60 * 10**6
NOW = 1_714_564_800 * 10**6

VIEW = FeatureView(
    name="trips", entities=[Entity(name="driver", join_keys=["driver_id"])],
    schema=[Field("driver_id", Int64), Field("fare", Float64)],
    source=FileSource(path="trips.parquet"),
    aggregations=[Aggregation("fare", "sum", timedelta(minutes=10)), Aggregation("fare", "count", timedelta(minutes=2))],
)
LAYOUT = ViewLayout.of(VIEW)
KEY = entity_key_encoder(("driver_id",))


@pytest.fixture(params=["redis", "redis-cluster", "sqlite"])
def state(request, tmp_path):
    if request.param.startswith("redis"):
        project = request.getfixturevalue("redis_project")
        url = request.getfixturevalue("redis_cluster_url" if request.param == "redis-cluster" else "redis_url")
        s = RedisAggregationState.from_url(url, project)
    else:
        s = SqliteAggregationState(tmp_path / "online.db", "proj")
    yield s
    s.close()


def add(state, driver: int, events: list[tuple[int, bytes]], horizon: int = NOW - 10 * MIN) -> int:
    """events: (µs, id); the payload is the id, so reads show which copy won."""
    keys = [KEY((driver,))] * len(events)
    return state.add(LAYOUT, keys, [t for t, _ in events], [i for _, i in events], [b"p-" + i for _, i in events],
                     horizon)


def read(state, drivers: list[int | None], lo: int = NOW - 10 * MIN, hi: int = NOW):
    return state.read(LAYOUT, [None if d is None else KEY((d,)) for d in drivers], lo, hi)


def test_adding_is_idempotent_by_event_id(state):
    assert add(state, 1, [(NOW - MIN, b"a"), (NOW - 2 * MIN, b"b")]) == 2
    assert add(state, 1, [(NOW - MIN, b"a"), (NOW - 3 * MIN, b"c"), (NOW - 3 * MIN, b"c")]) == 1
    assert read(state, [1]) == [[(NOW - 3 * MIN, b"p-c"), (NOW - 2 * MIN, b"p-b"), (NOW - MIN, b"p-a")]]


def test_reads_are_open_at_the_start_and_closed_at_the_end(state):
    add(state, 1, [(NOW - 5 * MIN, b"start"), (NOW - 5 * MIN + 1, b"in"), (NOW, b"end"), (NOW + 1, b"after")])
    assert read(state, [1], NOW - 5 * MIN, NOW) == [[(NOW - 5 * MIN + 1, b"p-in"), (NOW, b"p-end")]]


def test_unknown_known_and_null_keys(state):
    add(state, 1, [(NOW - 9 * MIN, b"a")])
    assert read(state, [2, None, 1], NOW - MIN, NOW) == [None, None, []]  # 1 is known, its window is empty


def test_events_at_or_before_the_horizon_are_trimmed(state):
    add(state, 1, [(NOW - 9 * MIN, b"old"), (NOW - MIN, b"new")])
    add(state, 1, [(NOW, b"now")], horizon=NOW - 5 * MIN)  # the clock moved on
    assert read(state, [1], 0, NOW) == [[(NOW - MIN, b"p-new"), (NOW, b"p-now")]]


def test_delete_view(state):
    add(state, 1, [(NOW, b"a")])
    state.delete_view("trips")
    assert read(state, [1]) == [None]


def test_redis_layout_and_expiry(redis_url, redis_project, redis_client):
    state = RedisAggregationState.from_url(redis_url, redis_project)
    add(state, 7, [(NOW - MIN, b"a")])
    zset, events = state.keys("trips", KEY((7,)))
    assert zset == f"{redis_project}@agg:trips:z:".encode() + KEY((7,))
    assert redis_client.zrange(zset, 0, -1, withscores=True) == [(b"a", float(NOW - MIN))]
    assert redis_client.hgetall(events) == {b"a": b"p-a"}
    # Kept until the newest event leaves the longest window, plus one longest window of grace.
    assert 18 * 60 * 1000 - 5000 <= redis_client.pttl(zset) <= 19 * 60 * 1000
    add(state, 7, [(NOW + MIN, b"b")], horizon=NOW)  # "a" is now past the horizon
    assert redis_client.zrange(zset, 0, -1) == [b"b"] and redis_client.hkeys(events) == [b"b"]
    state.close()
