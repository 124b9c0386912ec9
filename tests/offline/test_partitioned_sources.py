"""Hive-partitioned and many-file sources: partition columns read, days pruned, footers cached."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import InputError
from featurestore.offline import scan as scan_module
from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.duckdb import DuckDBEngine

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
DAY1 = datetime(2024, 5, 1, tzinfo=UTC)


def partitioned(root, days: int = 3, regions=("eu", "us")) -> str:
    """driver_id, ts, x under trips/date=YYYY-MM-DD/region=R/part-0.parquet, one row a day
    per driver: x = 10 * day + driver."""
    for d in range(days):
        day = DAY1 + timedelta(days=d)
        for region in regions:
            folder = root / "trips" / f"date={day.date()}" / f"region={region}"
            folder.mkdir(parents=True)
            drivers = [1, 2] if region == "eu" else [3]
            pq.write_table(pa.table({
                "driver_id": pa.array(drivers, pa.int64()),
                "ts": pa.array([day + timedelta(hours=12)] * len(drivers), TS),
                "x": [10 * d + k for k in drivers],
            }), folder / "part-0.parquet")
    return str(root / "trips")


def request(path: str, *, features=("x",), ttl=timedelta(hours=30), date_partition="date") -> ViewRequest:
    return ViewRequest("trips", SourceTable((path,), "ts", None, date_partition), ("driver_id",), features,
                       features, ttl=ttl)


def test_partition_columns_are_columns(tmp_path):
    path = partitioned(tmp_path)
    entities = pa.table({"driver_id": [1, 3], "ts": pa.array([DAY1 + timedelta(days=1, hours=13)] * 2, TS)})
    out = DuckDBEngine().point_in_time_join(entities, "ts", [request(path, features=("x", "region", "date"))])
    assert out.read_all().select(["x", "region", "date"]).to_pylist() == [
        {"x": 11, "region": "eu", "date": date(2024, 5, 2)},
        {"x": 13, "region": "us", "date": date(2024, 5, 2)},
    ]


def test_days_outside_the_entity_window_are_never_opened(tmp_path):
    path = partitioned(tmp_path, days=4)
    for d in (0, 3):  # the entity rows (and the 2h ttl) need 05-02 and 05-03 only
        (tmp_path / "trips" / f"date={(DAY1 + timedelta(days=d)).date()}" / "region=eu" / "part-0.parquet"
         ).write_bytes(b"not parquet")
    entities = pa.table({"driver_id": [1, 2], "ts": pa.array([DAY1 + timedelta(days=1, hours=13),
                                                                DAY1 + timedelta(days=2, hours=13)], TS)})
    view = request(path, ttl=timedelta(hours=2))  # first T - ttl is still on 05-02
    assert DuckDBEngine().point_in_time_join(entities, "ts", [view]).read_all().column("x").to_pylist() == [11, 22]
    with pytest.raises(InputError, match="cannot read Parquet file"):  # undeclared: every day is read
        DuckDBEngine().point_in_time_join(entities, "ts", [request(path, date_partition=None)]).read_all()


def test_a_ttl_reaching_back_keeps_the_earlier_day(tmp_path):
    path = partitioned(tmp_path)
    entities = pa.table({"driver_id": [1], "ts": pa.array([DAY1 + timedelta(days=1, hours=1)], TS)})
    scan = scan_module.scan_source(request(path).source, None, ("driver_id",), (date(2024, 4, 30), date(2024, 5, 2)))
    assert sorted({p.split("date=")[1][:10] for p in scan.parquet}) == ["2024-05-01", "2024-05-02"]
    out = DuckDBEngine().point_in_time_join(entities, "ts", [request(path, ttl=timedelta(hours=20))])
    assert out.read_all().column("x").to_pylist() == [1]  # 05-01 12:00, 13 hours before


def test_materialization_reads_only_the_window_days(tmp_path):
    path = partitioned(tmp_path)
    (tmp_path / "trips" / "date=2024-05-01" / "region=us" / "part-0.parquet").write_bytes(b"broken")
    start, end = DAY1 + timedelta(days=1), DAY1 + timedelta(days=2, hours=23)
    rows = DuckDBEngine().latest_rows(request(path), start, end).read_all().sort_by("driver_id")
    assert rows.column("x").to_pylist() == [21, 22, 23]


def test_many_files_read_each_footer_once(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(120):
        pq.write_table(pa.table({"driver_id": [i], "ts": pa.array([DAY1], TS), "x": [i]}), folder / f"f{i:03}.parquet")
    view = request(str(folder), date_partition=None)
    entities = pa.table({"driver_id": [5, 119, 500], "ts": pa.array([DAY1] * 3, TS)})
    engine = DuckDBEngine()
    assert engine.point_in_time_join(entities, "ts", [view]).read_all().column("x").to_pylist() == [5, 119, None]
    misses = scan_module._footer.cache_info().misses
    assert engine.point_in_time_join(entities, "ts", [view]).read_all().column("x").to_pylist() == [5, 119, None]
    assert scan_module._footer.cache_info().misses == misses  # the second query read no footer
    # a file rewritten in place is read anew
    pq.write_table(pa.table({"driver_id": [5], "ts": pa.array([DAY1], TS), "x": [555]}), folder / "f005.parquet")
    os.utime(folder / "f005.parquet", ns=(1, 1))
    assert engine.point_in_time_join(entities, "ts", [view]).read_all().column("x").to_pylist() == [555, 119, None]


def test_an_aggregated_view_reads_the_days_its_window_reaches_back_to(tmp_path):
    """Materializing [05-03, 05-03 23:00] of a 2-day sum still reads 05-02 (but not 05-01)."""
    from featurestore import Aggregation

    path = partitioned(tmp_path)
    (tmp_path / "trips" / "date=2024-05-01" / "region=us" / "part-0.parquet").write_bytes(b"broken")
    aggs = (Aggregation(column="x", function="sum", time_window=timedelta(hours=36)),)
    view = ViewRequest("trips", SourceTable((path,), "ts", None, "date"), ("driver_id",), (aggs[0].name,),
                       (aggs[0].name,), None, aggs)
    start, end = DAY1 + timedelta(days=2), DAY1 + timedelta(days=2, hours=23)
    rows = DuckDBEngine().latest_rows(view, start, end).read_all().sort_by("driver_id").to_pylist()
    assert [(r["driver_id"], r[aggs[0].name]) for r in rows] == [(1, 11 + 21), (2, 12 + 22), (3, 13 + 23)]


def test_an_aggregated_training_set_opens_no_day_before_its_longest_window(tmp_path):
    """Entity rows from 05-03 11:00 with a 30-hour sum read back to 05-02 05:00: 05-01 stays
    shut, and the filter on the raw timestamps keeps what each window counts."""
    from featurestore import Aggregation

    path = partitioned(tmp_path)
    (tmp_path / "trips" / "date=2024-05-01" / "region=eu" / "part-0.parquet").write_bytes(b"broken")
    agg = Aggregation(column="x", function="sum", time_window=timedelta(hours=30))
    view = ViewRequest("trips", SourceTable((path,), "ts", None, "date"), ("driver_id",), (agg.name,),
                       (agg.name,), None, (agg,))
    entities = pa.table({"driver_id": [1, 3, 1], "ts": pa.array([DAY1 + timedelta(days=2, hours=13),
                                                                   DAY1 + timedelta(days=2, hours=13),
                                                                   DAY1 + timedelta(days=2, hours=11)], TS)})
    out = DuckDBEngine().point_in_time_join(entities, "ts", [view]).read_all()
    assert out.column(agg.name).to_pylist() == [11 + 21, 13 + 23, 11]  # 05-03 11:00: only 05-02 12:00 is due


def test_a_partition_column_inside_the_files_takes_the_folders_value(tmp_path):
    """A file that also holds the partition column is read as its folder says (DuckDB's and
    Spark's reading): one value and one type per column, whatever the file wrote."""
    for d, written in ((0, "stale"), (1, "2099-01-01")):
        day = DAY1 + timedelta(days=d)
        folder = tmp_path / "trips" / f"date={day.date()}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"driver_id": [1], "ts": pa.array([day + timedelta(hours=12)], TS), "x": [d],
                                 "date": [written]}), folder / "part-0.parquet")
    view = request(str(tmp_path / "trips"), features=("x", "date"))
    assert scan_module.scan_source(view.source).schema.field("date").type == pa.date32()
    entities = pa.table({"driver_id": [1, 1], "ts": pa.array([DAY1 + timedelta(hours=13),
                                                               DAY1 + timedelta(days=1, hours=13)], TS)})
    out = DuckDBEngine().point_in_time_join(entities, "ts", [view]).read_all()
    assert out.select(["x", "date"]).to_pylist() == [{"x": 0, "date": date(2024, 5, 1)},
                                                     {"x": 1, "date": date(2024, 5, 2)}]


def test_a_join_key_inside_the_files_and_the_folders_is_matched_by_the_folders_value(tmp_path):
    """Statistics of a file's own copy of a partition column say nothing about what is read."""
    for shard in (7, 2**40):
        folder = tmp_path / "trips" / f"driver_id={shard}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"driver_id": pa.array([0], pa.int64()), "ts": pa.array([DAY1], TS),
                                 "x": [shard % 100]}), folder / "part-0.parquet")
    view = request(str(tmp_path / "trips"), date_partition=None)
    entities = pa.table({"driver_id": pa.array([7, 0, 2**40], pa.int64()), "ts": pa.array([DAY1] * 3, TS)})
    out = DuckDBEngine().point_in_time_join(entities, "ts", [view]).read_all()
    assert out.column("x").to_pylist() == [7, None, 2**40 % 100]
