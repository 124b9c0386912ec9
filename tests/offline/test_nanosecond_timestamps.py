"""Source timestamp columns in nanoseconds (pandas' datetime64[ns], with or without a
zone) and folders mixing them with microsecond files: materialization's window filter
must work on all of them, not only the join."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.duckdb import DuckDBEngine

UTC = timezone.utc


def at(hour: int) -> datetime:
    return datetime(2024, 1, 1, hour, tzinfo=UTC)


def _write(path, ids, times, rates, ts_type):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"driver_id": pa.array(ids, pa.int64()),
                             "event_timestamp": pa.array(times, ts_type),
                             "conv_rate": pa.array(rates, pa.float64())}), path)


def _view(path) -> ViewRequest:
    return ViewRequest(name="stats", source=SourceTable((str(path),), "event_timestamp"),
                       join_keys=("driver_id",), features=("conv_rate",), output_names=("conv_rate",))


@pytest.mark.parametrize("ts_type", [pa.timestamp("ns", tz="UTC"), pa.timestamp("ns"),
                                     pa.timestamp("ns", tz="Asia/Tokyo")])
def test_latest_rows_over_nanosecond_timestamps(tmp_path, ts_type):
    path = tmp_path / "stats.parquet"
    _write(path, [1, 1, 2], [at(1), at(3), at(5)], [0.1, 0.3, 0.5], ts_type)
    got = DuckDBEngine().latest_rows(_view(path), at(1), at(3)).read_all()
    assert got.column("driver_id").to_pylist() == [1]
    assert got.column("conv_rate").to_pylist() == [0.3]
    assert got.column("event_timestamp").to_pylist() == [at(3)]


def test_latest_rows_over_a_folder_mixing_timestamp_units_and_zones(tmp_path):
    _write(tmp_path / "src" / "a.parquet", [1, 2], [at(1), at(2)], [0.1, 0.2], pa.timestamp("us", tz="UTC"))
    _write(tmp_path / "src" / "b.parquet", [1], [at(3)], [0.3], pa.timestamp("ns"))
    got = DuckDBEngine().latest_rows(_view(tmp_path / "src"), at(2), at(3)).read_all().sort_by("driver_id")
    assert got.column("driver_id").to_pylist() == [1, 2]
    assert got.column("conv_rate").to_pylist() == [0.3, 0.2]
