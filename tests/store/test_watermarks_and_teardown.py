"""Watermarks belong to a view *in one online store*; teardown clears values and watermarks;
incremental ends and empty windows are explained."""

from datetime import timedelta

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.errors import InputError, SchemaError

from .conftest import NOW

VIEW, FRESH = "driver_hourly_stats", "driver_hourly_stats_fresh"
REF = f"{VIEW}:conv_rate"


def open_store(repo, env=None, now=NOW):
    return FeatureStore(config=load_config(repo, env=env or {}), clock=lambda: now.timestamp())


def rows(results) -> dict[str, int]:
    return {r.view: r.rows for r in results}


def conv_rate(store, driver=1001):
    return store.get_online_features([REF], [{"driver_id": driver}]).to_dict()["conv_rate"][0]


def test_switching_to_redis_fills_redis_and_each_store_keeps_its_own_watermark(repo, redis_url):
    with open_store(repo) as sqlite:
        sqlite.apply()
        assert rows(sqlite.materialize_incremental(NOW))[VIEW] == 5
        expected = conv_rate(sqlite)
    with open_store(repo, {"FEATURESTORE_REDIS_URL": redis_url}) as redis:
        assert redis.materializer.watermark(VIEW) is None  # nothing was ever written to Redis
        [first] = redis.materialize_incremental(NOW, [VIEW])
        assert (first.start, first.rows) == (NOW - timedelta(days=1), 5)
        assert conv_rate(redis) == expected
        assert redis.materializer.watermark(VIEW) == NOW
        redis.teardown()  # leaves the shared Redis clean
    with open_store(repo) as sqlite:  # the SQLite watermark was neither moved nor reset
        assert sqlite.materializer.watermark(VIEW) == NOW
        [again] = sqlite.materialize_incremental(NOW, [VIEW])
        assert again.start == NOW  # from its own watermark, not from end - ttl


def test_teardown_clears_the_named_views_values_and_watermark_only(store):
    store.materialize_incremental(NOW)
    assert store.teardown([VIEW]) == [VIEW]
    assert conv_rate(store) is None
    assert store.materializer.watermark(VIEW) is None
    assert store.materializer.watermark(FRESH) == NOW
    fresh = store.get_online_features([f"{FRESH}:conv_rate"], [{"driver_id": 1001}]).to_dict()["conv_rate"][0]
    assert fresh is not None
    starts = {r.view: r.start for r in store.materialize_incremental(NOW)}
    assert starts == {VIEW: NOW - timedelta(days=1), FRESH: NOW}  # the cleared view from scratch
    assert conv_rate(store) is not None


def test_teardown_of_every_view_and_of_an_unknown_one(store):
    store.materialize_incremental(NOW)
    assert sorted(store.teardown()) == [VIEW, FRESH]
    assert store.materializer.watermark(FRESH) is None
    with pytest.raises(Exception, match="driver_hourly_stat'"):
        store.teardown(["driver_hourly_stat"])


def test_an_incremental_end_before_the_watermark_is_refused_before_any_view_runs(store):
    store.materialize_incremental(NOW)
    store.materializer.reset(FRESH)
    jobs_before = len(store.registry.jobs.list(store.project))
    with pytest.raises(InputError, match=rf"'{VIEW}' is already materialized up to {NOW.isoformat()[:19]}.*"
                                         r"after the end .*teardown"):
        store.materialize_incremental(NOW - timedelta(hours=2))
    assert len(store.registry.jobs.list(store.project)) == jobs_before
    assert store.materializer.watermark(VIEW) == NOW and store.materializer.watermark(FRESH) is None


def test_materialize_incremental_takes_now_in_python_as_on_the_cli(store):
    assert rows(store.materialize_incremental("now")) == {VIEW: 5, FRESH: 5}
    assert store.materializer.watermark(VIEW) == NOW  # "now" by the store's clock
    assert rows(store.materialize(NOW - timedelta(hours=1), " NOW ")) == {VIEW: 5, FRESH: 5}


def test_a_window_without_data_says_where_the_source_has_events(store):
    [empty] = store.materialize("2020-01-01", "2020-02-01", [VIEW])
    assert empty.rows == 0
    first = (NOW - timedelta(days=7)).isoformat()
    assert empty.note == f"its source has events from {first} to {NOW.isoformat()}; pick a window inside them"
    [full] = store.materialize(NOW - timedelta(hours=1), NOW, [VIEW])
    assert full.rows == 5 and full.note == ""


def test_a_push_missing_a_column_lists_the_required_ones_and_calls_created_optional(store):
    with pytest.raises(SchemaError) as info:
        store.push("driver_stats_push", [{"driver_id": 1001, "event_timestamp": NOW, "conv_rate": 0.5}])
    message = str(info.value)
    assert "it needs event_timestamp, driver_id, conv_rate, acc_rate, avg_daily_trips (created is optional)" in message
