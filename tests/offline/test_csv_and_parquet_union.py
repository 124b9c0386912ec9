"""A source mixing CSV and Parquet files (a CSV batch source plus pushed rows) is the union
of its files by column name: a column one file lacks is null there, not a DuckDB error."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.definitions import Aggregation
from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.duckdb import DuckDBEngine

UTC = timezone.utc


def at(hour: int) -> datetime:
    return datetime(2024, 1, 1, hour, tzinfo=UTC)


def _files(tmp_path):
    csv = tmp_path / "batch.csv"
    csv.write_text("driver_id,event_timestamp,fare,trips\n1,2024-01-01 01:00:00,1.5,3\n2,2024-01-01 01:00:00,2.5,4\n")
    pushed = tmp_path / "pushed" / "p1.parquet"
    pushed.parent.mkdir()
    # pushed before `trips` was a feature; carries the event id pushes to aggregation views add
    pq.write_table(pa.table({"driver_id": [1], "event_timestamp": pa.array([at(2)], pa.timestamp("us", tz="UTC")),
                             "fare": [4.0], "_event_id": ["e1"]}), pushed)
    return (str(csv), str(tmp_path / "pushed" / "*.parquet"))


def _view(files, **kw) -> ViewRequest:
    return ViewRequest(name="trips", source=SourceTable(files, "event_timestamp"), join_keys=("driver_id",), **kw)


def test_a_column_missing_from_the_pushed_parquet_reads_as_null(tmp_path):
    view = _view(_files(tmp_path), features=("fare", "trips"), output_names=("fare", "trips"))
    entities = pa.table({"driver_id": [1, 2], "ts": pa.array([at(3), at(3)], pa.timestamp("us", tz="UTC"))})
    out = DuckDBEngine().point_in_time_join(entities, "ts", [view]).read_all()
    assert out.column("fare").to_pylist() == [4.0, 2.5]
    assert out.column("trips").to_pylist() == [None, 4]
    latest = DuckDBEngine().latest_rows(view, None, at(3)).read_all().sort_by("driver_id")
    assert latest.column("trips").to_pylist() == [None, 4]


def test_aggregations_over_a_csv_batch_source_with_pushed_events(tmp_path):
    agg = Aggregation("fare", "sum", timedelta(hours=3))
    view = _view(_files(tmp_path), features=(agg.name,), output_names=(agg.name,), aggregations=(agg,))
    entities = pa.table({"driver_id": [1, 2], "ts": pa.array([at(3), at(3)], pa.timestamp("us", tz="UTC"))})
    out = DuckDBEngine().point_in_time_join(entities, "ts", [view]).read_all()
    assert out.column(agg.name).to_pylist() == [5.5, 2.5]
