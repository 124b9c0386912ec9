"""Aggregation views through the FeatureStore: push, online lookups, materialization and
training sets agree, on SQLite and on Redis."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FieldStatus
from .conftest import AGG_FEATURES, NOW, REFS, event, open_store, write_repo

TS = pa.timestamp("us", tz="UTC")


def online(store, drivers: list[int]) -> list[dict]:
    data = store.get_online_features(REFS, [{"driver_id": d} for d in drivers]).to_dict()
    return [{f: data[f][i] for f in AGG_FEATURES} for i in range(len(drivers))]


def offline(store, drivers: list[int], at=None) -> list[dict]:
    at = at or NOW
    entities = pa.table({"driver_id": drivers, "event_timestamp": pa.array([at] * len(drivers), TS)})
    rows = store.get_historical_features(entities, REFS).to_arrow().to_pylist()
    return [{f: r[f] for f in AGG_FEATURES} for r in rows]


def test_pushed_events_are_served_online_as_the_training_set_computes_them(store, clock):
    store.push("trips_push", [
        event(1, NOW - timedelta(minutes=50), fare=7.5, distance=9, city="z"),
        event(1, NOW - timedelta(minutes=5), fare=2.25, distance=4, city="a"),
        event(1, NOW - timedelta(minutes=1), fare=None, distance=1, city="b"),
        event(2, NOW - timedelta(minutes=9), fare=1.0, distance=2, city="c"),
        event(2, NOW + timedelta(minutes=1), fare=100.0),  # in the future: not yet
    ], to="online_and_offline")
    assert online(store, [1, 2, 3]) == offline(store, [1, 2, 3])
    first = online(store, [1])[0]
    assert (first["fare_sum_10m"], first["fare_sum_1h"], first["fare_count_10m"], first["city_last_1h"]) == \
        (2.25, 9.75, 1, "b")
    clock.now = NOW + timedelta(minutes=30)  # windows slide: online and offline still agree
    assert online(store, [1, 2]) == offline(store, [1, 2], clock.now)


def test_an_entity_without_events_gets_count_zero_and_nulls(store):
    response = store.get_online_features(["trip_stats:fare_count_10m", "trip_stats:fare_sum_10m"], [{"driver_id": 9}])
    assert response.to_dict() == {"driver_id": [9], "fare_count_10m": [0], "fare_sum_10m": [None]}
    assert [s[0] for s in response.statuses[1:]] == [FieldStatus.PRESENT, FieldStatus.NOT_FOUND]


def test_a_push_with_event_ids_counts_each_event_once(store):
    rows = [dict(event(1, NOW - timedelta(minutes=2), fare=3.0), _event_id="trip-1")]
    store.push("trips_push", rows, to="online_and_offline")
    store.push("trips_push", rows, to="online_and_offline")  # a client retry
    assert online(store, [1])[0]["fare_count_10m"] == 1
    assert offline(store, [1])[0]["fare_count_10m"] == 1
    files = sorted((store.config.offline_store / "pushed" / "trips_push").glob("*.parquet"))
    assert [pq.read_table(f).column("_event_id").to_pylist() for f in files] == [["trip-1"], ["trip-1"]]


def test_events_older_than_the_longest_window_go_offline_only(store):
    old = event(1, NOW - timedelta(hours=1), fare=5.0)  # exactly the longest window ago: in no window now
    fresh = event(2, NOW - timedelta(minutes=1), fare=5.0)
    result = store.push("trips_push", [old, fresh], to="online_and_offline")
    assert (result.rows, result.late) == (2, {"trip_stats": 1})  # the count behind the late-events metric
    assert online(store, [1])[0]["city_count_1h"] == 0
    assert offline(store, [1], NOW - timedelta(minutes=30))[0]["city_count_1h"] == 1  # training sets see it


def test_plain_views_of_the_same_push_source_still_get_their_rows(store):
    store.push("trips_push", [event(4, NOW - timedelta(minutes=3), fare=8.0, city="q")])
    assert store.get_online_features(["trips_latest:fare", "trips_latest:city"], [{"driver_id": 4}]).to_dict() == \
        {"driver_id": [4], "fare": [8.0], "city": ["q"]}


def test_materialization_loads_the_window_ending_at_end(tmp_path, clock, offline_store_section):
    rows = [event(1, NOW - timedelta(minutes=m), fare=float(m)) for m in (1, 5, 30, 59, 61, 120)]
    rows += [event(1, NOW - timedelta(minutes=5), fare=5.0)]  # an identical second event counts twice
    repo = write_repo(tmp_path / "repo", "materialize_test", rows=rows, offline=offline_store_section)
    with open_store(repo, clock) as store:
        assert online(store, [1])[0]["fare_count_10m"] == 0  # nothing loaded yet
        (result,) = store.materialize(None, NOW, views=["trip_stats"])
        assert result.rows == 5  # the events of (NOW - 1h, NOW]
        assert online(store, [1]) == offline(store, [1])
        assert online(store, [1])[0]["fare_count_10m"] == 3
        store.materialize(None, NOW, views=["trip_stats"])  # again: nothing counts twice
        assert online(store, [1]) == offline(store, [1])
        store.push("trips_push", [event(1, NOW - timedelta(seconds=1), fare=0.5)], to="online_and_offline")
        store.materialize(None, NOW, views=["trip_stats"])  # pushed rows keep their ids offline
        assert online(store, [1]) == offline(store, [1])


def test_historical_requests_mix_aggregation_and_plain_views(store):
    store.push("trips_push", [event(1, NOW - timedelta(minutes=3), fare=2.0, city="x")], to="online_and_offline")
    entities = pa.table({"driver_id": [1, 1], "event_timestamp": pa.array([NOW, NOW - timedelta(hours=1)], TS)})
    rows = store.get_historical_features(entities, ["trips_latest:city", "trip_stats:fare_sum_10m"]).to_arrow()
    assert rows.column("city").to_pylist() == ["x", None]
    assert rows.column("fare_sum_10m").to_pylist() == [2.0, None]


@pytest.mark.parametrize("bad", [{"driver_id": 1, "fare": 1.0}, {"driver_id": 1, "event_timestamp": NOW, "fare": "x"}])
def test_bad_pushes_change_nothing(store, bad):
    from featurestore.errors import FeatureStoreError

    with pytest.raises(FeatureStoreError):
        store.push("trips_push", [bad], to="online_and_offline")
    assert online(store, [1])[0]["fare_count_10m"] == 0


def test_known_at_timestamp_is_refused_for_aggregation_views(store):
    import polars as pl

    from featurestore.errors import InputError

    entity = pl.DataFrame({"driver_id": [1], "event_timestamp": [NOW]})
    with pytest.raises(InputError, match="known_at_timestamp=True applies to plain feature views.*trip_stats"):
        store.get_historical_features(entity, REFS[:1], known_at_timestamp=True)
    plain = store.get_historical_features(entity, ["trips_latest:fare"], known_at_timestamp=True).to_arrow()
    assert plain.num_rows == 1
