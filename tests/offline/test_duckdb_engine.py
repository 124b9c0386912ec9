"""The DuckDB offline engine against small hand-made files whose answers can be read off."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from featurestore.errors import FeatureStoreError, InputError, SchemaError
from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.duckdb import DuckDBEngine
from featurestore.offline.files import write_parquet_atomic

UTC = timezone.utc
TS = pa.timestamp("us", tz="UTC")


def at(hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2024, 1, 1, hour, minute, second, micro, tzinfo=UTC)


def write(folder, name: str, table: pa.Table | dict) -> str:
    table = table if isinstance(table, pa.Table) else pa.table(table)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return str(path)


def stats(folder, rows: list[tuple], name: str = "stats.parquet", created: bool = True) -> str:
    """driver_id, event_timestamp, [created,] conv_rate from (id, event, created, rate) tuples."""
    cols = {
        "driver_id": pa.array([r[0] for r in rows], pa.int64()),
        "event_timestamp": pa.array([r[1] for r in rows], TS),
    }
    if created:
        cols["created"] = pa.array([r[2] for r in rows], TS)
    cols["conv_rate"] = pa.array([r[3] for r in rows], pa.float64())
    return write(folder, name, cols)


def view(
    files: str | tuple[str, ...],
    *,
    name: str = "driver_stats",
    keys: tuple[str, ...] = ("driver_id",),
    features: tuple[str, ...] = ("conv_rate",),
    outputs: tuple[str, ...] | None = None,
    ttl: timedelta | None = None,
    created: str | None = "created",
    timestamp: str = "event_timestamp",
) -> ViewRequest:
    files = (files,) if isinstance(files, str) else files
    return ViewRequest(
        name=name,
        source=SourceTable(files, timestamp, created),
        join_keys=keys,
        features=features,
        output_names=outputs or features,
        ttl=ttl,
    )


def entities(ids: list, times: list, ts_type: pa.DataType = TS, **extra) -> pa.Table:
    return pa.table({"driver_id": ids, "ts": pa.array(times, ts_type), **extra})


def join(table: pa.Table, views, **kw) -> pa.Table:
    views = views if isinstance(views, list) else [views]
    reader = DuckDBEngine().point_in_time_join(table, "ts", views, **kw)
    assert isinstance(reader, pa.RecordBatchReader)
    return reader.read_all()


def rates(table: pa.Table, column: str = "conv_rate") -> list:
    return table.column(column).to_pylist()


# -- which row is chosen ---------------------------------------------------------------


def test_latest_row_at_or_before_t_inclusive(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1), (1, at(2), at(2), 0.2), (1, at(3), at(3), 0.3)])
    got = join(entities([1, 1, 1, 1], [at(2), at(2, 59), at(3), at(0, 59)]), view(src))
    assert rates(got) == [0.2, 0.2, 0.3, None]


def test_ttl_lower_bound_inclusive(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    ttl = timedelta(hours=1)
    times = [at(2), at(2, micro=1), at(1, 30), at(1)]
    assert rates(join(entities([1] * 4, times), view(src, ttl=ttl))) == [0.1, None, 0.1, 0.1]


def test_ttl_none_means_no_lower_bound(tmp_path):
    src = stats(tmp_path, [(1, datetime(2000, 1, 1, tzinfo=UTC), at(1), 0.1)])
    assert rates(join(entities([1], [at(23)]), view(src))) == [0.1]


def test_an_expired_latest_row_does_not_fall_back_to_nothing_else(tmp_path):
    # The latest row before T is outside the ttl, so every older one is too: null.
    src = stats(tmp_path, [(1, at(1), at(1), 0.1), (1, at(2), at(2), 0.2)])
    assert rates(join(entities([1], [at(5)]), view(src, ttl=timedelta(hours=2)))) == [None]


@pytest.mark.parametrize("order", [[0, 1, 2], [2, 1, 0], [1, 2, 0]])
def test_event_ties_go_to_greatest_created(tmp_path, order):
    rows = [(1, at(2), at(3), 0.3), (1, at(2), at(5), 0.5), (1, at(2), at(4), 0.4)]
    src = stats(tmp_path, [rows[i] for i in order])
    assert rates(join(entities([1], [at(2)]), view(src))) == [0.5]


def test_a_later_event_beats_a_later_created(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(9), 0.1), (1, at(2), at(2), 0.2)])
    assert rates(join(entities([1], [at(3)]), view(src))) == [0.2]


def test_null_created_loses_the_tie(tmp_path):
    src = stats(tmp_path, [(1, at(2), None, 0.9), (1, at(2), at(1), 0.1)])
    assert rates(join(entities([1], [at(2)]), view(src))) == [0.1]


def test_ties_without_created_field_are_deterministic(tmp_path):
    rows = [(1, at(2), None, 0.1), (1, at(2), None, 0.2), (1, at(1), None, 0.3)]
    answers = set()
    for i, order in enumerate(([0, 1, 2], [1, 0, 2], [2, 1, 0])):
        src = stats(tmp_path, [rows[j] for j in order], name=f"s{i}.parquet", created=False)
        for _ in range(2):
            answers.add(tuple(rates(join(entities([1], [at(3)]), view(src, created=None)))))
    assert len(answers) == 1 and answers.pop()[0] in (0.1, 0.2)


def test_unknown_keys_and_rows_before_any_event_are_null(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    assert rates(join(entities([2, 1, None], [at(5), at(0), at(5)]), view(src))) == [None, None, None]


def test_known_at_timestamp_ignores_rows_created_after_t(tmp_path):
    # A backfilled correction for 01:00 created at 05:00 must not leak into a 03:00 row.
    src = stats(tmp_path, [(1, at(1), at(1), 0.1), (1, at(1), at(5), 0.15), (1, at(2), at(4), 0.2)])
    table = entities([1, 1, 1], [at(3), at(5), at(4)])
    assert rates(join(table, view(src))) == [0.2, 0.2, 0.2]
    assert rates(join(table, view(src), known_at_timestamp=True)) == [0.1, 0.2, 0.2]
    ttl = timedelta(hours=2)
    assert rates(join(table, view(src, ttl=ttl), known_at_timestamp=True)) == [0.1, None, 0.2]


def test_known_at_timestamp_without_created_field_changes_nothing(tmp_path):
    src = stats(tmp_path, [(1, at(1), None, 0.1)], created=False)
    assert rates(join(entities([1], [at(2)]), view(src, created=None), known_at_timestamp=True)) == [0.1]


# -- the output's shape ----------------------------------------------------------------


def test_rows_keep_input_order_duplicates_and_own_columns(tmp_path):
    src = stats(tmp_path, [(i, at(1), at(1), i / 10) for i in range(1, 6)])
    naive_ns = pa.timestamp("ns")
    table = pa.table(
        {
            "label": pa.array([True, False, True, True, False]),
            "driver_id": pa.array([5, 3, 5, 1, 3], pa.int32()),
            "ts": pa.array([datetime(2024, 1, 1, 2)] * 5, naive_ns),
            "note": pa.array(["a", None, "c", "d", "e"], pa.large_string()),
        }
    )
    got = join(table, view(src))
    assert got.schema.names == ["label", "driver_id", "ts", "note", "conv_rate"]
    for name in table.schema.names:
        assert got.schema.field(name).type == table.schema.field(name).type
        assert got.column(name).to_pylist() == table.column(name).to_pylist()
    assert got.schema.field("ts").type == naive_ns  # a naive timestamp stays naive
    assert rates(got) == [0.5, 0.3, 0.5, 0.1, 0.3]


def test_feature_columns_keep_their_source_types(tmp_path):
    paris = pa.timestamp("ms", tz="Europe/Paris")
    src = write(
        tmp_path,
        "typed.parquet",
        {
            "driver_id": pa.array([1], pa.int64()),
            "event_timestamp": pa.array([at(1)], TS),
            "i32": pa.array([7], pa.int32()),
            "f32": pa.array([0.5], pa.float32()),
            "s": pa.array(["x"], pa.string()),
            "b": pa.array([True], pa.bool_()),
            "when": pa.array([at(1)], paris),
            "emb": pa.array([[1.0, 2.0]], pa.list_(pa.float32())),
        },
    )
    features = ("i32", "f32", "s", "b", "when", "emb")
    got = join(entities([1, 2], [at(2), at(2)]), view(src, features=features, created=None))
    source = pq.read_schema(src)
    for f in features:
        assert got.schema.field(f).type == source.field(f).type, f
    first = got.slice(0, 1).to_pylist()[0]
    expected = {"i32": 7, "f32": 0.5, "s": "x", "b": True, "when": at(1), "emb": [1.0, 2.0]}
    assert {f: first[f] for f in features} == expected
    assert got.slice(1, 1).to_pylist()[0]["i32"] is None


def test_output_names_rename_features(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    got = join(entities([1], [at(2)]), view(src, outputs=("driver_stats__conv_rate",)))
    assert got.schema.names[-1] == "driver_stats__conv_rate"


def test_empty_entity_table_gives_empty_typed_result(tmp_path):
    src = write(
        tmp_path,
        "s.parquet",
        {"driver_id": [1], "event_timestamp": pa.array([at(1)], TS), "f32": pa.array([1.0], pa.float32())},
    )
    table = entities([], [], extra=pa.array([], pa.string()))
    got = join(table, view(src, features=("f32",), created=None))
    assert got.num_rows == 0
    assert got.schema == pa.schema(list(table.schema) + [pa.field("f32", pa.float32())])


# -- timestamps ------------------------------------------------------------------------


def test_naive_timestamps_are_utc_and_aware_ones_are_converted(tmp_path):
    plus5 = pa.timestamp("us", tz="+05:00")
    src = write(
        tmp_path,
        "naive.parquet",
        {
            "driver_id": [1, 1],
            "event_timestamp": pa.array([datetime(2024, 1, 1, 1), datetime(2024, 1, 1, 2)], pa.timestamp("us")),
            "conv_rate": [0.1, 0.2],
        },
    )
    # 06:30+05:00 is 01:30 UTC: the 01:00 row, not the 02:00 one.
    got = join(entities([1, 1], [at(1, 30), at(2)], ts_type=plus5), view(src, created=None))
    assert rates(got) == [0.1, 0.2]
    assert got.schema.field("ts").type == plus5
    naive = join(entities([1], [datetime(2024, 1, 1, 1, 59)], ts_type=pa.timestamp("ms")), view(src, created=None))
    assert rates(naive) == [0.1]


def test_aware_non_utc_source_timestamps(tmp_path):
    tokyo = pa.timestamp("ns", tz="Asia/Tokyo")
    src = write(
        tmp_path,
        "tokyo.parquet",
        {"driver_id": [1, 1], "event_timestamp": pa.array([at(1), at(2)], tokyo), "conv_rate": [0.1, 0.2]},
    )
    assert rates(join(entities([1, 1], [at(1, 59), at(2)]), view(src, created=None))) == [0.1, 0.2]


def test_date_entity_timestamps_mean_midnight_utc(tmp_path):
    src = stats(tmp_path, [(1, datetime(2024, 1, 1, tzinfo=UTC), at(0), 0.1), (1, at(0, micro=1), at(0), 0.2)])
    got = join(entities([1], [datetime(2024, 1, 1).date()], ts_type=pa.date32()), view(src))
    assert rates(got) == [0.1]


# -- several views, keys ---------------------------------------------------------------


def test_several_views_with_different_and_composite_keys(tmp_path):
    drivers = stats(tmp_path, [(1, at(1), at(1), 0.1), (2, at(1), at(1), 0.2)])
    pairs = write(
        tmp_path,
        "pairs.parquet",
        {
            "driver_id": [1, 1, 2],
            "city": ["ams", "ber", "ams"],
            "event_timestamp": pa.array([at(1), at(1), at(3)], TS),
            "trips": [10, 11, 20],
        },
    )
    cities = write(
        tmp_path,
        "cities.parquet",
        {"city": ["ams", "ber"], "event_timestamp": pa.array([at(0), at(2)], TS), "demand": [1.5, 2.5]},
    )
    table = pa.table(
        {"driver_id": [1, 2, 2, 1], "city": ["ber", "ams", "ams", "xyz"], "ts": pa.array([at(2)] * 3 + [at(4)], TS)}
    )
    views = [
        view(drivers, name="drivers"),
        view(pairs, name="pairs", keys=("driver_id", "city"), features=("trips",), created=None),
        view(cities, name="cities", keys=("city",), features=("demand",), created=None, ttl=timedelta(hours=1)),
    ]
    got = join(table, views)
    assert got.schema.names == ["driver_id", "city", "ts", "conv_rate", "trips", "demand"]
    assert rates(got) == [0.1, 0.2, 0.2, 0.1]
    assert rates(got, "trips") == [11, None, None, None]
    assert rates(got, "demand") == [2.5, None, None, None]  # ams's 00:00 row is past the 1h ttl at 02:00
    got = join(table.set_column(2, "ts", pa.array([at(2), at(1), at(3), at(2)], TS)), views)
    assert rates(got, "trips") == [11, None, 20, None]
    assert rates(got, "demand") == [2.5, 1.5, None, None]


@pytest.mark.parametrize(
    "source_ids, entity_ids, entity_type",
    [
        ([-5, 0, 7], [-5, 7, 8, -6, 0], pa.int64()),  # keys outside the source's range
        ([1, 2**40, 3], [2**40, 1, 3, 2], pa.int64()),  # too wide to narrow to 32 bits
        ([1, 2, 3], [3, 1, 2**62, -(2**62)], pa.int64()),
        ([1, 2, 3], [3, 1, 2], pa.int16()),
        ([1, 2, 3], [3, 1, 2], pa.uint64()),
    ],
)
def test_integer_keys_of_any_range_and_width(tmp_path, source_ids, entity_ids, entity_type):
    src = stats(tmp_path, [(k, at(1), at(1), float(k)) for k in source_ids])
    got = join(entities(pa.array(entity_ids, entity_type), [at(2)] * len(entity_ids)), view(src))
    assert rates(got) == [float(k) if k in source_ids else None for k in entity_ids]


def test_string_keys(tmp_path):
    src = write(
        tmp_path, "s.parquet", {"user": ["a", "b"], "event_timestamp": pa.array([at(1)] * 2, TS), "x": [1, 2]}
    )
    table = pa.table({"user": pa.array(["b", "c", "a"], pa.large_string()), "ts": pa.array([at(2)] * 3, TS)})
    got = DuckDBEngine().point_in_time_join(
        table, "ts", [view(src, keys=("user",), features=("x",), created=None)]
    ).read_all()
    assert got.column("x").to_pylist() == [2, None, 1]


# -- where rows come from --------------------------------------------------------------


def test_union_of_files_folders_globs_and_csv(tmp_path):
    stats(tmp_path / "batch", [(1, at(1), at(1), 0.1)], name="a.parquet")
    stats(tmp_path / "batch" / "day=2", [(1, at(2), at(2), 0.2)], name="b.parquet")
    pushed = stats(tmp_path / "push", [(1, at(3), at(3), 0.3), (2, at(1), at(1), 0.0)], name="p1.parquet")
    csv = tmp_path / "late.csv"
    csv.write_text("driver_id,event_timestamp,created,conv_rate\n2,2024-01-01 04:00:00,2024-01-01 04:00:00,0.4\n")
    files = (str(tmp_path / "batch"), str(tmp_path / "push" / "*.parquet"), str(csv))
    table = entities([1, 1, 1, 2, 2], [at(1, 30), at(2, 30), at(4), at(3), at(4)])
    assert rates(join(table, view(files))) == [0.1, 0.2, 0.3, 0.0, 0.4]
    assert pushed.endswith("p1.parquet")


def test_a_column_missing_from_some_files_is_null_there(tmp_path):
    a = write(tmp_path, "a.parquet", {"driver_id": [1], "event_timestamp": pa.array([at(1)], TS), "x": [1]})
    b = write(tmp_path, "b.parquet", {"driver_id": [2], "event_timestamp": pa.array([at(1)], TS), "y": [2.0]})
    got = join(entities([1, 2], [at(2), at(2)]), view((a, b), features=("x", "y"), created=None))
    assert got.column("x").to_pylist() == [1, None] and got.column("y").to_pylist() == [None, 2.0]


def test_read_schema_is_the_union_of_the_files(tmp_path):
    write(tmp_path / "d", "a.parquet", {"k": pa.array([1], pa.int32()), "x": [1.0]})
    write(tmp_path / "d", "b.parquet", {"k": pa.array([1], pa.int64()), "y": ["s"]})
    schema = DuckDBEngine().read_schema(SourceTable((str(tmp_path / "d"),), "ts"))
    assert schema == pa.schema([("k", pa.int64()), ("x", pa.float64()), ("y", pa.string())])


def test_read_schema_of_csv(tmp_path):
    path = tmp_path / "rows.csv"
    pacsv.write_csv(pa.table({"k": [1], "name": ["x"], "t": pa.array([at(1)], TS)}), path)
    schema = DuckDBEngine().read_schema(SourceTable((str(path),), "t"))
    assert schema.names == ["k", "name", "t"] and pa.types.is_integer(schema.field("k").type)
    assert pa.types.is_timestamp(schema.field("t").type)


def test_read_schema_conflicting_types_name_column_and_files(tmp_path):
    a = write(tmp_path, "a.parquet", {"k": [1]})
    b = write(tmp_path, "b.parquet", {"k": ["one"]})
    with pytest.raises(SchemaError, match=r"'k'.*int64.*a\.parquet.*string.*b\.parquet"):
        DuckDBEngine().read_schema(SourceTable((a, b), "ts"))


# -- errors ----------------------------------------------------------------------------


def test_entity_table_without_timestamp_column(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    with pytest.raises(InputError, match=r"'ts'.*\['driver_id', 'when'\]"):
        join(pa.table({"driver_id": [1], "when": pa.array([at(1)], TS)}), view(src))


def test_entity_timestamp_of_wrong_type(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    with pytest.raises(InputError, match=r"'ts' is string"):
        join(pa.table({"driver_id": [1], "ts": ["2024-01-01"]}), view(src))


def test_missing_join_key_names_view_and_key(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    with pytest.raises(InputError, match=r"'driver_stats'.*'driver_id'"):
        join(pa.table({"driver": [1], "ts": pa.array([at(1)], TS)}), view(src))


def test_join_key_of_wrong_type_names_column_and_both_types(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    with pytest.raises(SchemaError, match=r"'driver_id'.*string.*int64"):
        join(entities(["1"], [at(2)]), view(src))


def test_missing_source_file_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.parquet")
    with pytest.raises(InputError, match="nope.parquet"):
        join(entities([1], [at(2)]), view(missing))
    with pytest.raises(InputError, match="matches no files"):
        join(entities([1], [at(2)]), view(str(tmp_path / "*.parquet")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty"):
        DuckDBEngine().read_schema(SourceTable((str(tmp_path / "empty"),), "ts"))


def test_missing_feature_column_names_column_and_file(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    with pytest.raises(SchemaError, match=r"'acc_rate'.*stats\.parquet"):
        join(entities([1], [at(2)]), view(src, features=("acc_rate",)))


@pytest.mark.parametrize("column", ["event_timestamp", "created", "driver_id"])
def test_source_missing_a_required_column(tmp_path, column):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    table = pq.read_table(src).drop_columns([column])
    pq.write_table(table, src)
    with pytest.raises(SchemaError, match=f"'{column}'.*stats.parquet"):
        join(entities([1], [at(2)]), view(src))


def test_source_timestamp_of_wrong_type(tmp_path):
    src = write(tmp_path, "s.parquet", {"driver_id": [1], "event_timestamp": ["x"], "conv_rate": [1.0]})
    with pytest.raises(SchemaError, match=r"'event_timestamp' is string"):
        join(entities([1], [at(2)]), view(src, created=None))


def test_output_name_clashing_with_an_entity_column(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    with pytest.raises(InputError, match="'conv_rate'"):
        join(entities([1], [at(2)], conv_rate=[1.0]), view(src))


def test_unreadable_parquet_file(tmp_path):
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match="bad.parquet"):
        join(entities([1], [at(2)]), view(str(bad)))


def test_user_errors_are_feature_store_errors():
    assert issubclass(InputError, FeatureStoreError) and issubclass(SchemaError, FeatureStoreError)


# -- latest rows -----------------------------------------------------------------------


def test_latest_rows_per_key_within_inclusive_bounds(tmp_path):
    src = stats(
        tmp_path,
        [
            (1, at(1), at(1), 0.1),
            (1, at(3), at(3), 0.3),
            (1, at(3), at(4), 0.35),  # same event, created later: wins
            (1, at(5), at(5), 0.5),  # after end
            (2, at(0), at(0), 0.0),  # before start
            (3, at(2), at(2), 0.2),  # exactly at start
            (4, at(4), at(4), 0.4),  # exactly at end
        ],
    )
    got = DuckDBEngine().latest_rows(view(src), at(2), at(4)).read_all().sort_by("driver_id")
    assert got.schema == pa.schema(
        [("driver_id", pa.int64()), ("conv_rate", pa.float64()), ("event_timestamp", TS)]
    )
    assert got.to_pylist() == [
        {"driver_id": 1, "conv_rate": 0.35, "event_timestamp": at(3)},
        {"driver_id": 3, "conv_rate": 0.2, "event_timestamp": at(2)},
        {"driver_id": 4, "conv_rate": 0.4, "event_timestamp": at(4)},
    ]
    unbounded = DuckDBEngine().latest_rows(view(src), None, at(4)).read_all()
    assert sorted(unbounded.column("driver_id").to_pylist()) == [1, 2, 3, 4]


def test_latest_rows_streams_batches_with_naive_bounds(tmp_path):
    src = write(
        tmp_path,
        "n.parquet",
        {
            "driver_id": pa.array(range(1000), pa.int32()),
            "event_timestamp": pa.array([datetime(2024, 1, 1, 1)] * 1000, pa.timestamp("ns")),
            "conv_rate": pa.array([1.0] * 1000, pa.float32()),
        },
    )
    reader = DuckDBEngine().latest_rows(view(src, created=None), None, datetime(2024, 1, 1, 1), batch_rows=100)
    batches = list(reader)
    assert len(batches) > 1 and sum(b.num_rows for b in batches) == 1000
    assert reader.schema.field("conv_rate").type == pa.float32()
    assert reader.schema.field("event_timestamp").type == TS


def test_latest_rows_errors_like_the_join(tmp_path):
    with pytest.raises(InputError, match="nope"):
        DuckDBEngine().latest_rows(view(str(tmp_path / "nope.parquet")), None, at(1))


# -- query -----------------------------------------------------------------------------


def test_query_resolves_paths_against_root(tmp_path):
    write(tmp_path, "sets/x.parquet", {"a": [1, 2, 3]})
    got = DuckDBEngine(str(tmp_path)).query("SELECT sum(a) AS s FROM 'sets/x.parquet'")
    assert got.to_pylist() == [{"s": 6}]


def test_query_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="query failed"):
        DuckDBEngine(str(tmp_path)).query("SELEC 1")
    with pytest.raises(InputError, match="missing.parquet"):
        DuckDBEngine(str(tmp_path)).query("SELECT * FROM 'missing.parquet'")


# -- atomic writes ---------------------------------------------------------------------


def test_write_parquet_atomic_replaces_whole_files_and_leaves_no_temp(tmp_path):
    target = tmp_path / "deep" / "x.parquet"
    write_parquet_atomic(pa.table({"a": [1]}), target)
    write_parquet_atomic(pa.table({"a": [2, 3]}), target)
    assert pq.read_table(target).column("a").to_pylist() == [2, 3]
    assert os.listdir(target.parent) == ["x.parquet"]
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600


def test_write_parquet_atomic_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "x.parquet"
    write_parquet_atomic(pa.table({"a": [1]}), target)
    with pytest.raises(Exception):
        write_parquet_atomic(pa.table({"a": [2]}), target, compression="no-such-codec")
    assert pq.read_table(target).column("a").to_pylist() == [1]
    assert os.listdir(tmp_path) == ["x.parquet"]


# -- edges -----------------------------------------------------------------------------


def test_a_view_without_join_keys_joins_on_time_alone(tmp_path):
    src = write(tmp_path, "g.parquet", {"event_timestamp": pa.array([at(1), at(3)], TS), "temp": [1.5, 3.5]})
    weather = view(src, name="weather", keys=(), features=("temp",), created=None)
    assert rates(join(entities([1, 2, 3], [at(2), at(0), at(3)]), weather), "temp") == [1.5, None, 3.5]
    latest = DuckDBEngine().latest_rows(weather, None, at(2)).read_all()
    assert latest.to_pylist() == [{"temp": 1.5, "event_timestamp": at(1)}]
    assert DuckDBEngine().latest_rows(weather, None, at(0)).read_all().num_rows == 0


def test_zero_ttl_means_no_lower_bound(tmp_path):
    src = stats(tmp_path, [(1, at(1), at(1), 0.1)])
    assert rates(join(entities([1], [at(9)]), view(src, ttl=timedelta(0)))) == [0.1]


def test_views_with_aggregations_are_computed_over_the_window(tmp_path):
    # The rules are pinned in tests/streaming/test_aggregate_sql.py; this is the engine's seam.
    from featurestore.definitions import Aggregation

    src = stats(tmp_path, [(1, at(1), at(1), 0.1), (1, at(1, 30), at(1, 30), 0.2)])
    request = view(src)
    request = ViewRequest(
        request.name, request.source, request.join_keys, ("conv_rate_sum_1h",), ("conv_rate_sum_1h",),
        aggregations=(Aggregation("conv_rate", "sum", timedelta(hours=1)),),
    )
    assert rates(join(entities([1, 1], [at(2), at(3)]), request), "conv_rate_sum_1h") == [0.2, None]
