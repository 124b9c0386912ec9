"""A view's source rewritten after apply with other column types: every read (materialize,
backfill, training sets) checks the files against the registered types. Another kind of
type is a SchemaError naming the view, the column and both types; a wider type of the same
kind is read value by value, and a value that does not fit is an error, never inf."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import SchemaError
from featurestore.jobs import backfill

from .conftest import NOW

VIEW = "driver_hourly_stats"
DEFS = "features/driver_stats.py"


def rewrite(repo, column: str, values) -> None:
    """Replace ``column`` of the example source: ``values`` is an Arrow type to cast it to,
    or a function of the old column giving the new one."""
    path = repo / "data" / "driver_stats.parquet"
    table = pq.read_table(path)
    i = table.column_names.index(column)
    old = table.column(i)
    table = table.set_column(i, column, old.cast(values) if isinstance(values, pa.DataType) else values(old))
    pq.write_table(table, path)


def entities(n: int = 2) -> pa.Table:
    return pa.table({"driver_id": pa.array([1001, 1002][:n], pa.int64()),
                     "event_timestamp": pa.array([NOW] * n, pa.timestamp("us", tz="UTC"))})


def online(store, feature: str = "conv_rate"):
    return store.get_online_features([f"{VIEW}:{feature}"], [{"driver_id": 1001}]).to_dict()[feature][0]


def training(store, feature: str = "conv_rate") -> pa.Table:
    return store.get_historical_features(entities(), [f"{VIEW}:{feature}"]).to_arrow()


def test_a_join_key_turned_string_fails_every_read_naming_column_and_types(store, repo):
    rewrite(repo, "driver_id", pa.string())
    kind_change = r"view 'driver_hourly_stats': column 'driver_id' is String in .*driver_stats.parquet.* declares Int64"
    with pytest.raises(SchemaError, match=kind_change):
        store.materialize(None, NOW, [VIEW])
    assert online(store) is None  # nothing was written under string keys
    with pytest.raises(SchemaError, match=kind_change):
        training(store)
    # Each chunk is still tried 1 + retries times; only the backoff between tries is skipped.
    report = backfill(store, VIEW, NOW - timedelta(days=2), NOW, "1d", sleep=lambda seconds: None)
    assert not report.ok and all("is String" in o.error and "declares Int64" in o.error for o in report.failed)
    assert store.materializer.watermark(VIEW) is None


def test_a_float_feature_turned_string_is_refused_not_returned_as_strings(store, repo):
    rewrite(repo, "conv_rate", pa.string())
    with pytest.raises(SchemaError, match=r"column 'conv_rate' is String .* declares Float32"):
        training(store)
    with pytest.raises(SchemaError, match=r"column 'conv_rate' is String .* declares Float32"):
        store.materialize(None, NOW, [VIEW])


def test_doubles_beyond_float32_are_an_error_not_inf(store, repo):
    rewrite(repo, "conv_rate", lambda c: pa.array([1e300] * len(c), pa.float64()))
    too_big = r"column 'conv_rate' holds 1e\+300, which does not fit its declared type Float32"
    with pytest.raises(SchemaError, match=too_big):
        store.materialize(None, NOW, [VIEW])
    assert online(store) is None
    with pytest.raises(SchemaError, match=too_big):
        training(store)


def test_doubles_that_fit_float32_are_read_as_float32(store, repo):
    rewrite(repo, "conv_rate", lambda c: pa.array([0.25] * (len(c) - 1) + [float("inf")], pa.float64()))
    table = training(store)
    assert table.schema.field("conv_rate").type == pa.float32()
    store.materialize(None, NOW, [VIEW])
    assert online(store) in (0.25, float("inf"))


def test_int64_values_beyond_a_declared_int32_are_an_error(store, repo):
    path = repo / DEFS
    path.write_text(path.read_text().replace("from featurestore.types import Float32, Int64",
                                             "from featurestore.types import Float32, Int32, Int64")
                    .replace('Field(name="avg_daily_trips", dtype=Int64),', 'Field(name="avg_daily_trips", dtype=Int32),', 1))
    rewrite(repo, "avg_daily_trips", pa.int32())
    store.apply()
    rewrite(repo, "avg_daily_trips", pa.int64())  # still fits: read as Int32
    assert training(store, "avg_daily_trips").schema.field("avg_daily_trips").type == pa.int32()
    rewrite(repo, "avg_daily_trips", lambda c: pa.array([3_000_000_000] * len(c), pa.int64()))
    with pytest.raises(SchemaError, match=r"column 'avg_daily_trips' .*does not fit its declared type Int32"):
        training(store, "avg_daily_trips")
    with pytest.raises(SchemaError, match=r"column 'avg_daily_trips' .*does not fit its declared type Int32"):
        store.materialize(None, NOW, [VIEW])


def test_a_narrower_type_of_the_same_kind_is_still_read_and_widened(store, repo):
    rewrite(repo, "avg_daily_trips", pa.int32())  # int32 data for an Int64 feature
    rewrite(repo, "driver_id", pa.int32())
    table = training(store, "avg_daily_trips")
    assert table.schema.field("avg_daily_trips").type == pa.int64()
    [result] = store.materialize(None, NOW, [VIEW])
    assert result.rows == 5 and online(store, "avg_daily_trips") is not None
