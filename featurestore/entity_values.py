"""Entity key values converted as Feast converts them: ``"1001"`` for an Int64 (or Int32)
key becomes 1001, and 1001 for a String key becomes ``"1001"``. Anything else of the wrong
type stays an error, so a typo ("10O1") is never read as some other entity."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.types import FeatureType, Int32, Int64, String

__all__ = ["convert_key_value", "convert_key_columns"]

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")


def convert_key_value(value: object, expected: FeatureType) -> object | None:
    """``value`` as a key of type ``expected`` the way Feast converts it; None when it does
    not convert."""
    if expected in (Int64, Int32) and isinstance(value, str) and _INTEGER.fullmatch(value):
        return int(value)
    if expected == String and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def convert_key_columns(table: pa.Table, key_types: Mapping[str, FeatureType]) -> pa.Table:
    """An entity table with its string columns of integer keys, and its integer columns of
    string keys, converted to the key's type when every value converts (else unchanged:
    the join names the mismatch)."""
    for key, expected in key_types.items():
        if key not in table.column_names:
            continue
        column = table.column(key)
        converted = None
        if expected in (Int64, Int32) and (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            if pc.all(pc.or_kleene(pc.is_null(column), pc.match_substring_regex(column, r"^\s*[+-]?\d+\s*$"))).as_py():
                converted = pc.utf8_trim_whitespace(column).cast(expected.to_arrow())
        elif expected == String and pa.types.is_integer(column.type):
            converted = column.cast(pa.string())
        if converted is not None:
            table = table.set_column(table.column_names.index(key), key, converted)
    return table
