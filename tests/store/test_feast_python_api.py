"""The Python API under Feast's spellings: to_df(), start_date/end_date/feature_views,
disable_event_timestamp, filter_by_created_timestamp, PushMode, and string entity values
for integer keys converted as Feast converts them."""

from datetime import timedelta

import pandas as pd
import pytest

from featurestore import PushMode
from featurestore.errors import InputError

from .conftest import NOW

REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


def test_to_df_on_training_jobs_and_online_responses(store):
    store.materialize(start_date=NOW - timedelta(days=1), end_date=NOW, feature_views=["driver_hourly_stats"])
    entity_df = pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": [NOW, NOW]})
    job = store.get_historical_features(entity_df=entity_df, features=REFS)
    assert job.to_df().equals(job.to_pandas())
    online = store.get_online_features(features=REFS, entity_rows=[{"driver_id": 1001}, {"driver_id": 1002}])
    frame = online.to_df()
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["driver_id", *[r.split(":")[1] for r in REFS]]
    # Online equals offline for the same data and time.
    assert frame["avg_daily_trips"].tolist() == job.to_df()["avg_daily_trips"].tolist()
    assert "conv_rate__ts" in online.to_df(include_event_timestamps=True).columns


def test_string_entity_values_for_an_int64_key_are_converted_as_feast_does(store):
    store.materialize_incremental(end_date=NOW)
    as_ints = store.get_online_features(REFS, [{"driver_id": 1001}]).to_dict()
    as_text = store.get_online_features(REFS, [{"driver_id": "1001"}]).to_dict()
    assert as_text == as_ints
    with pytest.raises(InputError, match="'driver_id' is Int64 but got str value '10O1'"):
        store.get_online_features(REFS, [{"driver_id": "10O1"}])
    times = [NOW, NOW]
    text_job = store.get_historical_features(pd.DataFrame({"driver_id": ["1001", "1002"], "event_timestamp": times}),
                                             REFS).to_df()
    int_job = store.get_historical_features(pd.DataFrame({"driver_id": [1001, 1002], "event_timestamp": times}),
                                            REFS).to_df()
    assert text_job[["conv_rate", "avg_daily_trips"]].equals(int_job[["conv_rate", "avg_daily_trips"]])


def test_filter_by_created_timestamp_is_known_at_timestamp(store):
    # Each example row is created five minutes after its event time: at exactly the event
    # time it was not known yet, so the previous hour's row is used instead.
    entity_df = pd.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]})
    feast = store.get_historical_features(entity_df, REFS, filter_by_created_timestamp=True).to_df()
    ours = store.get_historical_features(entity_df, REFS, known_at_timestamp=True).to_df()
    plain = store.get_historical_features(entity_df, REFS).to_df()
    assert feast.equals(ours) and not feast.equals(plain)


def test_entityless_retrieval_is_refused_with_what_to_do(store):
    with pytest.raises(InputError, match="needs an entity_df"):
        store.get_historical_features(features=REFS, start_date=NOW - timedelta(days=1), end_date=NOW)


def test_disable_event_timestamp_materializes_every_row_up_to_now(store):
    [result] = store.materialize(NOW, NOW, feature_views=["driver_hourly_stats"], disable_event_timestamp=True)
    assert result.start is None and result.end == NOW and result.rows == 5


def test_both_spellings_of_one_argument_are_refused(store):
    with pytest.raises(InputError, match="give end or Feast's end_date, not both"):
        store.materialize_incremental(NOW, end_date=NOW - timedelta(hours=1))


def test_push_takes_feasts_push_mode(store):
    rows = pd.DataFrame({"driver_id": [7001], "event_timestamp": [NOW], "conv_rate": [0.5], "acc_rate": [0.5],
                         "avg_daily_trips": [3]})
    store.push("driver_stats_push", rows, to=PushMode.ONLINE)
    served = store.get_online_features(["driver_hourly_stats_fresh:avg_daily_trips"], [{"driver_id": 7001}])
    assert served.to_dict()["avg_daily_trips"] == [3]
