"""A pushed time must be a time: numbers in a timestamp column are refused (Arrow would
read 1714564800 as microseconds, a row in 1970), and nothing is written."""

import pytest

from featurestore.errors import SchemaError

from .conftest import NOW


def pushed_files(repo):
    return sorted((repo / "data").rglob("pushed/**/*.parquet"))


@pytest.mark.parametrize("stamp", [int(NOW.timestamp()), NOW.timestamp()])
def test_a_numeric_event_time_is_refused_and_nothing_is_written(store, repo, stamp):
    before = store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], [{"driver_id": 1001}]).to_dict()
    rows = {"driver_id": [1001], "event_timestamp": [stamp], "conv_rate": [0.5], "acc_rate": [0.5],
            "avg_daily_trips": [5]}
    with pytest.raises(SchemaError, match=r"'event_timestamp'.*ISO 8601"):
        store.push("driver_stats_push", rows, to="online_and_offline")
    assert pushed_files(repo) == []
    assert store.get_online_features(["driver_hourly_stats_fresh:conv_rate"], [{"driver_id": 1001}]).to_dict() == before
