"""Source columns against the types the registry declares for them, where data is read.

`apply` checks a view's files once; the files can change afterwards (a writer switches a
join key to strings, a feature to float64). Every read of a view's rows (materialization,
backfill, training sets) therefore checks again, on the footers only (cheap):

- a column whose type is ``compatible`` with the declared one (the same, or a narrower one
  of its kind such as int32 data for an Int64 feature) is read and widened;
- a column that is a wider type of the same kind (``narrowing``: float64 data for a
  Float32 feature, int64 for Int32) is read value by value: a value that does not fit
  (1e300 as Float32, 3e9 as Int32) is an error naming the column, never ``inf`` or a
  wrapped integer. Only these casts pay a per-value check;
- any other type (a String key declared Int64) is a ``SchemaError`` naming the view, the
  column, the file and both types, before a row is read.

Timestamps keep their source unit and zone (naive means UTC), as before the check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.errors import SchemaError
from featurestore.offline.base import ViewRequest
from featurestore.offline.scan import Scan
from featurestore.types import FeatureType, compatible, from_arrow, narrowing

__all__ = ["check_declared", "conform", "declared_types", "output_type", "targets"]

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def declared_types(view: ViewRequest) -> dict[str, FeatureType]:
    """Column name -> declared type (empty when the request declares none)."""
    return dict(view.declared)


def check_declared(view: ViewRequest, scan: Scan) -> None:
    """Each file's type of each declared column is readable as the declared type."""
    declared = declared_types(view)
    if not declared:
        return
    for path, schema in scan.file_schemas.items():
        for column, dtype in declared.items():
            if column not in schema.names:
                continue  # a feature a file lacks is null there; missing keys fail elsewhere
            arrow = schema.field(column).type
            actual = from_arrow(arrow)
            if actual is None or not (compatible(actual, dtype) or narrowing(actual, dtype)):
                raise SchemaError(
                    f"view {view.name!r}: column {column!r} is {actual or arrow} in {path!r} but the view "
                    f"declares {dtype}; the source changed after `featurestore apply`: write the column "
                    f"as {dtype} again, or change the Field's dtype and apply"
                )


def output_type(declared: FeatureType | None, source: pa.DataType) -> pa.DataType:
    """The Arrow type a column is returned as: the declared type's, but timestamps (and
    lists of them) as the source has them, and undeclared columns unchanged."""
    if declared is None or "UnixTimestamp" in (declared.name, getattr(declared.item, "name", None)):
        return source
    return declared.to_arrow()


def conform(view: ViewRequest, column: str, values: pa.ChunkedArray | pa.Array, target: pa.DataType,
            declared: FeatureType | None):
    """``values`` of ``column`` as ``target``; SchemaError when a value does not fit."""
    if values.type == target:
        return values
    if declared is None:  # nothing declared: the old best effort, keep the source type
        try:
            return values.cast(target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return values
    if _is_float32(target):
        _check_float32_range(view, column, values, declared)
    try:
        return values.cast(target)  # safe: an integer out of range raises, never wraps
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise SchemaError(
            f"view {view.name!r}: column {column!r} ({values.type} in the source) holds a value that does "
            f"not fit its declared type {declared} ({_first_line(exc)}); fix the data, or declare a wider "
            "type and apply"
        ) from None


def _is_float32(dtype: pa.DataType) -> bool:
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return _is_float32(dtype.value_type)
    return pa.types.is_float32(dtype)


def _check_float32_range(view: ViewRequest, column: str, values, declared: FeatureType) -> None:
    """Arrow casts a double beyond float32's range to inf without a word: refuse it here.
    (Infinities and NaN in the source stay what they are.)"""
    items = _flat(values)
    if not (pa.types.is_floating(items.type) and items.type.bit_width > 32):
        return
    too_big = pc.and_(pc.is_finite(items), pc.greater(pc.abs(items), _FLOAT32_MAX))
    if pc.any(too_big).as_py():
        value = pc.filter(items, too_big)[0].as_py()
        raise SchemaError(
            f"view {view.name!r}: column {column!r} holds {value!r}, which does not fit its declared type "
            f"{declared} (the source's column is {values.type}); fix the data, or declare Float64 and apply"
        )


def _flat(values) -> pa.Array | pa.ChunkedArray:
    while pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
        values = pc.list_flatten(values)
    return values


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def targets(view: ViewRequest, columns: Sequence[str], sources: Sequence[pa.DataType]) -> list[pa.DataType]:
    """``output_type`` of each column, given its type in the source."""
    declared = declared_types(view)
    return [output_type(declared.get(c), t) for c, t in zip(columns, sources)]
