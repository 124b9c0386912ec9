"""Binary encodings of feature values, records and entity keys (docs/online-store.md).

The schema is known on both sides, so a value carries no type tag. Int32/Int64 and
Float32/Float64 are 4/8 bytes little-endian (IEEE 754 for floats, NaN kept), Bool one
byte, UnixTimestamp int64 microseconds (UTC), String UTF-8, Bytes raw. Array(T) is a u32
count, a u8 flags byte (bit 0: some items null, then a validity bitmap, LSB first), then
fixed-width items back to back or, for String/Bytes items, u32 lengths then the bytes.
A null value has no encoding: it is absent (no Redis field; a null slot in a record), so
it never looks like "", b"" or [].

A record (the SQLite store's blob of a row): u16 count, count u16 name lengths, count u32
value lengths (0xFFFFFFFF: null), the UTF-8 names, the values.

An entity key: u8 count, then per join key, sorted by name: u8 name length, the name, a
tag and the value: ``i`` int64 LE (integers, bools, integral floats), ``s`` u32 length +
UTF-8, ``b`` u32 length + bytes. Every part is typed and length-delimited, so the string
"1|2", the pair (1, 2) and the string "1" vs the int 1 are all different keys.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from numbers import Integral
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.clock import from_micros, to_micros
from featurestore.errors import InputError, NotFoundError, SchemaError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.types import FeatureType

__all__ = [
    "EncodedBatch",
    "cast_column",
    "decode_record",
    "decode_values",
    "encode_batch",
    "encode_cast",
    "encode_column",
    "encode_entity_keys",
    "encode_record",
    "entity_key_encoder",
    "feature_decoders",
    "timestamp_micros",
    "undecodable",
    "value_decoder",
    "value_encoder",
]

_LITTLE = sys.byteorder == "little"
_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")
_ARRAY_HEAD = struct.Struct("<IB")
_NULL_LEN = 0xFFFFFFFF

# Fixed-width scalars: struct code and width.
_FIXED = {"Int32": "i", "Int64": "q", "Float32": "f", "Float64": "d", "Bool": "?", "UnixTimestamp": "q"}
_WIDTH = {code: struct.calcsize("<" + code) for code in set(_FIXED.values())}


# --- single values ---------------------------------------------------------------------


def _scalar_encoder(dtype: FeatureType) -> Callable[[Any], bytes]:
    name = dtype.name
    if name == "String":
        return lambda v: v.encode()
    if name == "Bytes":
        return bytes
    if name == "UnixTimestamp":
        return lambda v: _I64.pack(to_micros(v))
    if name == "Bool":
        return lambda v: b"\x01" if v else b"\x00"
    return struct.Struct("<" + _FIXED[name]).pack


def _scalar_decoder(dtype: FeatureType) -> Callable[[bytes], Any]:
    name = dtype.name
    if name == "String":
        return bytes.decode
    if name == "Bytes":
        return bytes
    if name == "Bool":
        return lambda b: b != b"\x00"
    unpack = struct.Struct("<" + _FIXED[name]).unpack
    if name == "UnixTimestamp":
        return lambda b: from_micros(unpack(b)[0])
    return lambda b: unpack(b)[0]


def _array_encoder(item: FeatureType) -> Callable[[Sequence], bytes]:
    code = _FIXED.get(item.name)
    encode_item = _scalar_encoder(item)

    def encode(values: Sequence) -> bytes:
        n = len(values)
        head = b""
        present = [v is not None for v in values]
        if not all(present):
            bitmap = bytearray((n + 7) // 8)
            for i, ok in enumerate(present):
                if ok:
                    bitmap[i >> 3] |= 1 << (i & 7)
            head = bytes(bitmap)
        parts = [_ARRAY_HEAD.pack(n, 1 if head else 0), head]
        if code:
            if item.name == "UnixTimestamp":
                values = [to_micros(v) if v is not None else 0 for v in values]
            elif head:
                values = [v if v is not None else 0 for v in values]
            parts.append(struct.pack(f"<{n}{code}", *values))
        else:
            items = [encode_item(v) if v is not None else b"" for v in values]
            parts.append(struct.pack(f"<{n}I", *map(len, items)))
            parts.extend(items)
        return b"".join(parts)

    return encode


def _array_decoder(item: FeatureType) -> Callable[[bytes], list]:
    code = _FIXED.get(item.name)
    decode_item = _scalar_decoder(item)

    def decode(blob: bytes) -> list:
        n, flags = _ARRAY_HEAD.unpack_from(blob)
        offset = 5
        bitmap = b""
        if flags & 1:
            bitmap = blob[offset : offset + (n + 7) // 8]
            offset += len(bitmap)
        if code:
            items = list(struct.unpack_from(f"<{n}{code}", blob, offset))
            if item.name == "UnixTimestamp":
                items = [from_micros(us) for us in items]
        else:
            lengths = struct.unpack_from(f"<{n}I", blob, offset)
            offset += 4 * n
            items = []
            for length in lengths:
                items.append(decode_item(blob[offset : offset + length]))
                offset += length
        if bitmap:
            items = [v if bitmap[i >> 3] >> (i & 7) & 1 else None for i, v in enumerate(items)]
        return items

    return decode


@lru_cache(maxsize=None)
def value_encoder(dtype: FeatureType) -> Callable[[Any], bytes]:
    """A function encoding one non-null Python value of ``dtype``."""
    return _array_encoder(dtype.item) if dtype.item is not None else _scalar_encoder(dtype)


@lru_cache(maxsize=None)
def value_decoder(dtype: FeatureType) -> Callable[[bytes], Any]:
    """A function decoding one encoded value of ``dtype`` (the inverse of value_encoder)."""
    return _array_decoder(dtype.item) if dtype.item is not None else _scalar_decoder(dtype)


def decode_values(dtype: FeatureType, blobs: Sequence[bytes | None]) -> list:
    """Decode many values of one type; None (absent) stays None."""
    decode = value_decoder(dtype)
    return [decode(b) if b is not None else None for b in blobs]


def feature_decoders(view: OnlineView, features: Sequence[str]) -> tuple[Callable[[bytes], Any], ...]:
    """The decoders of some of a view's features, in order; NotFoundError names one it lacks."""
    dtypes = dict(zip(view.features, view.dtypes))
    for name in features:
        if name not in dtypes:
            raise NotFoundError("feature", name, view.features, where=f"view {view.name!r}")
    return tuple(value_decoder(dtypes[f]) for f in features)


# --- whole Arrow columns ---------------------------------------------------------------


def _fixed_bytes(arr: pa.Array, width: int) -> bytes:
    """The data of a fixed-width array, little-endian (a null's slot holds whatever is there)."""
    buffer = arr.buffers()[1]
    if buffer is None:  # an all-null or empty array may have none
        return bytes(width * len(arr))
    start = arr.offset * width
    return memoryview(buffer)[start : start + len(arr) * width].tobytes()


def _fixed_slices(arr: pa.Array, width: int) -> list[bytes]:
    data = _fixed_bytes(arr, width)
    return [data[i : i + width] for i in range(0, len(data), width)]


def timestamp_micros(arr: pa.Array | pa.ChunkedArray) -> pa.Int64Array:
    """A timestamp or date column as int64 microseconds since the epoch (naive = UTC)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_date(arr.type):
        arr = arr.cast(pa.timestamp("us"))
    if not pa.types.is_timestamp(arr.type):
        raise TypeError(f"expected a timestamp column, got {arr.type}")
    # Sub-microsecond digits are dropped (safe=False), like the declared timestamp[us].
    return arr.cast(pa.timestamp("us", tz=arr.type.tz), safe=False).view(pa.int64())


def cast_column(arr: pa.Array | pa.ChunkedArray, dtype: FeatureType) -> pa.Array:
    """The column in the form ``encode_cast`` takes: of ``dtype``'s Arrow type, timestamps as
    int64 microseconds. Raises TypeError or pyarrow.ArrowInvalid when it does not convert."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(arr, pa.DictionaryArray):
        arr = arr.dictionary_decode()
    if dtype.name == "UnixTimestamp":
        return timestamp_micros(arr)
    if dtype.item is not None and dtype.item.name == "UnixTimestamp":
        if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
            raise TypeError(f"expected a list column, got {arr.type}")
        lists = arr.cast(pa.list_(arr.type.value_type))
        first, last = lists.offsets[0].as_py(), lists.offsets[-1].as_py()
        items = timestamp_micros(lists.values.slice(first, last - first))
        offsets = pc.subtract(lists.offsets, pa.scalar(first, pa.int32()))
        return pa.ListArray.from_arrays(offsets, items, mask=lists.is_null())
    return arr.cast(dtype.to_arrow())


def encode_cast(arr: pa.Array, dtype: FeatureType) -> list[bytes | None]:
    """Encode a column already passed through ``cast_column``: one bytes per row, None for null."""
    code = _FIXED.get(dtype.name)
    if code and _LITTLE:
        out = _fixed_slices(arr.cast(pa.uint8()) if code == "?" else arr, _WIDTH[code])
    elif code:
        out = [struct.pack("<" + code, v) if v is not None else None for v in arr.to_pylist()]
    elif dtype.name in ("String", "Bytes"):
        return arr.cast(pa.large_binary()).to_pylist()
    else:
        out = _encode_lists(arr, dtype.item)
    if arr.null_count:
        out = [b if ok else None for b, ok in zip(out, arr.is_valid().to_pylist())]
    return out


def encode_column(arr: pa.Array | pa.ChunkedArray, dtype: FeatureType) -> list[bytes | None]:
    """Encode a whole Arrow column as ``dtype``: one bytes per row, None for null.

    Raises TypeError or pyarrow.ArrowInvalid when the column cannot be cast to ``dtype``.
    """
    return encode_cast(cast_column(arr, dtype), dtype)


def _encode_lists(arr: pa.ListArray, item: FeatureType) -> list[bytes | None]:
    code = _FIXED.get(item.name)
    child = arr.values
    if not code or child.null_count or not _LITTLE:
        encode = value_encoder(FeatureType("Array", item))
        if item.name == "UnixTimestamp":  # already microseconds: keep them as ints
            encode = _array_encoder(FeatureType("Int64"))
        return [encode(v) if v is not None else None for v in arr.to_pylist()]
    width = _WIDTH[code]
    data = _fixed_bytes(child.cast(pa.uint8()) if code == "?" else child, width)
    offsets = arr.offsets.to_pylist()
    head = _ARRAY_HEAD.pack
    return [head(hi - lo, 0) + data[lo * width : hi * width] for lo, hi in zip(offsets, offsets[1:])]


def undecodable(view: OnlineView, exc: Exception) -> SchemaError:
    """The error for stored values that do not decode as the view's declared types."""
    return SchemaError(
        f"stored online values of feature view {view.name!r} do not decode as its declared types ({exc}); "
        "was a feature's type changed without materializing the view again? Materialize it again"
    )


# --- records ---------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _record_struct(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}H{count}I")


def encode_record(names: Sequence[bytes], values: Sequence[bytes | None]) -> bytes:
    """Encode named values (UTF-8 names, None for null) as one record blob."""
    lengths = [len(v) if v is not None else _NULL_LEN for v in values]
    head = struct.pack(f"<H{len(names)}H{len(names)}I", len(names), *map(len, names), *lengths)
    return b"".join([head, *names, *(v for v in values if v is not None)])


def decode_record(blob: bytes) -> dict[str, bytes | None]:
    """The named values of a record blob (the inverse of encode_record)."""
    count = blob[0] | blob[1] << 8
    lengths = _record_struct(count).unpack_from(blob, 2)
    offset = 2 + 6 * count
    names = []
    for length in lengths[:count]:
        names.append(blob[offset : offset + length].decode())
        offset += length
    out: dict[str, bytes | None] = dict.fromkeys(names)
    for name, length in zip(names, lengths[count:]):
        if length != _NULL_LEN:
            out[name] = blob[offset : offset + length]
            offset += length
    return out


# --- entity keys -----------------------------------------------------------------------


def _key_part(value: Any) -> bytes | None:
    """Tag and payload of one join key value; None for a null value."""
    if isinstance(value, str):
        raw = value.encode()
        return b"s" + _U32.pack(len(raw)) + raw
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        return b"b" + _U32.pack(len(raw)) + raw
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # pandas turns an integer column with nulls into floats
    if isinstance(value, Integral):
        try:
            return b"i" + _I64.pack(int(value))
        except struct.error:
            raise InputError(f"join key value {value} does not fit in a 64-bit integer") from None
    if value is None:
        return None
    raise InputError(
        f"join key value {value!r} has type {type(value).__name__}; "
        "join keys must be integers, strings or bytes"
    )


def _names(join_keys: Sequence[str]) -> tuple[list[int], list[bytes]]:
    """The sorted order of join keys and each one's encoded name part."""
    if not 0 < len(join_keys) < 256:
        raise ValueError(f"an entity key needs 1 to 255 join keys, got {len(join_keys)}")
    order = sorted(range(len(join_keys)), key=lambda i: join_keys[i])
    names = []
    for i in order:
        raw = join_keys[i].encode()
        if len(raw) > 255:
            raise ValueError(f"join key name {join_keys[i][:40]!r}... is longer than 255 bytes")
        names.append(bytes([len(raw)]) + raw)
    return order, names


@lru_cache(maxsize=1024)
def entity_key_encoder(join_keys: tuple[str, ...]) -> Callable[[Sequence], bytes | None]:
    """A function from one key's values (in ``join_keys`` order) to its entity key bytes;
    None when a value is null. Raises InputError for a value of an unsupported type."""
    order, names = _names(join_keys)
    count = bytes([len(join_keys)])
    if len(join_keys) == 1:
        head = count + names[0]
        head_i = head + b"i"
        pack = _I64.pack

        def encode_one(values: Sequence) -> bytes | None:
            try:
                (value,) = values
            except (TypeError, ValueError):
                raise InputError(f"an entity key of {list(join_keys)} needs 1 value, got {values!r}") from None
            if type(value) is int and -(1 << 63) <= value < 1 << 63:
                return head_i + pack(value)  # the common case, kept short
            part = _key_part(value)
            return head + part if part is not None else None

        return encode_one

    def encode(values: Sequence) -> bytes | None:
        if len(values) != len(order):
            raise InputError(f"an entity key of {list(join_keys)} needs {len(order)} values, got {values!r}")
        parts = [count]
        for name, i in zip(names, order):
            part = _key_part(values[i])
            if part is None:
                return None
            parts += (name, part)
        return b"".join(parts)

    return encode


def _cast_key(arr: pa.Array | pa.ChunkedArray) -> tuple[bytes, pa.Array]:
    """A join key column's tag and the column as int64 or large_binary."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if isinstance(arr, pa.DictionaryArray):
        arr = arr.dictionary_decode()
    kind = arr.type
    if pa.types.is_null(kind):
        return b"i", arr.cast(pa.int64())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return b"s", arr.cast(pa.large_binary())
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind) or pa.types.is_fixed_size_binary(kind):
        return b"b", arr.cast(pa.large_binary())
    if pa.types.is_integer(kind) or pa.types.is_boolean(kind) or pa.types.is_floating(kind):
        return b"i", arr.cast(pa.int64())  # floats only when integral (a safe cast), like _key_part
    raise TypeError(f"join key columns must hold integers, strings or bytes, not {kind}")


def _key_parts(name: bytes, tag: bytes, arr: pa.Array) -> list[bytes | None]:
    if tag == b"i":
        head = name + tag
        parts = _fixed_slices(arr, 8) if _LITTLE else [_I64.pack(v or 0) for v in arr.to_pylist()]
        parts = [head + p for p in parts]
        if arr.null_count:
            parts = [p if ok else None for p, ok in zip(parts, arr.is_valid().to_pylist())]
        return parts
    head, pack = name + tag, _U32.pack
    return [head + pack(len(v)) + v if v is not None else None for v in arr.to_pylist()]


def _join_keys(count: bytes, per_key: list[list[bytes | None]]) -> list[bytes | None]:
    if len(per_key) == 1:
        return [count + p if p is not None else None for p in per_key[0]]
    return [None if None in parts else count + b"".join(parts) for parts in zip(*per_key)]


def encode_entity_keys(join_keys: Sequence[str], columns: Sequence[pa.Array | pa.ChunkedArray]) -> list[bytes | None]:
    """Entity key bytes of every row of the join key columns (None where a key is null);
    byte-identical to ``entity_key_encoder`` on the same values."""
    order, names = _names(join_keys)
    casts = [_cast_key(columns[i]) for i in order]
    return _join_keys(bytes([len(order)]), [_key_parts(n, *c) for n, c in zip(names, casts)])


# --- a write batch ---------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedBatch:
    """Some rows of a write batch, encoded; rows with a null join key are left out."""

    entity_keys: list[bytes]
    event_ts: list[int]  # microseconds since the epoch
    values: list[list[bytes | None]]  # per feature, per row


def encode_batch(view: OnlineView, table: pa.Table, rows: int = 10_000) -> Iterator[EncodedBatch]:
    """Check a write batch for ``view`` and encode it ``rows`` rows at a time.

    Every check runs before this returns, so a store that writes what the iterator yields
    writes nothing when the batch is bad: SchemaError names a missing column or a type
    mismatch, InputError a null event time.
    """
    name, stamp = view.name, EVENT_TIMESTAMP
    missing = [c for c in (*view.join_keys, *view.features, stamp) if c not in table.column_names]
    if missing:
        raise SchemaError(
            f"rows written to feature view {name!r} lack column(s) {missing}; "
            f"expected {[*view.join_keys, *view.features, stamp]}"
        )
    order, names = _names(view.join_keys)
    keys = []
    for i in order:
        column = table.column(view.join_keys[i])
        try:
            keys.append(_cast_key(column))
        except (TypeError, pa.ArrowException) as exc:
            raise SchemaError(f"feature view {name!r}: join key column {view.join_keys[i]!r}: {exc}") from None
    column = table.column(stamp)
    try:
        micros = timestamp_micros(column)
    except (TypeError, pa.ArrowException):
        raise SchemaError(
            f"feature view {name!r}: column {stamp!r} has type {column.type}; expected timestamp[us, tz=UTC]"
        ) from None
    if micros.null_count:
        raise InputError(
            f"feature view {name!r}: {micros.null_count} row(s) have a null {stamp!r}; every row needs an event time"
        )
    values = []
    for feature, dtype in zip(view.features, view.dtypes):
        column = table.column(feature)
        try:
            values.append(cast_column(column, dtype))
        except (TypeError, pa.ArrowException) as exc:
            raise SchemaError(
                f"feature view {name!r}: column {feature!r} has type {column.type}, "
                f"which does not convert to the declared {dtype} ({exc})"
            ) from None
    return _encode_slices(bytes([len(order)]), names, keys, micros, values, view.dtypes, max(1, rows))


def _encode_slices(count, names, keys, micros, values, dtypes, rows) -> Iterator[EncodedBatch]:
    for start in range(0, len(micros), rows):
        per_key = [_key_parts(name, tag, arr.slice(start, rows)) for name, (tag, arr) in zip(names, keys)]
        entity_keys = _join_keys(count, per_key)
        event_ts = micros.slice(start, rows).to_pylist()
        encoded = [encode_cast(arr.slice(start, rows), dtype) for arr, dtype in zip(values, dtypes)]
        if None in entity_keys:
            kept = [i for i, k in enumerate(entity_keys) if k is not None]
            entity_keys = [entity_keys[i] for i in kept]
            event_ts = [event_ts[i] for i in kept]
            encoded = [[column[i] for i in kept] for column in encoded]
        yield EncodedBatch(entity_keys, event_ts, encoded)
