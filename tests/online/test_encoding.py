"""Value, record and entity key encodings: exact layouts (as documented) and round trips."""

from __future__ import annotations

import math
import struct
from datetime import UTC, datetime, timedelta

import hypothesis.strategies as st
import pyarrow as pa
import pytest
from hypothesis import given, settings

from featurestore.errors import InputError, SchemaError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.online.batches import encode_batch
from featurestore.online.entity_keys import encode_entity_keys, entity_key_encoder
from featurestore.online.records import decode_record, encode_record
from featurestore.online.values import decode_values, encode_column, value_decoder, value_encoder
from featurestore.types import Array, Bool, Bytes, FeatureType, Float32, Float64, Int32, Int64, String, UnixTimestamp

SCALARS = (Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp)


@pytest.mark.parametrize(
    ("dtype", "value", "encoded"),
    [
        (Int32, -2, b"\xfe\xff\xff\xff"),
        (Int64, 1, b"\x01" + b"\x00" * 7),
        (Float32, 1.0, struct.pack("<f", 1.0)),
        (Float64, -0.5, struct.pack("<d", -0.5)),
        (String, "é", b"\xc3\xa9"),
        (String, "", b""),
        (Bytes, b"\x00", b"\x00"),
        (Bool, True, b"\x01"),
        (Bool, False, b"\x00"),
        (UnixTimestamp, datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), struct.pack("<q", 1_000_000)),
        (Array(Int32), [1, 2], b"\x02\x00\x00\x00\x00" + struct.pack("<2i", 1, 2)),
        (Array(Int32), [], b"\x00\x00\x00\x00\x00"),
        (Array(Int32), [None, 7], b"\x02\x00\x00\x00\x01\x02" + struct.pack("<2i", 0, 7)),
        (Array(String), ["ab", ""], b"\x02\x00\x00\x00\x00" + struct.pack("<2I", 2, 0) + b"ab"),
    ],
)
def test_value_layout_is_as_documented(dtype, value, encoded):
    assert value_encoder(dtype)(value) == encoded
    assert value_decoder(dtype)(encoded) == value
    assert encode_column(pa.array([value], dtype.to_arrow()), dtype) == [encoded]


def test_null_is_absent_and_distinct_from_empty_values():
    for dtype, empty in [(String, ""), (Bytes, b""), (Array(Float32), [])]:
        assert encode_column(pa.array([empty, None], dtype.to_arrow()), dtype) == [value_encoder(dtype)(empty), None]
        assert decode_values(dtype, [value_encoder(dtype)(empty), None]) == [empty, None]


def test_naive_datetimes_and_microsecond_ints_are_utc():
    encode = value_encoder(UnixTimestamp)
    assert encode(datetime(2024, 1, 1)) == encode(datetime(2024, 1, 1, tzinfo=UTC))
    plus_two = datetime(2024, 1, 1, 2, tzinfo=UTC).astimezone(__import__("datetime").timezone(timedelta(hours=2)))
    assert encode(plus_two) == encode(datetime(2024, 1, 1, 2, tzinfo=UTC))
    assert encode(1_000_000) == encode(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC))


def _values(dtype: FeatureType) -> st.SearchStrategy:
    name = dtype.item.name if dtype.item is not None else dtype.name
    base = {
        "Int32": st.integers(-(2**31), 2**31 - 1),
        "Int64": st.integers(-(2**63), 2**63 - 1),
        "Float32": st.floats(width=32, allow_nan=False),
        "Float64": st.floats(allow_nan=False),
        "String": st.text(),
        "Bytes": st.binary(),
        "Bool": st.booleans(),
        "UnixTimestamp": st.datetimes(datetime(1900, 1, 1), datetime(2200, 1, 1), timezones=st.just(UTC)),
    }[name]
    if dtype.item is not None:
        return st.lists(st.none() | base, max_size=8)
    return base


ALL_TYPES = (*SCALARS, *(Array(t) for t in SCALARS))


@pytest.mark.parametrize("dtype", ALL_TYPES, ids=str)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_column_and_value_encoders_agree_and_round_trip(dtype, data):
    values = data.draw(st.lists(st.none() | _values(dtype), max_size=10))
    arr = pa.array(values, dtype.to_arrow())
    one_by_one = [value_encoder(dtype)(v) if v is not None else None for v in values]
    assert encode_column(arr, dtype) == one_by_one
    assert decode_values(dtype, one_by_one) == values
    if len(values) > 2:  # a slice, and several chunks, encode the same rows the same way
        assert encode_column(arr.slice(1), dtype) == one_by_one[1:]
        chunked = pa.chunked_array([arr.slice(0, 2), arr.slice(2)])
        assert encode_column(chunked, dtype) == one_by_one


def test_nan_round_trips():
    for dtype in (Float32, Float64):
        assert math.isnan(decode_values(dtype, encode_column(pa.array([math.nan], dtype.to_arrow()), dtype))[0])


def test_narrower_columns_encode_as_the_declared_type():
    assert encode_column(pa.array([1], pa.int32()), Int64) == [value_encoder(Int64)(1)]
    assert encode_column(pa.array([1.5], pa.float32()), Float64) == [value_encoder(Float64)(1.5)]
    assert encode_column(pa.array(["x"], pa.large_string()), String) == [b"x"]
    nanos = pa.array([1_000_001_999], pa.timestamp("ns"))  # sub-microsecond digits are dropped
    assert encode_column(nanos, UnixTimestamp) == [struct.pack("<q", 1_000_001)]
    large = pa.array([[1, 2]], pa.large_list(pa.int32()))
    assert encode_column(large, Array(Int64)) == [value_encoder(Array(Int64))([1, 2])]


def test_record_round_trip_and_layout():
    blob = encode_record([b"a", b"bc"], [b"xyz", None])
    assert blob == struct.pack("<H2H2I", 2, 1, 2, 3, 0xFFFFFFFF) + b"abcxyz"
    assert decode_record(blob) == {"a": b"xyz", "bc": None}
    assert decode_record(encode_record([], [])) == {}
    assert decode_record(encode_record([b"e"], [b""])) == {"e": b""}


def test_entity_key_layout():
    assert entity_key_encoder(("id",))((5,)) == b"\x01\x02idi" + struct.pack("<q", 5)
    assert entity_key_encoder(("id",))(("ab",)) == b"\x01\x02ids" + struct.pack("<I", 2) + b"ab"
    # Pairs are sorted by join key name, so the order the view lists them in does not matter.
    assert entity_key_encoder(("b", "a"))((1, "x")) == entity_key_encoder(("a", "b"))(("x", 1))
    assert entity_key_encoder(("b", "a"))((1, "x")) == (
        b"\x02" + b"\x01as" + struct.pack("<I", 1) + b"x" + b"\x01bi" + struct.pack("<q", 1)
    )


def test_entity_keys_are_typed_and_unambiguous():
    one, two = entity_key_encoder(("k",)), entity_key_encoder(("k", "l"))
    distinct = [one((1,)), one(("1",)), one((b"1",)), one(("1|2",)), two((1, 2)), two(("1", "2")), two(("1|", "2")),
                entity_key_encoder(("j",))((1,))]
    assert len(set(distinct)) == len(distinct)
    assert one((True,)) == one((1,)) and one((3.0,)) == one((3,))  # integral values are integers
    assert one((None,)) is None and two((1, None)) is None


def test_bad_entity_key_values():
    with pytest.raises(InputError, match="64-bit"):
        entity_key_encoder(("k",))((2**63,))
    with pytest.raises(InputError, match="float"):
        entity_key_encoder(("k",))((1.5,))
    with pytest.raises(InputError, match="needs 2 values"):
        entity_key_encoder(("k", "l"))((1,))
    with pytest.raises(InputError, match="needs 1 value"):
        entity_key_encoder(("k",))((1, 2))


_key_values = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=6), st.binary(max_size=6))


@settings(max_examples=200, deadline=None)
@given(a=st.lists(_key_values, min_size=1, max_size=3), b=st.lists(_key_values, min_size=1, max_size=3))
def test_entity_key_encoding_is_injective(a, b):
    def key(values):
        return entity_key_encoder(tuple(f"k{i}" for i in range(len(values))))(tuple(values))

    same = len(a) == len(b) and all(type(x) is type(y) and x == y for x, y in zip(a, b))
    assert (key(a) == key(b)) == same


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.none() | st.integers(-(2**63), 2**63 - 1), st.none() | st.text(max_size=5))))
def test_vectorized_entity_keys_match_one_by_one(rows):
    names = ("z_id", "a_name")
    columns = [pa.array([r[0] for r in rows], pa.int64()), pa.array([r[1] for r in rows], pa.string())]
    assert encode_entity_keys(names, columns) == [entity_key_encoder(names)(r) for r in rows]


def test_vectorized_entity_keys_accept_any_integer_width_and_binary():
    encode = entity_key_encoder(("k",))
    assert encode_entity_keys(("k",), [pa.array([1, None], pa.uint16())]) == [encode((1,)), None]
    assert encode_entity_keys(("k",), [pa.array([b"\x00"], pa.binary())]) == [encode((b"\x00",))]
    assert encode_entity_keys(("k",), [pa.array(["x"]).dictionary_encode()]) == [encode(("x",))]
    with pytest.raises(TypeError):
        encode_entity_keys(("k",), [pa.array([datetime(2024, 1, 1)])])


def test_encode_batch_skips_null_keys_and_checks_the_schema():
    view = OnlineView("v", ("id",), ("x",), (Int64,))
    ts = pa.array([1, 2], pa.timestamp("us", tz="UTC"))
    [batch] = encode_batch(view, pa.table({"id": [None, 7], "x": [1, 2], EVENT_TIMESTAMP: ts}))
    assert batch.entity_keys == [entity_key_encoder(("id",))((7,))]
    assert batch.event_ts == [2] and batch.values == [[value_encoder(Int64)(2)]]
    ids = pa.array(range(25))
    many = pa.table({"id": ids, "x": ids, EVENT_TIMESTAMP: ids.cast(pa.timestamp("us"))})
    parts = list(encode_batch(view, many, rows=10))
    assert [len(p.entity_keys) for p in parts] == [10, 10, 5] and parts[2].event_ts == [20, 21, 22, 23, 24]
    assert parts[1].entity_keys == encode_entity_keys(("id",), [ids.slice(10, 10)])
    with pytest.raises(SchemaError, match=r"lack column\(s\) \['x'\]"):
        encode_batch(view, pa.table({"id": [1, 2], EVENT_TIMESTAMP: ts}))
    with pytest.raises(SchemaError, match="'x' has type string"):
        encode_batch(view, pa.table({"id": [1, 2], "x": ["a", "b"], EVENT_TIMESTAMP: ts}))
    with pytest.raises(SchemaError, match="event_timestamp"):
        encode_batch(view, pa.table({"id": [1, 2], "x": [1, 2], EVENT_TIMESTAMP: ["a", "b"]}))
    late_null = pa.table({"id": ids, "x": ids, EVENT_TIMESTAMP: pa.array([*range(24), None], pa.timestamp("us"))})
    with pytest.raises(InputError, match="1 row"):  # found before the first slice is yielded
        encode_batch(view, late_null, rows=10)
