"""The batch side of windowed aggregations (offline/aggregate_sql.py through the DuckDB
engine, offline/spark_aggregate.py through the Spark engine: every test runs on both),
pinned rule by rule, then checked against the online side's Python on random data."""

from __future__ import annotations

import math
import random
import struct
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import Aggregation, Entity, FeatureView, Field, FileSource
from featurestore.errors import SchemaError
from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.streaming.aggregate import aggregate
from featurestore.streaming.events import ViewLayout
from featurestore.types import Float32, Float64, Int32, Int64, String

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")
T = datetime(2024, 5, 1, 12, tzinfo=UTC)
US = timedelta(microseconds=1)
MIN10 = timedelta(minutes=10)
COLUMNS = {"fare": Float64, "trips": Int64, "city": String, "f32": Float32, "small": Int32}
ARROW = {"fare": pa.float64(), "trips": pa.int64(), "city": pa.string(), "f32": pa.float32(), "small": pa.int32()}


def write_events(folder, rows: list[dict], name: str = "events.parquet", event_ids: bool = False) -> str:
    fields = [("driver_id", pa.int64()), ("ts", TS), ("created", TS), *ARROW.items()]
    if event_ids:
        fields.append(("_event_id", pa.string()))
    full = [{**{k: None for k, _ in fields}, **r} for r in rows]
    path = folder / name
    pq.write_table(pa.Table.from_pylist(full, schema=pa.schema(fields)), path)
    return str(path)


def feature_view(path: str, aggs: list[Aggregation], keys: tuple[str, ...] = ("driver_id",)) -> FeatureView:
    schema = [Field(k, Int64) for k in keys] + [Field(c, t) for c, t in COLUMNS.items()]
    return FeatureView(name="trips", entities=[Entity(name="e", join_keys=list(keys))], schema=schema,
                       source=FileSource(path=path, timestamp_field="ts", created_timestamp_field="created"),
                       aggregations=aggs)


def request(view: FeatureView, path: str | tuple[str, ...]) -> ViewRequest:
    files = (path,) if isinstance(path, str) else path
    return ViewRequest(view.name, SourceTable(files, "ts", "created"), view.join_keys, view.feature_names,
                       view.feature_names, None, view.aggregations)


def join(engine, view: FeatureView, path, ids: list, times: list, **extra) -> list[dict]:
    entities = pa.table({"driver_id": ids, "event_timestamp": pa.array(times, TS), **extra})
    return engine.point_in_time_join(entities, "event_timestamp", [request(view, path)]).read_all().to_pylist()


def test_the_window_is_open_at_its_start_and_closed_at_its_end(tmp_path, offline_engine):
    path = write_events(tmp_path, [
        {"driver_id": 1, "ts": T - MIN10, "fare": 1.0},          # exactly T - window: out
        {"driver_id": 1, "ts": T - MIN10 + US, "fare": 2.0},     # in
        {"driver_id": 1, "ts": T, "fare": 4.0},                  # exactly T: in
        {"driver_id": 1, "ts": T + US, "fare": 8.0},             # after T: out
        {"driver_id": 2, "ts": T - MIN10, "fare": 16.0},
    ])
    view = feature_view(path, [Aggregation("fare", "sum", MIN10), Aggregation("fare", "count", MIN10)])
    rows = join(offline_engine, view, path, [1, 2, 3], [T, T, T])
    assert [(r["fare_sum_10m"], r["fare_count_10m"]) for r in rows] == [(6.0, 2), (None, 0), (None, 0)]


def test_every_function_and_the_empty_window(tmp_path, offline_engine):
    path = write_events(tmp_path, [
        {"driver_id": 1, "ts": T - timedelta(minutes=5), "fare": 3.0, "trips": 2, "city": "b", "f32": 1.5},
        {"driver_id": 1, "ts": T - timedelta(minutes=2), "fare": 1.0, "trips": 5, "city": "a", "f32": 0.25},
        {"driver_id": 1, "ts": T - timedelta(minutes=1), "fare": None, "trips": None, "city": None},
    ])
    aggs = [Aggregation(c, f, MIN10) for c in ("fare", "trips", "f32") for f in ("sum", "count", "mean", "min", "max", "last")]
    aggs += [Aggregation("city", f, MIN10) for f in ("count", "min", "max", "last")]
    view = feature_view(path, aggs)
    now, empty = join(offline_engine, view, path, [1, 1], [T, T + timedelta(hours=1)])
    assert {k: now[k] for k in ("fare_sum_10m", "fare_count_10m", "fare_mean_10m", "fare_min_10m", "fare_max_10m",
                                "fare_last_10m")} == {"fare_sum_10m": 4.0, "fare_count_10m": 2, "fare_mean_10m": 2.0,
                                                      "fare_min_10m": 1.0, "fare_max_10m": 3.0, "fare_last_10m": 1.0}
    assert (now["trips_sum_10m"], now["trips_mean_10m"], now["trips_last_10m"]) == (7, 3.5, 5)
    assert (now["f32_sum_10m"], now["f32_last_10m"]) == (1.75, 0.25)
    assert (now["city_count_10m"], now["city_min_10m"], now["city_max_10m"], now["city_last_10m"]) == (2, "a", "b", "a")
    assert all(v is None for k, v in empty.items() if k.endswith("_10m") and "count" not in k)
    assert all(v == 0 for k, v in empty.items() if "count" in k)


def test_output_types_follow_the_function_and_the_column(tmp_path, offline_engine):
    path = write_events(tmp_path, [{"driver_id": 1, "ts": T, "trips": 2, "f32": 1.0, "small": 3}])
    aggs = [Aggregation("trips", "count", MIN10), Aggregation("trips", "mean", MIN10), Aggregation("trips", "sum", MIN10),
            Aggregation("f32", "sum", MIN10), Aggregation("small", "max", MIN10)]
    view = feature_view(path, aggs)
    entities = pa.table({"driver_id": [1], "event_timestamp": pa.array([T], TS)})
    table = offline_engine.point_in_time_join(entities, "event_timestamp", [request(view, path)]).read_all()
    assert [table.schema.field(a.name).type for a in aggs] == [pa.int64(), pa.float64(), pa.int64(), pa.float32(),
                                                               pa.int32()]


def test_nan_and_infinity_count_as_null_and_negative_zero_as_zero(tmp_path, offline_engine):
    path = write_events(tmp_path, [
        {"driver_id": 1, "ts": T - timedelta(minutes=3), "fare": float("nan")},
        {"driver_id": 1, "ts": T - timedelta(minutes=2), "fare": float("inf")},
        {"driver_id": 1, "ts": T - timedelta(minutes=1), "fare": -0.0},
    ])
    view = feature_view(path, [Aggregation("fare", f, MIN10) for f in ("count", "sum", "min", "max", "last")])
    (row,) = join(offline_engine, view, path, [1], [T])
    assert row["fare_count_10m"] == 1
    for name in ("fare_sum_10m", "fare_min_10m", "fare_max_10m", "fare_last_10m"):
        assert row[name] == 0.0 and math.copysign(1, row[name]) == 1.0


def test_last_breaks_ties_by_created_time_then_by_value(tmp_path, offline_engine):
    path = write_events(tmp_path, [
        {"driver_id": 1, "ts": T, "created": T + timedelta(seconds=2), "city": "a"},
        {"driver_id": 1, "ts": T, "created": T + timedelta(seconds=1), "city": "z"},
        {"driver_id": 2, "ts": T, "created": T, "city": "a"},
        {"driver_id": 2, "ts": T, "created": T, "city": "c"},
        {"driver_id": 2, "ts": T, "created": None, "city": "z"},  # no created time loses the tie
    ])
    view = feature_view(path, [Aggregation("city", "last", MIN10)])
    assert [r["city_last_10m"] for r in join(offline_engine, view, path, [1, 2], [T, T])] == ["a", "c"]


def test_rows_sharing_an_event_id_count_once(tmp_path, offline_engine):
    rows = [{"driver_id": 1, "ts": T - timedelta(minutes=1), "fare": 1.0, "_event_id": "e1"}] * 3
    rows += [{"driver_id": 1, "ts": T - timedelta(minutes=2), "fare": 2.0, "_event_id": None}] * 2  # no id: two events
    first = write_events(tmp_path, rows[:2] + rows[3:], "a.parquet", event_ids=True)
    second = write_events(tmp_path, rows[2:3], "b.parquet", event_ids=True)  # appended again after a redelivery
    view = feature_view(first, [Aggregation("fare", "sum", MIN10), Aggregation("fare", "count", MIN10)])
    (row,) = join(offline_engine, view, (first, second), [1], [T])
    assert (row["fare_sum_10m"], row["fare_count_10m"]) == (5.0, 3)


def test_rows_keep_their_order_duplicates_and_columns(tmp_path, offline_engine):
    path = write_events(tmp_path, [{"driver_id": d, "ts": T - timedelta(minutes=m), "trips": m}
                                   for d in (1, 2) for m in range(1, 4)])
    view = feature_view(path, [Aggregation("trips", "sum", MIN10)])
    times = [T, T - timedelta(minutes=2), None, T, T]
    rows = join(offline_engine, view, path, [2, 1, 1, 2, None], times, label=["a", "b", "c", "d", "e"])
    assert [r["label"] for r in rows] == ["a", "b", "c", "d", "e"]
    assert [r["trips_sum_10m"] for r in rows] == [6, 5, None, 6, None]  # no time: no window, nulls


def test_several_join_keys_and_sums_that_overflow_the_column_type(tmp_path, offline_engine):
    big = 2**31 - 1
    rows = [{"driver_id": 1, "rider": r, "ts": T - timedelta(minutes=1), "small": big} for r in (1, 1, 2)]
    path = tmp_path / "keys.parquet"
    schema = pa.schema([("driver_id", pa.int64()), ("rider", pa.int64()), ("ts", TS), ("created", TS),
                        ("small", pa.int32())])
    pq.write_table(pa.Table.from_pylist([{**r, "created": None} for r in rows], schema=schema), path)
    view = FeatureView(name="pairs", entities=[Entity(name="pair", join_keys=["driver_id", "rider"])],
                       schema=[Field("driver_id", Int64), Field("rider", Int64), Field("small", Int32)],
                       source=FileSource(path=str(path), timestamp_field="ts", created_timestamp_field="created"),
                       aggregations=[Aggregation("small", "sum", MIN10), Aggregation("small", "mean", MIN10)])
    entities = pa.table({"driver_id": [1, 1, 1], "rider": [1, 2, 3], "event_timestamp": pa.array([T] * 3, TS)})
    out = offline_engine.point_in_time_join(entities, "event_timestamp", [request(view, str(path))]).read_all()
    assert out.column("small_sum_10m").to_pylist() == [None, big, None]  # 2 * big overflows Int32
    assert out.column("small_mean_10m").to_pylist() == [float(big), float(big), None]


def test_an_aggregation_of_an_unsuitable_or_missing_column_is_a_schema_error(tmp_path, offline_engine):
    path = write_events(tmp_path, [{"driver_id": 1, "ts": T, "city": "a"}])
    view = feature_view(path, [Aggregation("city", "sum", MIN10)])
    with pytest.raises(SchemaError, match="city.*string"):
        join(offline_engine, view, path, [1], [T])
    other = tmp_path / "other.parquet"
    pq.write_table(pa.table({"driver_id": [1], "ts": pa.array([T], TS), "created": pa.array([T], TS)}), other)
    with pytest.raises(SchemaError, match="'fare'"):
        join(offline_engine, feature_view(str(other), [Aggregation("fare", "sum", MIN10)]), str(other), [1], [T])


def test_latest_rows_gives_every_entity_its_aggregations_as_of_end(tmp_path, offline_engine):
    path = write_events(tmp_path, [
        {"driver_id": 1, "ts": T - timedelta(minutes=1), "fare": 1.0},
        {"driver_id": 1, "ts": T - timedelta(minutes=3), "fare": 2.0},
        {"driver_id": 2, "ts": T - timedelta(minutes=30), "fare": 4.0},  # its windows emptied before T
        {"driver_id": 3, "ts": T + timedelta(minutes=1), "fare": 8.0},   # after T
    ])
    view = feature_view(path, [Aggregation("fare", "sum", MIN10), Aggregation("fare", "count", MIN10)])
    engine = offline_engine
    rows = sorted(engine.latest_rows(request(view, path), None, T).read_all().to_pylist(), key=lambda r: r["driver_id"])
    assert rows == [
        {"driver_id": 1, "fare_sum_10m": 3.0, "fare_count_10m": 2, "event_timestamp": T},
        {"driver_id": 2, "fare_sum_10m": None, "fare_count_10m": 0, "event_timestamp": T},
    ]
    recent = engine.latest_rows(request(view, path), T - timedelta(minutes=5), T).read_all()
    assert recent.column("driver_id").to_pylist() == [1]


def _f32(x: float | None) -> float | None:
    return None if x is None else struct.unpack("<f", struct.pack("<f", x))[0]


def test_batch_equals_the_online_computation_on_random_events(tmp_path, offline_engine):
    """Random values (NaN, -0.0, huge and tiny floats, nulls, ties), random times: the SQL
    and the online side's Python agree exactly, float sums included."""
    rng = random.Random(7)
    base = T - timedelta(hours=1)
    rows = []
    for _ in range(1500):
        rows.append({
            "driver_id": rng.randrange(4),
            "ts": base + timedelta(microseconds=rng.randrange(0, 70 * 60 * 10**6, rng.choice([1, 10**6, 60 * 10**6]))),
            "created": rng.choice([None, base, base + timedelta(seconds=rng.randrange(5))]),
            "fare": rng.choice([None, float("nan"), -0.0, rng.uniform(-1e3, 1e3), rng.uniform(0, 1e-7), rng.uniform(0, 1e15), 0.1]),
            "trips": rng.choice([None, rng.randrange(-10**12, 10**12)]),
            "city": rng.choice([None, "a", "b", "é", "z", "ab"]),
            "f32": _f32(rng.choice([None, rng.uniform(-10, 10), 3.4e38])),
            "small": rng.choice([None, rng.randrange(-1000, 1000)]),
        })
    path = write_events(tmp_path, rows)
    aggs = [Aggregation(c, f, w) for w in (MIN10, timedelta(hours=1))
            for c, fs in (("fare", "sum count mean min max last"), ("trips", "sum mean min max last"),
                          ("f32", "sum mean max"), ("city", "count min max last"), ("small", "sum"))
            for f in fs.split()]
    view = feature_view(path, aggs)
    layout = ViewLayout.of(view)
    times = [base + timedelta(microseconds=rng.randrange(-10**8, 75 * 60 * 10**6)) for _ in range(400)]
    times += [r["ts"] for r in rows[:100]]  # exactly at an event
    ids = [rng.randrange(5) for _ in times]
    got = join(offline_engine, view, path, ids, times)
    events: dict[int, list] = {}
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for r in rows:
        created = None if r["created"] is None else (r["created"] - epoch) // US
        events.setdefault(r["driver_id"], []).append(((r["ts"] - epoch) // US, created,
                                                      tuple(r[c] for c in layout.columns)))
    for row, driver, at in zip(got, ids, times):
        expected = aggregate(layout, view.feature_names, events.get(driver, []), (at - epoch) // US)
        assert tuple(row[f] for f in view.feature_names) == expected, (driver, at)
