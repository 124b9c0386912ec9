"""Feature value types (Feast-compatible names) and their Arrow equivalents.

A type is a small frozen value; ``Array(Float32)`` builds a list type. Arrow is the
in-memory currency, so every type knows its Arrow type, and ``from_arrow`` maps a
source column's Arrow type back for schema checks.

Feast's document types, with Feast's Arrow types: ``Map`` (string keys to string
values, ``map<string, string>``), ``Json`` (JSON text, ``large_string``; read back
parsed, as Feast does) and ``Struct({"name": String, ...})`` (``struct<...>`` of scalar
members). Online they are stored as JSON text (featurestore/online/values.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

__all__ = [
    "Array",
    "Bool",
    "Bytes",
    "FeatureType",
    "Float32",
    "Float64",
    "Int32",
    "Int64",
    "JSON_TYPES",
    "Json",
    "Map",
    "String",
    "Struct",
    "UnixTimestamp",
    "arrow_kind",
    "compatible",
    "from_arrow",
    "narrowing",
    "parse_type",
]


@dataclass(frozen=True)
class FeatureType:
    """A scalar feature type, or a list of one when ``item`` is set."""

    name: str
    item: FeatureType | None = None
    members: tuple[tuple[str, FeatureType], ...] = ()  # a Struct's, in order

    def to_arrow(self) -> pa.DataType:
        if self.item is not None:
            return pa.list_(self.item.to_arrow())
        if self.name == "Struct":
            return pa.struct([(name, t.to_arrow()) for name, t in self.members])
        return _ARROW[self.name]

    def __str__(self) -> str:
        if self.name == "Struct":
            return "Struct({" + ", ".join(f"{n}: {t}" for n, t in self.members) + "})"
        return f"Array({self.item})" if self.item is not None else self.name

    def __repr__(self) -> str:
        return str(self)


Int32 = FeatureType("Int32")
Int64 = FeatureType("Int64")
Float32 = FeatureType("Float32")
Float64 = FeatureType("Float64")
String = FeatureType("String")
Bytes = FeatureType("Bytes")
Bool = FeatureType("Bool")
UnixTimestamp = FeatureType("UnixTimestamp")
Map = FeatureType("Map")
Json = FeatureType("Json")
JSON_TYPES = ("Map", "Json", "Struct")  # stored online as JSON text

_ARROW: dict[str, pa.DataType] = {
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "String": pa.string(),
    "Bytes": pa.binary(),
    "Bool": pa.bool_(),
    "UnixTimestamp": pa.timestamp("us", tz="UTC"),
    "Map": pa.map_(pa.string(), pa.string()),
    "Json": pa.large_string(),
}
_SCALARS = {t.name: t for t in (Int32, Int64, Float32, Float64, String, Bytes, Bool, UnixTimestamp, Map, Json)}
_MEMBER_TYPES = ("Int32", "Int64", "Float32", "Float64", "String", "Bool")


def Array(item: FeatureType) -> FeatureType:  # noqa: N802 - Feast spells it as a type
    """A list of ``item`` values, e.g. ``Array(Float32)`` for an embedding."""
    if not isinstance(item, FeatureType) or item.item is not None or item.name in JSON_TYPES:
        raise TypeError(f"Array() takes a scalar feature type such as Float32, not {item!r}")
    return FeatureType("Array", item)


def Struct(members: dict[str, FeatureType]) -> FeatureType:  # noqa: N802 - Feast spells it as a type
    """A record of named scalar members, e.g. ``Struct({"name": String, "age": Int64})``."""
    if not isinstance(members, dict) or not members:
        raise TypeError("Struct() takes a dict of member name -> scalar type, e.g. Struct({'name': String})")
    for name, t in members.items():
        if not isinstance(name, str) or not isinstance(t, FeatureType) or t.name not in _MEMBER_TYPES:
            raise TypeError(f"Struct member {name!r}: use one of {', '.join(_MEMBER_TYPES)}, not {t!r}")
    return FeatureType("Struct", members=tuple(members.items()))


def parse_type(text: str) -> FeatureType:
    """The inverse of ``str(type)``: ``"Int64"`` or ``"Array(Float32)"``."""
    if text.startswith("Array(") and text.endswith(")"):
        return Array(parse_type(text[6:-1]))
    if text.startswith("Struct({") and text.endswith("})"):
        pairs = (part.split(":", 1) for part in text[8:-2].split(", "))
        return Struct({name.strip(): parse_type(t.strip()) for name, t in pairs})
    try:
        return _SCALARS[text]
    except KeyError:
        raise ValueError(f"unknown feature type {text!r}; known: {', '.join(_SCALARS)}") from None


# The kinds of values, the level at which the store compares Arrow types across widths
# and spellings; checked in this order (a decimal is a number, a date is a time).
_KIND_TESTS = (
    ("null", (pa.types.is_null,)),
    ("bool", (pa.types.is_boolean,)),
    ("integer", (pa.types.is_integer,)),
    ("float", (pa.types.is_floating, pa.types.is_decimal)),
    ("string", (pa.types.is_string, pa.types.is_large_string, pa.types.is_string_view)),
    ("binary", (pa.types.is_binary, pa.types.is_large_binary, pa.types.is_fixed_size_binary,
                pa.types.is_binary_view)),
    ("time", (pa.types.is_timestamp, pa.types.is_date)),
    ("list", (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)),
)


def arrow_kind(dtype: pa.DataType) -> str:
    """The kind of values an Arrow type holds: ``null``, ``bool``, ``integer``, ``float``
    (floats and decimals), ``string``, ``binary``, ``time`` (timestamps and dates), ``list``
    or ``other``. A dictionary type (a pandas categorical) has the kind of its values."""
    if pa.types.is_dictionary(dtype):
        return arrow_kind(dtype.value_type)
    for kind, tests in _KIND_TESTS:
        if any(test(dtype) for test in tests):
            return kind
    return "other"


def from_arrow(dtype: pa.DataType) -> FeatureType | None:
    """The feature type of an Arrow column, or None when there is no equivalent."""
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        item = from_arrow(dtype.value_type)
        return Array(item) if item is not None and item.item is None and item.name not in JSON_TYPES else None
    if pa.types.is_map(dtype):
        return Map if from_arrow(dtype.key_type) == String else None
    if pa.types.is_struct(dtype):
        members = {f.name: from_arrow(f.type) for f in dtype}
        ok = members and all(t is not None and t.name in _MEMBER_TYPES for t in members.values())
        return Struct(members) if ok else None
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        return UnixTimestamp
    if pa.types.is_large_string(dtype) or pa.types.is_string(dtype) or pa.types.is_string_view(dtype):
        return String
    if pa.types.is_large_binary(dtype) or pa.types.is_binary(dtype):
        return Bytes
    for name, arrow in _ARROW.items():
        if arrow == dtype:
            return _SCALARS[name]
    if pa.types.is_integer(dtype):
        return Int64 if dtype.bit_width > 32 else Int32
    if pa.types.is_floating(dtype):
        return Float64 if dtype.bit_width > 32 else Float32
    return None


# A source column may be narrower than the declared type (an int32 column for an Int64
# feature), never of another kind: reading it cannot lose information.
_WIDENINGS = {("Int32", "Int64"), ("Float32", "Float64"), ("Int32", "Float64"), ("String", "Json")}


def compatible(actual: FeatureType, declared: FeatureType) -> bool:
    """Whether a column of type ``actual`` can serve a feature declared ``declared``."""
    if actual == declared:
        return True
    if actual.item is not None and declared.item is not None:
        return compatible(actual.item, declared.item)
    if actual.name == declared.name == "Struct":
        given = dict(actual.members)
        return all(n in given and compatible(given[n], t) for n, t in declared.members)
    return (actual.name, declared.name) in _WIDENINGS


# The other way round, within one kind: a wider source column (float64 data for a Float32
# feature, int64 for Int32) can be read only value by value, each checked to fit.
_NARROWINGS = {("Int64", "Int32"), ("Float64", "Float32")}


def narrowing(actual: FeatureType, declared: FeatureType) -> bool:
    """Whether a column of type ``actual`` is a wider type of ``declared``'s kind, readable
    only when each value fits ``declared`` (see ``featurestore/offline/conform.py``)."""
    if actual.item is not None and declared.item is not None:
        return narrowing(actual.item, declared.item)
    return (actual.name, declared.name) in _NARROWINGS


def __getattr__(name: str):
    # A Feast type this store does not have fails naming it as unsupported, with what to do.
    from featurestore.feast_names import UNSUPPORTED_TYPES, unsupported

    raise unsupported(__name__, name, UNSUPPORTED_TYPES)
