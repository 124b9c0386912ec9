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


# A pushed value must have its column's kind, as JSON spells it: a boolean is not an
# integer, a string is not a number, a number is not a string. (Timestamps are the one
# column that takes strings, as ISO 8601.) Whole numbers fill float columns, and floats
# fill integer columns only when whole.
WRONG_KINDS = [
    ("avg_daily_trips", True, "Int64"),
    ("avg_daily_trips", "7", "Int64"),
    ("avg_daily_trips", 7.5, "Int64"),
    ("conv_rate", "0.5", "Float32"),
    ("conv_rate", False, "Float32"),
    ("driver_id", True, "Int64"),
    ("driver_id", "1001", "Int64"),
]


@pytest.mark.parametrize("column, value, declared", WRONG_KINDS)
def test_a_value_of_the_wrong_kind_is_refused_and_nothing_is_written(store, repo, column, value, declared):
    rows = {"driver_id": [1001], "event_timestamp": [NOW.isoformat()], "conv_rate": [0.5], "acc_rate": [0.5],
            "avg_daily_trips": [5], column: [value]}
    with pytest.raises(SchemaError, match=rf"column {column!r} .*declares {declared}"):
        store.push("driver_stats_push", rows, to="online_and_offline")
    assert pushed_files(repo) == []


def test_values_of_the_declared_kind_are_taken_whole_floats_in_integer_columns_too(store):
    rows = {"driver_id": [1001, 1002], "event_timestamp": [NOW.isoformat()] * 2, "conv_rate": [1, 0.25],
            "acc_rate": [None, 0.5], "avg_daily_trips": [5.0, 6]}
    assert store.push("driver_stats_push", rows).rows == 2
    online = store.get_online_features(["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:avg_daily_trips"],
                                       {"driver_id": [1001, 1002]}).to_dict()
    assert online["conv_rate"] == [1.0, 0.25] and online["avg_daily_trips"] == [5, 6]
