"""The times the store takes (featurestore/clock.py: TimeRange): event times and window
ends from 1970-01-01 to limits.max_future (default 1d) after now; any other time within
the years 1..9999 in UTC. Outside, a clear InputError where the time enters, and nothing
changes: before, a push in year 10000 shadowed every later push of its entity, and a
materialization ending in 9999 moved the watermark past every later run."""

from datetime import timedelta

import polars as pl
import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.errors import ConfigError, InputError
from featurestore.jobs import backfill

from .conftest import NOW

FEATURES = ["driver_hourly_stats_fresh:conv_rate"]


def row(at: str) -> dict:
    return {"driver_id": [1001], "event_timestamp": [at], "conv_rate": [0.5], "acc_rate": [0.5],
            "avg_daily_trips": [5]}


def pushed_files(repo):
    return sorted((repo / "data").rglob("pushed/**/*.parquet"))


@pytest.mark.parametrize("at, why", [
    ("10000-01-01T00:00:00", "not an ISO 8601 time"),  # Python cannot even parse it
    ("9999-12-31T23:59:59-14:00", "outside the years 1..9999"),  # year 10000 in UTC
    ("0001-01-01T00:00:00+14:00", "outside the years 1..9999"),  # year 0 in UTC
    ((NOW + timedelta(days=2)).isoformat(), "more than 1d after now"),
    ("1969-12-31T23:59:59Z", "before 1970-01-01"),
])
def test_a_push_out_of_range_is_refused_and_later_pushes_still_land(store, repo, at, why):
    with pytest.raises((InputError, Exception), match=why) as caught:
        store.push("driver_stats_push", row(at), to="online_and_offline")
    assert caught.type.__module__ == "featurestore.errors"
    assert pushed_files(repo) == []
    store.push("driver_stats_push", row(NOW.isoformat()))
    online = store.get_online_features(FEATURES, {"driver_id": [1001]}).to_dict(include_event_timestamps=True)
    assert online["conv_rate"] == [0.5]


def test_a_push_within_max_future_is_taken(store):
    assert store.push("driver_stats_push", row((NOW + timedelta(hours=23)).isoformat())).rows == 1


def test_max_future_is_a_setting(repo):
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text() + "limits:\n  max_future: 30d\n")
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        store.apply()
        assert store.push("driver_stats_push", row((NOW + timedelta(days=10)).isoformat())).rows == 1
        with pytest.raises(InputError, match="more than 30d after now.*limits.max_future"):
            store.push("driver_stats_push", row((NOW + timedelta(days=31)).isoformat()))
    config.write_text(config.read_text().replace("30d", "soon"))
    with pytest.raises(ConfigError, match="limits.max_future 'soon' is not a duration"):
        FeatureStore(repo_path=repo)


@pytest.mark.parametrize("start, end, why", [
    (None, "9999-12-31T00:00:00Z", "materialize end is 9999-12-31T00:00:00Z: more than 1d after now"),
    ("0001-01-01T00:00:00+14:00", NOW, "materialize start 0001-01-01T00:00:00\\+14:00 is outside the years"),
    ("1969-01-01T00:00:00Z", NOW, "materialize start is 1969-01-01T00:00:00Z: before 1970-01-01"),
])
def test_a_materialize_window_out_of_range_is_refused_and_the_watermark_stays(store, start, end, why):
    store.materialize_incremental(NOW)
    before = store.materializer.watermark("driver_hourly_stats")
    with pytest.raises(InputError, match=why):
        store.materialize(start, end)
    with pytest.raises(InputError, match="materialize end"):
        store.materialize_incremental("9999-12-31T00:00:00Z")
    assert store.materializer.watermark("driver_hourly_stats") == before


def test_a_backfill_out_of_range_is_refused_before_any_chunk(store):
    with pytest.raises(InputError, match="backfill end is 9999-12-31T00:00:00Z: more than 1d after now"):
        backfill(store, "driver_hourly_stats", NOW - timedelta(days=1), "9999-12-31T00:00:00Z", "1d")
    assert store.registry.jobs.list(store.project) == []


def _entities(times: pa.Array) -> pa.Table:
    return pa.table({"driver_id": pa.array([1001] * len(times), pa.int64()), "event_timestamp": times})


def test_entity_times_may_be_far_ahead_or_before_1970_but_must_be_spellable(store):
    store.push("driver_stats_push", row((NOW + timedelta(minutes=30)).isoformat()), to="offline")
    us = pa.timestamp("us", tz="UTC")
    # A backtest or forecast may ask as of a later time: answered by the point-in-time rule.
    soon = store.get_historical_features(_entities(pa.array([NOW + timedelta(hours=1)], us)), FEATURES).to_arrow()
    assert soon.column("conv_rate").to_pylist() == [0.5]
    far = store.get_historical_features(_entities(pa.array([NOW.replace(year=9999)], us)), FEATURES).to_arrow()
    assert far.column("conv_rate").to_pylist() == [None]  # past the view's ttl
    early = pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW.replace(year=1960)]})
    assert store.get_historical_features(early, FEATURES).to_arrow().column("conv_rate").to_pylist() == [None]
    year_10000 = pa.array([253402351199000000], us)  # 9999-12-31T23:59:59-14:00 in UTC
    with pytest.raises(InputError, match="entity timestamp column 'event_timestamp' is .*outside the years 1..9999"):
        store.get_historical_features(_entities(year_10000), FEATURES).to_arrow()
