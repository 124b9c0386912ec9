"""The OnlineStore contract, run against every backend: real SQLite, a real Redis and a
real Redis Cluster."""

from __future__ import annotations

import math
import socket
from datetime import UTC, datetime

import hypothesis.strategies as st
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings

from featurestore.errors import InputError, NotFoundError, SchemaError, StoreUnavailableError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.online.redis import RedisOnlineStore
from featurestore.online.sqlite import SqliteOnlineStore
from featurestore.types import Array, Bool, Bytes, Float32, Float64, Int32, Int64, String, UnixTimestamp

T0 = 1_700_000_000_000_000  # microseconds
DRIVER = OnlineView("driver_stats", ("driver_id",), ("conv_rate", "trips", "city"), (Float64, Int64, String))


@pytest.fixture(params=["sqlite", "redis", "redis-cluster"])
def make_store(request, tmp_path):
    """``make_store(project="a", **options)``: a store of this test's backend; equal projects
    share data, and no test sees another's."""
    stores = []

    def make(project: str = "a", **options):
        if request.param == "sqlite":
            store = SqliteOnlineStore(tmp_path / "online.db", project, **options)
        else:
            base = request.getfixturevalue("redis_project")
            url = request.getfixturevalue("redis_cluster_url" if request.param == "redis-cluster" else "redis_url")
            store = RedisOnlineStore(url, f"{base}-{project}", **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store):
    return make_store()


def table(view: OnlineView, rows: list[dict]) -> pa.Table:
    """Rows as a write batch: join keys typed from the values, features from the view."""
    columns = {}
    for key in view.join_keys:
        columns[key] = pa.array([r[key] for r in rows])
    for name, dtype in zip(view.features, view.dtypes):
        columns[name] = pa.array([r.get(name) for r in rows], dtype.to_arrow())
    columns[EVENT_TIMESTAMP] = pa.array([r["ts"] for r in rows], pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def write(store, view: OnlineView, *rows: dict) -> int:
    return store.write_batch(view, table(view, list(rows)))


def read_one(store, view, keys, features=None):
    return store.read([(view, features or view.features, keys)])[0]


def test_write_then_read_returns_values_and_event_time(store):
    rows = [{"driver_id": 1, "conv_rate": 0.5, "trips": 10, "city": "Oslo", "ts": T0},
            {"driver_id": 2, "conv_rate": 0.25, "trips": 3, "city": "Lima", "ts": T0 + 1}]
    assert store.write_batch(DRIVER, table(DRIVER, rows)) == 2
    assert read_one(store, DRIVER, [(2,), (1,)]) == [(T0 + 1, (0.25, 3, "Lima")), (T0, (0.5, 10, "Oslo"))]


def test_every_type_round_trips_including_nulls_and_empties(store):
    dtypes = (Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp,
              Array(Float32), Array(Int64), Array(String), Array(Bytes), Array(Bool), Array(UnixTimestamp))
    view = OnlineView("all_types", ("id",), tuple(f"f{i}" for i in range(len(dtypes))), dtypes)
    when = datetime(2024, 2, 29, 12, 30, 1, 123456, tzinfo=UTC)
    full = [-(2**31), 2**63 - 1, 1.5, -0.0, "héllo ✓", b"\x00\xff", True, when,
            [1.0, None, -2.5], [0, -1, 2**62], ["", None, "x"], [b"", b"\x01"], [True, False, None], [when, None]]
    empty = [0, 0, 0.0, 0.0, "", b"", False, datetime(1970, 1, 1, tzinfo=UTC), [], [], [], [], [], []]
    nulls = [None] * len(dtypes)
    rows = [{"id": i, "ts": T0, **{f"f{j}": v for j, v in enumerate(values)}}
            for i, values in enumerate([full, empty, nulls])]
    store.write_batch(view, table(view, rows))
    got = read_one(store, view, [(0,), (1,), (2,)])
    assert got == [(T0, tuple(full)), (T0, tuple(empty)), (T0, tuple(nulls))]


def test_nan_and_infinities_round_trip(store):
    view = OnlineView("floats", ("id",), ("f32", "f64", "arr"), (Float32, Float64, Array(Float64)))
    rows = [{"id": 1, "f32": math.nan, "f64": -math.inf, "arr": [math.nan, math.inf], "ts": T0}]
    store.write_batch(view, table(view, rows))
    [(_, (f32, f64, arr))] = read_one(store, view, [(1,)])
    assert math.isnan(f32) and f64 == -math.inf and math.isnan(arr[0]) and arr[1] == math.inf


def test_older_write_does_not_replace_newer(store):
    write(store, DRIVER, {"driver_id": 1, "conv_rate": 0.9, "trips": 9, "city": "new", "ts": T0 + 10})
    write(store, DRIVER, {"driver_id": 1, "conv_rate": 0.1, "trips": 1, "city": "old", "ts": T0})
    assert read_one(store, DRIVER, [(1,)]) == [(T0 + 10, (0.9, 9, "new"))]


def test_equal_timestamp_replaces(store):
    write(store, DRIVER, {"driver_id": 1, "conv_rate": 0.1, "trips": 1, "city": "first", "ts": T0})
    write(store, DRIVER, {"driver_id": 1, "conv_rate": 0.2, "trips": 2, "city": "second", "ts": T0})
    assert read_one(store, DRIVER, [(1,)]) == [(T0, (0.2, 2, "second"))]


def test_within_one_batch_the_newest_row_wins_and_the_last_of_equals(store):
    rows = [{"driver_id": 1, "trips": 3, "ts": T0 + 3}, {"driver_id": 1, "trips": 1, "ts": T0 + 1},
            {"driver_id": 2, "trips": 20, "ts": T0}, {"driver_id": 2, "trips": 21, "ts": T0}]
    store.write_batch(DRIVER, table(DRIVER, rows))
    assert read_one(store, DRIVER, [(1,), (2,)], ("trips",)) == [(T0 + 3, (3,)), (T0, (21,))]


def test_a_newer_null_clears_the_stored_value(store):
    write(store, DRIVER, {"driver_id": 1, "conv_rate": 0.5, "trips": 5, "city": "x", "ts": T0})
    write(store, DRIVER, {"driver_id": 1, "conv_rate": None, "trips": 6, "city": None, "ts": T0 + 1})
    assert read_one(store, DRIVER, [(1,)]) == [(T0 + 1, (None, 6, None))]


def test_replaying_a_batch_changes_nothing(store):
    rows = [{"driver_id": i, "conv_rate": i / 10, "trips": i, "city": f"c{i}", "ts": T0 + i} for i in range(50)]
    store.write_batch(DRIVER, table(DRIVER, rows))
    first = read_one(store, DRIVER, [(i,) for i in range(50)])
    store.write_batch(DRIVER, table(DRIVER, rows))
    store.write_batch(DRIVER, table(DRIVER, rows[10:20]))
    assert read_one(store, DRIVER, [(i,) for i in range(50)]) == first


def test_batches_larger_than_the_write_chunk(make_store):
    store = make_store(batch_size=7)
    rows = [{"driver_id": i, "conv_rate": 1.0, "trips": i, "city": "c", "ts": T0} for i in range(100)]
    assert store.write_batch(DRIVER, table(DRIVER, rows)) == 100
    assert [r[1][1] for r in read_one(store, DRIVER, [(i,) for i in range(100)])] == list(range(100))


def test_unknown_and_null_keys_read_as_none(store):
    write(store, DRIVER, {"driver_id": 1, "trips": 1, "ts": T0})
    assert read_one(store, DRIVER, [(404,), (None,), (1,), ("1",)]) == [None, None, (T0, (None, 1, None)), None]


def test_duplicate_keys_keep_their_positions(store):
    write(store, DRIVER, {"driver_id": 1, "trips": 1, "ts": T0}, {"driver_id": 2, "trips": 2, "ts": T0})
    got = read_one(store, DRIVER, [(2,), (1,), (2,), (3,)], ("trips",))
    assert got == [(T0, (2,)), (T0, (1,)), (T0, (2,)), None]


def test_read_names_a_subset_of_features_in_any_order(store):
    write(store, DRIVER, {"driver_id": 1, "conv_rate": 0.5, "trips": 5, "city": "x", "ts": T0})
    assert read_one(store, DRIVER, [(1,)], ("city", "conv_rate")) == [(T0, ("x", 0.5))]
    assert read_one(store, DRIVER, [(1,)], ["trips"]) == [(T0, (5,))]


def test_unknown_feature_is_named_with_close_matches(store):
    with pytest.raises(NotFoundError, match="'trip'.*'trips'"):
        read_one(store, DRIVER, [(1,)], ("trip",))


def test_several_views_with_different_join_keys_in_one_read(store):
    customer = OnlineView("customer_profile", ("customer_id",), ("age",), (Int32,))
    pair = OnlineView("driver_customer", ("driver_id", "customer_id"), ("rides",), (Int64,))
    write(store, DRIVER, {"driver_id": 1, "trips": 10, "ts": T0})
    store.write_batch(customer, table(customer, [{"customer_id": 1, "age": 33, "ts": T0 + 1}]))
    store.write_batch(customer, table(customer, [{"customer_id": "c-9", "age": 40, "ts": T0 + 2}]))
    store.write_batch(pair, table(pair, [{"driver_id": 1, "customer_id": 1, "rides": 4, "ts": T0 + 3}]))
    got = store.read([
        (DRIVER, ("trips",), [(1,), (2,)]),
        (customer, ("age",), [(1,), ("c-9",)]),
        (pair, ("rides",), [(1, 1), (1, 2)]),
        (DRIVER, ("city",), []),
    ])
    assert got == [[(T0, (10,)), None], [(T0 + 1, (33,)), (T0 + 2, (40,))], [(T0 + 3, (4,)), None], []]
    assert store.read([]) == []


def test_composite_keys_do_not_collide_with_lookalike_strings(store):
    pair = OnlineView("pair", ("a", "b"), ("v",), (String,))
    single = OnlineView("pair", ("a",), ("v",), (String,))
    store.write_batch(pair, pa.table({"a": [1, 12], "b": [2, 3], "v": ["(1,2)", "(12,3)"],
                                      EVENT_TIMESTAMP: pa.array([T0, T0], pa.timestamp("us", tz="UTC"))}))
    store.write_batch(single, pa.table({"a": ["1|2", "1", "12"], "v": ["str", "one", "twelve"],
                                        EVENT_TIMESTAMP: pa.array([T0] * 3, pa.timestamp("us", tz="UTC"))}))
    got = read_one(store, pair, [(1, 2), (12, 3), (1, 23), (2, 1)])
    assert got == [(T0, ("(1,2)",)), (T0, ("(12,3)",)), None, None]
    got = read_one(store, single, [("1|2",), ("1",), (1,), ("12",)])
    assert got == [(T0, ("str",)), (T0, ("one",)), None, (T0, ("twelve",))]


def test_join_key_column_width_does_not_matter(store):
    store.write_batch(DRIVER, pa.table({"driver_id": pa.array([7], pa.int32()), "conv_rate": [0.5], "trips": [1],
                                        "city": ["x"], EVENT_TIMESTAMP: pa.array([T0], pa.timestamp("us", tz="UTC"))}))
    assert read_one(store, DRIVER, [(7,)], ("trips",)) == [(T0, (1,))]


def test_projects_are_isolated(make_store):
    a, b = make_store("a"), make_store("b")
    a.write_batch(DRIVER, table(DRIVER, [{"driver_id": 1, "trips": 1, "ts": T0}]))
    b.write_batch(DRIVER, table(DRIVER, [{"driver_id": 1, "trips": 2, "ts": T0 - 5}]))
    assert read_one(a, DRIVER, [(1,)], ("trips",)) == [(T0, (1,))]
    assert read_one(b, DRIVER, [(1,)], ("trips",)) == [(T0 - 5, (2,))]
    b.delete_view(DRIVER)
    assert read_one(a, DRIVER, [(1,)], ("trips",)) == [(T0, (1,))]
    assert read_one(b, DRIVER, [(1,)], ("trips",)) == [None]


def test_delete_view_removes_only_that_view(store):
    other = OnlineView("driver_quality", ("driver_id",), ("rating",), (Float32,))
    rows = [{"driver_id": i, "trips": i, "rating": 4.5, "ts": T0} for i in range(30)]
    store.write_batch(DRIVER, table(DRIVER, rows))
    store.write_batch(other, table(other, rows))
    store.delete_view(DRIVER)
    assert read_one(store, DRIVER, [(i,) for i in range(30)]) == [None] * 30
    assert read_one(store, other, [(i,) for i in range(30)]) == [(T0, (4.5,))] * 30
    store.delete_view(DRIVER)  # deleting again is harmless
    write(store, DRIVER, {"driver_id": 1, "trips": 1, "ts": T0 - 100})
    assert read_one(store, DRIVER, [(1,)], ("trips",)) == [(T0 - 100, (1,))]  # no stale event time left


def test_a_feature_added_to_a_view_reads_as_null_for_old_rows(store):
    write(store, DRIVER, {"driver_id": 1, "trips": 1, "ts": T0})
    grown = OnlineView(DRIVER.name, DRIVER.join_keys, (*DRIVER.features, "rating"), (*DRIVER.dtypes, Float64))
    assert read_one(store, grown, [(1,)], ("trips", "rating")) == [(T0, (1, None))]


def test_rows_with_a_null_join_key_are_skipped(store):
    rows = [{"driver_id": None, "trips": 1, "ts": T0}, {"driver_id": 2, "trips": 2, "ts": T0}]
    assert store.write_batch(DRIVER, table(DRIVER, rows)) == 2
    assert read_one(store, DRIVER, [(2,)], ("trips",)) == [(T0, (2,))]


def test_a_bad_batch_writes_nothing(store):
    write(store, DRIVER, {"driver_id": 1, "trips": 1, "ts": T0})
    good = table(DRIVER, [{"driver_id": 1, "trips": 99, "ts": T0 + 1}])
    with pytest.raises(SchemaError, match="'city'"):
        store.write_batch(DRIVER, good.drop_columns(["city"]))
    with pytest.raises(SchemaError, match="'trips'.*string.*Int64"):
        store.write_batch(DRIVER, good.set_column(2, "trips", pa.array(["x"])))
    with pytest.raises(InputError, match="null"):
        store.write_batch(DRIVER, good.set_column(4, EVENT_TIMESTAMP, pa.array([None], pa.timestamp("us", tz="UTC"))))
    assert read_one(store, DRIVER, [(1,)], ("trips",)) == [(T0, (1,))]


def test_a_bad_value_late_in_a_large_batch_writes_nothing(make_store):
    store = make_store(batch_size=7)
    view = OnlineView("narrow", ("id",), ("small",), (Int32,))
    values = pa.array([*range(20), 2**40])  # the last one does not fit an Int32
    stamps = pa.array([T0] * 21, pa.timestamp("us", tz="UTC"))
    bad = pa.table({"id": range(21), "small": values, EVENT_TIMESTAMP: stamps})
    with pytest.raises(SchemaError, match="'small'.*Int32"):
        store.write_batch(view, bad)
    assert read_one(store, view, [(0,), (20,)]) == [None, None]


def test_empty_batch(store):
    assert store.write_batch(DRIVER, table(DRIVER, [])) == 0


def test_health_answers_on_a_reachable_store_and_names_an_unreachable_one(store, tmp_path):
    assert store.health() is None  # a fresh store, nothing written yet
    write(store, DRIVER, {"driver_id": 1, "conv_rate": 0.5, "trips": 10, "city": "Oslo", "ts": T0})
    assert store.health() is None
    assert read_one(store, DRIVER, [(1,)]) == [(T0, (0.5, 10, "Oslo"))]  # a ping changes nothing
    if isinstance(store, SqliteOnlineStore):
        garbage = tmp_path / "garbage.db"
        garbage.write_bytes(b"this is not a database" * 100)
        broken, where = SqliteOnlineStore(garbage, "p"), "garbage.db"
    else:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            where = f"127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once it closes
        broken = RedisOnlineStore(f"redis://{where}/0", "p", retries=0)
    with pytest.raises(StoreUnavailableError, match=where):
        broken.health()
    broken.close()


# A model of the contract: per entity, the row with the greatest event time; the last of
# equal ones. Any sequence of batches must leave every backend in the model's state.
_rows = st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3), st.none() | st.integers(-5, 5)), max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(_rows, max_size=4))
def test_any_sequence_of_batches_keeps_the_newest_row(store, batches):
    view = OnlineView("model", ("driver_id",), ("trips",), (Int64,))
    store.delete_view(view)  # each example starts from nothing
    expected: dict[int, tuple] = {}
    for batch in batches:
        rows = [{"driver_id": k, "trips": v, "ts": T0 + t} for k, t, v in batch]
        store.write_batch(view, table(view, rows))
        for k, t, v in batch:
            if k not in expected or expected[k][0] <= T0 + t:
                expected[k] = (T0 + t, (v,))
    assert read_one(store, view, [(k,) for k in range(6)]) == [expected.get(k) for k in range(6)]


def test_values_stored_under_another_type_are_reported_not_misread(store):
    narrow = OnlineView("changed", ("id",), ("x",), (Int32,))
    store.write_batch(narrow, table(narrow, [{"id": 1, "x": 5, "ts": T0}]))
    wide = OnlineView("changed", ("id",), ("x",), (Int64,))
    with pytest.raises(SchemaError, match="'changed'.*[Mm]aterialize"):
        read_one(store, wide, [(1,)])
