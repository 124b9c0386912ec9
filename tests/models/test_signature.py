"""Signature rules: ordered inputs, missing and extra columns, safe upcasts, nulls."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from featurestore.errors import SchemaError
from featurestore.models import ColumnSpec, Signature
from featurestore.types import Array, Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

SIG = Signature(
    inputs=(ColumnSpec("amount", Float64), ColumnSpec("count", Int64), ColumnSpec("country", String)),
    outputs=(ColumnSpec("score", Float64, nullable=False),),
)


def _table(**columns):
    return pa.table(columns)


def test_conform_orders_columns_and_ignores_extras():
    table = _table(country=pa.array(["FR", "DE"]), extra=pa.array([1, 2]), count=pa.array([3, 4]),
                   amount=pa.array([1.5, 2.5]))
    out = SIG.conform(table)
    assert out.column_names == ["amount", "count", "country"]
    assert out.column("amount").to_pylist() == [1.5, 2.5]
    assert SIG.input_names == ("amount", "count", "country")


def test_a_missing_column_is_named_with_the_label():
    table = _table(amount=pa.array([1.0]), country=pa.array(["FR"]))
    with pytest.raises(SchemaError, match=r"model fraud version 3: missing input column 'count' \(Int64\)"):
        SIG.conform(table, label="model fraud version 3")


def test_int32_and_float32_are_upcast():
    table = _table(amount=pa.array([1.5], pa.float32()), count=pa.array([7], pa.int32()), country=pa.array(["FR"]))
    out = SIG.conform(table)
    assert out.schema.field("amount").type == pa.float64()
    assert out.schema.field("count").type == pa.int64()
    assert out.column("count").to_pylist() == [7]


def test_array_items_are_upcast_too():
    sig = Signature((ColumnSpec("embedding", Array(Float64)),))
    out = sig.conform(_table(embedding=pa.array([[1.0, 2.0]], pa.list_(pa.float32()))))
    assert out.schema.field("embedding").type == pa.list_(pa.float64())


@pytest.mark.parametrize(
    ("column", "found", "expected"),
    [
        (pa.array(["1.5"]), "String", "Float64"),  # a string for a float
        (pa.array([1], pa.int64()), "Int64", "Float64"),  # an integer for a float: not made
        (pa.array([1.5], pa.float64()), "Float64", "Float32"),  # narrowing
    ],
)
def test_other_type_changes_are_refused_naming_column_and_both_types(column, found, expected):
    sig = Signature((ColumnSpec("amount", {"Float64": Float64, "Float32": Float32}[expected]),))
    with pytest.raises(SchemaError, match=f"input column 'amount' has type {found}, expected {expected}"):
        sig.conform(_table(amount=column))


def test_int64_is_not_narrowed_to_int32():
    sig = Signature((ColumnSpec("n", Int32),))
    with pytest.raises(SchemaError, match="has type Int64, expected Int32"):
        sig.conform(_table(n=pa.array([1], pa.int64())))


def test_nulls_are_kept_in_nullable_columns():
    table = _table(amount=pa.array([None, 2.0], pa.float32()), count=pa.array([1, None]),
                   country=pa.array([None, None], pa.null()))
    out = SIG.conform(table)
    assert out.column("amount").to_pylist() == [None, 2.0]
    assert out.column("count").to_pylist() == [1, None]
    assert out.column("country").to_pylist() == [None, None]
    assert out.schema.field("country").type == pa.string()


def test_a_null_in_a_non_nullable_column_is_refused():
    sig = Signature((ColumnSpec("amount", Float64, nullable=False),))
    assert sig.conform(_table(amount=pa.array([1.0]))).num_rows == 1
    with pytest.raises(SchemaError, match="'amount' has 1 null value"):
        sig.conform(_table(amount=pa.array([1.0, None])), label="model m")


def test_infer_reads_types_and_keeps_nullable_columns():
    schema = pa.schema([
        pa.field("amount", pa.float32()),
        pa.field("user_id", pa.int64(), nullable=False),
        pa.field("flag", pa.bool_()),
        pa.field("ts", pa.timestamp("us", tz="UTC")),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("label", pa.int32()),
    ])
    table = pa.table({"amount": pa.array([None], pa.float32()), "user_id": [1], "flag": [True],
                      "ts": pa.array([0], pa.timestamp("us", tz="UTC")), "tags": [["a"]], "label": [1]},
                     schema=schema)
    sig = Signature.infer(table, inputs=["user_id", "amount", "flag", "ts", "tags"], outputs=["label"])
    assert sig.inputs == (
        ColumnSpec("user_id", Int64, nullable=False),
        ColumnSpec("amount", Float32),  # all null today, still an input, still nullable
        ColumnSpec("flag", Bool),
        ColumnSpec("ts", UnixTimestamp),
        ColumnSpec("tags", Array(String)),
    )
    assert sig.outputs == (ColumnSpec("label", Int32),)
    assert Signature.infer(schema, ["amount"]) == Signature((ColumnSpec("amount", Float32),))


def test_infer_names_an_unknown_column():
    with pytest.raises(SchemaError, match="no column 'amout'.*did you mean 'amount'"):
        Signature.infer(pa.schema([("amount", pa.float64())]), ["amout"])


def test_to_dict_round_trips_through_json():
    sig = Signature((ColumnSpec("e", Array(Float32)), ColumnSpec("n", Int64, nullable=False)),
                    (ColumnSpec("p", Float64),))
    data = json.loads(json.dumps(sig.to_dict()))
    assert Signature.from_dict(data) == sig
    assert data["inputs"][0] == {"name": "e", "type": "Array(Float32)", "nullable": True}
