"""``FeatureStore.remote`` against a real Flight server: every method answers what the
local store answers on the same repo, in the same types."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from featurestore import FeatureStore, OnlineResponse
from featurestore.errors import InputError, IntegrityError, NotFoundError
from featurestore.push import PushResult

from ..conftest import NOW, REFS
from .conftest import entities, serve_flight


@pytest.fixture
def both(store):
    with serve_flight(store) as server, FeatureStore.remote(server.url) as remote:
        yield store, remote


def test_a_training_set_is_the_local_one(both):
    local, remote = both
    rows = entities(40)
    for features, full in ((REFS, False), ("driver_activity_v1", True)):
        job = remote.get_historical_features(rows.to_pandas(), features, full_feature_names=full)
        assert job.to_arrow().equals(local.get_historical_features(rows, features, full).to_arrow())
    assert remote.get_historical_features(rows, REFS).to_polars().equals(
        local.get_historical_features(rows, REFS).to_polars())


def test_known_at_timestamp_and_a_streamed_reader(both):
    local, remote = both
    rows = entities(30)
    reader = remote.get_historical_features(rows, REFS, known_at_timestamp=True).to_reader()
    assert isinstance(reader, pa.RecordBatchReader)
    expected = local.get_historical_features(rows, REFS, known_at_timestamp=True).to_arrow()
    assert reader.read_all().equals(expected)


def test_save_then_fetch_a_saved_dataset(both):
    local, remote = both
    record = remote.get_historical_features(entities(12), REFS).save("remote_ds")
    assert record["name"] == "remote_ds" and record["rows"] == 12
    fetched = remote.get_saved_dataset("remote_ds")
    assert fetched.version == record["version"]
    assert fetched.to_arrow().equals(local.get_saved_dataset("remote_ds").to_arrow())
    assert [d["name"] for d in remote.list_saved_datasets()] == ["remote_ds"]
    with pytest.raises(NotFoundError, match="remote_ds"):
        remote.get_saved_dataset("remote_dss")


def test_a_dataset_record_over_flight_holds_no_server_path(both):
    local, remote = both
    record = remote.get_historical_features(entities(3), REFS).save("remote_ds")
    answers = [record, remote.get_saved_dataset("remote_ds").to_dict(), *remote.list_saved_datasets()]
    server_folder = str(local.repo_path)
    assert all(server_folder not in json.dumps(a) and not a["path"].startswith("/") for a in answers)
    assert record["path"] == f"datasets/remote_ds/{record['sha256']}.parquet"
    local.get_saved_dataset("remote_ds").path.unlink()  # the server still finds the file: gone now
    with pytest.raises(IntegrityError, match="is missing") as missing:
        remote.get_saved_dataset("remote_ds").to_arrow()
    assert server_folder not in str(missing.value)


def test_online_reads_push_and_listings(both):
    local, remote = both
    rows = [{"driver_id": 1001}, {"driver_id": 4242}]
    answer = remote.get_online_features(REFS, rows)
    assert isinstance(answer, OnlineResponse)
    expected = local.get_online_features(REFS, rows)
    assert answer.to_dict(include_event_timestamps=True) == expected.to_dict(include_event_timestamps=True)
    assert answer.statuses == expected.statuses
    pushed = remote.push("driver_stats_push", {"driver_id": [1001], "event_timestamp": [NOW], "created": [NOW],
                                               "conv_rate": [0.5], "acc_rate": [0.25], "avg_daily_trips": [7]})
    assert pushed == PushResult(1)
    fresh = remote.get_online_features(["driver_hourly_stats_fresh:avg_daily_trips"], {"driver_id": [1001]})
    assert fresh.to_dict()["avg_daily_trips"] == [7]
    assert [v.name for v in remote.list_feature_views()] == [v.name for v in local.list_feature_views()]
    assert remote.get_feature_service("driver_activity_v1").feature_refs == \
        local.get_feature_service("driver_activity_v1").feature_refs
    assert remote.get_entity("driver").join_keys == ("driver_id",)
    assert remote.project == local.project


def test_the_servers_errors_arrive_as_the_same_errors(both):
    _, remote = both
    with pytest.raises(NotFoundError, match="did you mean"):
        remote.get_historical_features(entities(3), ["driver_hourly_stats:conv_rat"]).to_arrow()
    with pytest.raises(InputError, match="no timestamp column 'event_timestamp'.*add it"):
        remote.get_historical_features(entities(3).drop_columns(["event_timestamp"]), REFS).to_arrow()
