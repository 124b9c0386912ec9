from datetime import datetime, timedelta, timezone

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import InputError, NotFoundError, SchemaError

from .conftest import NOW

REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


def source_rows(repo):
    return pl.from_arrow(pq.read_table(repo / "data" / "driver_stats.parquet"))


def expected(repo, driver, at):
    rows = source_rows(repo).filter((pl.col("driver_id") == driver) & (pl.col("event_timestamp") <= at)
                                    & (pl.col("event_timestamp") >= at - timedelta(days=1)))
    if rows.is_empty():
        return None
    return rows.sort("event_timestamp").row(-1, named=True)


def test_training_set_keeps_order_and_columns_and_is_point_in_time(store, repo):
    times = [NOW - timedelta(hours=1, minutes=30), NOW - timedelta(days=3), NOW - timedelta(days=30), NOW]
    entity_df = pl.DataFrame({"driver_id": [1003, 1001, 1002, 1003], "event_timestamp": times,
                              "label": [1, 0, 1, 1]})
    out = store.get_historical_features(entity_df, REFS).to_polars()
    assert out.columns == ["driver_id", "event_timestamp", "label", "conv_rate", "avg_daily_trips"]
    assert out["driver_id"].to_list() == [1003, 1001, 1002, 1003]
    assert out["label"].to_list() == [1, 0, 1, 1]
    for row in out.iter_rows(named=True):
        want = expected(repo, row["driver_id"], row["event_timestamp"])
        if want is None:
            assert row["conv_rate"] is None and row["avg_daily_trips"] is None
        else:
            assert row["conv_rate"] == pytest.approx(want["conv_rate"])
            assert row["avg_daily_trips"] == want["avg_daily_trips"]
    assert out["conv_rate"][2] is None  # 30 days back: before the data


def test_every_entity_set_shape_gives_the_same_answer(store, tmp_path):
    entity = pa.table({"driver_id": [1001, 1002], "event_timestamp": pa.array(
        [NOW - timedelta(hours=2), NOW - timedelta(hours=5)], pa.timestamp("us", tz="UTC"))})
    pq.write_table(entity, tmp_path / "entities.parquet")
    reference = store.get_historical_features(entity, REFS).to_arrow()
    assert store.get_historical_features(pl.from_arrow(entity), REFS).to_arrow().equals(reference)
    assert store.get_historical_features(entity.to_pandas(), REFS).to_arrow().column("conv_rate").equals(
        reference.column("conv_rate"))
    assert store.get_historical_features(str(tmp_path / "entities.parquet"), REFS).to_arrow().equals(reference)
    sql = f"SELECT * FROM read_parquet('{tmp_path / 'entities.parquet'}') ORDER BY driver_id"
    assert store.get_historical_features(sql, REFS).to_arrow().column("conv_rate").equals(reference.column("conv_rate"))


def test_feature_service_and_full_feature_names(store):
    entity = pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]})
    out = store.get_historical_features(entity, "driver_activity_v1", full_feature_names=True).to_polars()
    assert out.columns == ["driver_id", "event_timestamp", "driver_hourly_stats__conv_rate",
                           "driver_hourly_stats__acc_rate", "driver_hourly_stats_fresh__avg_daily_trips"]
    service = store.get_feature_service("driver_activity_v1")
    assert store.get_historical_features(entity, service).to_polars().columns[2:] == [
        "conv_rate", "acc_rate", "avg_daily_trips"]


def test_naive_and_other_time_zones_are_utc(store):
    aware = pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW - timedelta(hours=3)]})
    naive = aware.with_columns(pl.col("event_timestamp").dt.replace_time_zone(None))
    tokyo = aware.with_columns(pl.col("event_timestamp").dt.convert_time_zone("Asia/Tokyo"))
    answers = [store.get_historical_features(df, REFS).to_polars()["conv_rate"].to_list() for df in (aware, naive, tokyo)]
    assert answers[0] == answers[1] == answers[2] and answers[0][0] is not None
    assert store.get_historical_features(naive, REFS).to_polars().schema["event_timestamp"] == pl.Datetime("us")


def test_empty_entity_set_gives_an_empty_result_with_the_schema(store):
    empty = pa.table({"driver_id": pa.array([], pa.int64()),
                      "event_timestamp": pa.array([], pa.timestamp("us", tz="UTC"))})
    out = store.get_historical_features(empty, REFS).to_arrow()
    assert out.num_rows == 0
    assert out.schema.names == ["driver_id", "event_timestamp", "conv_rate", "avg_daily_trips"]
    assert out.schema.field("conv_rate").type == pa.float32()


def test_missing_timestamp_column_is_named(store):
    with pytest.raises(InputError, match="event_timestamp"):
        store.get_historical_features(pl.DataFrame({"driver_id": [1001]}), REFS).to_arrow()


def test_another_timestamp_column_can_be_named(store):
    df = pl.DataFrame({"driver_id": [1001], "ts": [NOW]})
    out = store.get_historical_features(df, REFS, timestamp_field="ts").to_polars()
    assert out["conv_rate"][0] is not None


def test_join_key_of_the_wrong_type_names_column_and_types(store):
    # ("1001" would be converted, as Feast converts it: tests/store/test_feast_python_api.py)
    df = pl.DataFrame({"driver_id": ["driver-1001"], "event_timestamp": [NOW]})
    with pytest.raises(SchemaError) as info:
        store.get_historical_features(df, REFS).to_arrow()
    message = str(info.value)
    assert "driver_id" in message and "int64" in message.lower() and ("string" in message.lower() or "varchar" in message.lower())


def test_unknown_view_and_feature_list_close_matches(store):
    df = pl.DataFrame({"driver_id": [1001], "event_timestamp": [NOW]})
    with pytest.raises(NotFoundError, match="did you mean 'driver_hourly_stats'"):
        store.get_historical_features(df, ["driver_hourly_stat:conv_rate"])
    with pytest.raises(NotFoundError, match="did you mean 'conv_rate'"):
        store.get_historical_features(df, ["driver_hourly_stats:conv_rat"])
    with pytest.raises(NotFoundError, match="feature service"):
        store.get_historical_features(df, "driver_activity")


def test_saved_dataset_records_refs_versions_and_fingerprint(store):
    df = pl.DataFrame({"driver_id": [1001, 1002, 1001], "event_timestamp": [NOW, NOW, NOW - timedelta(hours=4)]})
    job = store.get_historical_features(df, REFS)
    record = store.get_historical_features(df, REFS).save("driver_training")
    assert record["rows"] == 3 and record["entity_rows"] == 3
    assert record["features"] == REFS
    assert record["feature_view_versions"] == {"driver_hourly_stats": 1}
    assert record["entity_fingerprint"] == job.fingerprint()
    assert pl.read_parquet(store.get_saved_dataset("driver_training").path).equals(job.to_polars())
    other = pl.DataFrame({"driver_id": [1003], "event_timestamp": [NOW]})
    assert store.get_historical_features(other, REFS).fingerprint() != record["entity_fingerprint"]
    [listed] = store.list_saved_datasets()
    assert listed["name"] == "driver_training" and listed["version"] == 1
    lineage = store.registry.lineage(store.project, "saved_dataset", "driver_training", "upstream")
    assert ("feature_view", "driver_hourly_stats") in {(e.from_kind, e.from_name) for e in lineage}
