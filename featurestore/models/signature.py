"""A model's signature: its ordered input columns and outputs, with their types.

The signature is recorded when a model version is registered (inferred from the training
set when there is one) and enforced on every prediction, so a model sees the columns it
was trained on, in that order, with those types, wherever it runs. The rules ``conform``
applies, once, here:

- a missing input column is an error naming it; extra columns are ignored;
- only lossless upcasts are made: Int32 -> Int64 and Float32 -> Float64 (also inside
  arrays); anything else that differs (an integer for a float, a string for a number) is
  an error naming the column and both types;
- nulls are kept as nulls. A column is nullable unless declared otherwise, and a
  nullable column is never dropped or refused for holding nulls (MLflow dropped such
  columns from inferred signatures); a null in a non-nullable column is an error.

An input may carry a ``default``: the value a version whose ``on_missing`` policy is
``default`` gives the model when the feature is missing (featurestore/models/inputs.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa

from featurestore.errors import InputError, SchemaError, close_matches
from featurestore.types import FeatureType, from_arrow, parse_type

__all__ = ["ColumnSpec", "Signature"]

# The only type changes conform() makes: each loses no value.
_UPCASTS = {("Int32", "Int64"), ("Float32", "Float64")}


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column: its name, feature type, whether it may hold nulls and
    the value a missing feature takes under ``on_missing="default"`` (None: no default)."""

    name: str
    dtype: FeatureType
    nullable: bool = True
    default: Any = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise InputError(f"a signature column needs a non-empty name, not {self.name!r}")
        if not isinstance(self.dtype, FeatureType):
            raise InputError(f"signature column {self.name!r}: dtype must be a feature type such as Float64, "
                             f"not {self.dtype!r}")
        if self.default is not None:
            object.__setattr__(self, "default", _checked_default(self))

    def with_default(self, value: Any) -> ColumnSpec:
        """This column with ``value`` as its default (checked against its type)."""
        return replace(self, default=value)

    def to_dict(self) -> dict:
        out = {"name": self.name, "type": str(self.dtype), "nullable": self.nullable}
        if self.default is not None:  # absent, not null: records without defaults keep their shape
            out["default"] = self.default
        return out

    @classmethod
    def from_dict(cls, data: dict) -> ColumnSpec:
        try:
            return cls(data["name"], parse_type(data["type"]), bool(data.get("nullable", True)),
                       data.get("default"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"invalid signature column {data!r}: {exc}") from None


@dataclass(frozen=True)
class Signature:
    """Ordered input columns (what ``predict`` receives) and output columns."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()

    def __post_init__(self):
        # Accept lists for convenience but store tuples, so the record stays immutable.
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        for side, specs in (("input", self.inputs), ("output", self.outputs)):
            names = [spec.name for spec in specs]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise InputError(f"signature names {side} column(s) {', '.join(map(repr, duplicates))} twice")

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.inputs)

    def with_defaults(self, defaults: dict[str, Any]) -> Signature:
        """This signature with ``defaults`` (input name -> value) set on its inputs."""
        unknown = [name for name in defaults if name not in self.input_names]
        if unknown:
            hints = {n: close_matches(n, self.input_names) for n in unknown}
            raise InputError("defaults name no input column " + ", ".join(
                repr(n) + (f" (did you mean {', '.join(map(repr, hints[n]))}?)" if hints[n] else "") for n in unknown)
                + f"; the inputs are {', '.join(self.input_names)}")
        return replace(self, inputs=tuple(spec.with_default(defaults[spec.name]) if spec.name in defaults else spec
                                          for spec in self.inputs))

    def to_dict(self) -> dict:
        """A JSON-able dict; ``Signature.from_dict`` gives back an equal signature."""
        return {"inputs": [s.to_dict() for s in self.inputs], "outputs": [s.to_dict() for s in self.outputs]}

    @classmethod
    def from_dict(cls, data: dict) -> Signature:
        if not isinstance(data, dict) or not isinstance(data.get("inputs"), list):
            raise InputError(f"invalid signature {data!r}: expected {{'inputs': [...], 'outputs': [...]}}")
        return cls(tuple(ColumnSpec.from_dict(d) for d in data["inputs"]),
                   tuple(ColumnSpec.from_dict(d) for d in data.get("outputs") or ()))

    @classmethod
    def infer(cls, table: pa.Table | pa.Schema, inputs: Sequence[str], outputs: Sequence[str] = ()) -> Signature:
        """The signature of ``inputs`` and ``outputs`` (column names, in order) in ``table``.

        Types come from the Arrow schema; a column is nullable unless its Arrow field is
        declared non-nullable (whether it holds nulls today does not matter).
        """
        schema = table if isinstance(table, pa.Schema) else table.schema
        if isinstance(inputs, str) or isinstance(outputs, str):
            raise InputError("Signature.infer takes lists of column names, not a single string")
        return cls(tuple(_infer_column(schema, n) for n in inputs), tuple(_infer_column(schema, n) for n in outputs))

    def conform(self, table: pa.Table, *, label: str = "model") -> pa.Table:
        """The input columns of ``table`` in signature order, checked and safely upcast."""
        columns = []
        for spec in self.inputs:
            if spec.name not in table.column_names:
                hint = close_matches(spec.name, table.column_names)
                raise SchemaError(
                    f"{label}: missing input column {spec.name!r} ({spec.dtype})"
                    + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else "")
                )
            columns.append(_conform_column(table.column(spec.name), spec, label))
        return pa.table(columns, names=list(self.input_names))


def _checked_default(spec: ColumnSpec) -> Any:
    """``spec.default`` as the JSON value of its type; InputError naming the column otherwise."""
    value, dtype = spec.default, spec.dtype
    kind = dtype.name if dtype.item is None else "Array"
    ok = {
        "Int32": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Int64": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "Float32": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "Float64": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "String": lambda v: isinstance(v, str),
        "Bool": lambda v: isinstance(v, bool),
        "Array": lambda v: isinstance(v, list),
    }.get(kind)
    if ok is None:
        raise InputError(f"signature column {spec.name!r}: a {dtype} input cannot have a default")
    try:
        if not ok(value):
            raise TypeError(f"{type(value).__name__} value {value!r}")
        pa.array([value], type=dtype.to_arrow())  # in range, list items of the right type
    except (TypeError, ValueError, OverflowError, pa.ArrowException) as exc:
        raise InputError(f"default of input {spec.name!r} must be a {dtype} value, not {exc}") from None
    return float(value) if kind.startswith("Float") else value


def _infer_column(schema: pa.Schema, name: str) -> ColumnSpec:
    index = schema.get_field_index(name)
    if index < 0:
        hint = close_matches(name, schema.names)
        raise SchemaError(f"no column {name!r} to infer the signature from; columns: {', '.join(schema.names)}"
                          + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else ""))
    field = schema.field(index)
    dtype = from_arrow(field.type)
    if dtype is None:
        raise SchemaError(f"column {name!r} has Arrow type {field.type}, which no feature type matches")
    return ColumnSpec(name, dtype, field.nullable)


def _conform_column(column: pa.ChunkedArray, spec: ColumnSpec, label: str) -> pa.ChunkedArray:
    declared = spec.dtype
    if pa.types.is_null(column.type):
        # An all-null column (e.g. built from Python Nones) has no type of its own.
        actual = declared
        column = column.cast(declared.to_arrow())
    else:
        actual = from_arrow(column.type)
    if actual != declared:
        if actual is None or not _upcast_ok(actual, declared):
            found = actual if actual is not None else f"Arrow {column.type}"
            raise SchemaError(f"{label}: input column {spec.name!r} has type {found}, expected {declared}")
        column = column.cast(declared.to_arrow())
    if not spec.nullable and column.null_count:
        raise SchemaError(f"{label}: input column {spec.name!r} has {column.null_count} null value(s) "
                          f"but the signature declares it non-nullable")
    return column


def _upcast_ok(actual: FeatureType, declared: FeatureType) -> bool:
    if actual.item is not None and declared.item is not None:
        return _upcast_ok(actual.item, declared.item)
    return actual.item is None and declared.item is None and (actual.name, declared.name) in _UPCASTS
