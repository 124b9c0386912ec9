"""Binary encodings of feature values, one at a time or a whole Arrow column at once
(docs/online-store.md).

The schema is known on both sides, so a value carries no type tag. Int32/Int64 and
Float32/Float64 are 4/8 bytes little-endian (IEEE 754 for floats, NaN kept), Bool one
byte, UnixTimestamp int64 microseconds (UTC), String UTF-8, Bytes raw, Map, Json and
Struct their JSON text in UTF-8 (read back as dicts, or parsed JSON). Array(T) is a u32
count, a u8 flags byte (bit 0: some items null, then a validity bitmap, LSB first), then
fixed-width items back to back or, for String/Bytes items, u32 lengths then the bytes.
A null value has no encoding: it is absent (no Redis field; a null slot in a record), so
it never looks like "", b"" or [].
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.clock import from_micros, to_micros
from featurestore.errors import NotFoundError, SchemaError
from featurestore.online.base import OnlineView
from featurestore.types import JSON_TYPES, FeatureType

__all__ = [
    "LITTLE_ENDIAN",
    "cast_column",
    "decode_values",
    "encode_cast",
    "encode_column",
    "feature_decoders",
    "fixed_width_slices",
    "timestamp_micros",
    "undecodable",
    "value_decoder",
    "value_encoder",
]

#: Arrow buffers are in the machine's order; on little-endian ones they are the encoding.
LITTLE_ENDIAN = sys.byteorder == "little"
_I64 = struct.Struct("<q")
_ARRAY_HEAD = struct.Struct("<IB")

# Fixed-width scalars: struct code and width.
_FIXED = {"Int32": "i", "Int64": "q", "Float32": "f", "Float64": "d", "Bool": "?", "UnixTimestamp": "q"}
_WIDTH = {code: struct.calcsize("<" + code) for code in set(_FIXED.values())}


# --- single values ---------------------------------------------------------------------


def _json_encoder(dtype: FeatureType) -> Callable[[Any], bytes]:
    if dtype.name == "Json":  # JSON text as given (checked), or a value to spell as JSON
        return lambda v: (_checked_json(v) if isinstance(v, str) else json.dumps(v)).encode()
    # Map: Arrow gives (key, value) pairs; Struct: a dict.
    return lambda v: json.dumps(dict(v)).encode()


def _checked_json(text: str) -> str:
    json.loads(text)  # a ValueError names the bad text's position
    return text


def _scalar_encoder(dtype: FeatureType) -> Callable[[Any], bytes]:
    name = dtype.name
    if name in JSON_TYPES:
        return _json_encoder(dtype)
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
    if name in JSON_TYPES:
        return json.loads
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


def undecodable(view: OnlineView, exc: Exception) -> SchemaError:
    """The error for stored values that do not decode as the view's declared types."""
    return SchemaError(
        f"stored online values of feature view {view.name!r} do not decode as its declared types ({exc}); "
        "was a feature's type changed without materializing the view again? Materialize it again"
    )



# --- whole Arrow columns ---------------------------------------------------------------


def _fixed_bytes(arr: pa.Array, width: int) -> bytes:
    """The data of a fixed-width array, little-endian (a null's slot holds whatever is there)."""
    buffer = arr.buffers()[1]
    if buffer is None:  # an all-null or empty array may have none
        return bytes(width * len(arr))
    start = arr.offset * width
    return memoryview(buffer)[start : start + len(arr) * width].tobytes()


def fixed_width_slices(arr: pa.Array, width: int) -> list[bytes]:
    """Each value of a fixed-width array as its ``width`` bytes (see ``_fixed_bytes``)."""
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
    if code and LITTLE_ENDIAN:
        out = fixed_width_slices(arr.cast(pa.uint8()) if code == "?" else arr, _WIDTH[code])
    elif code:
        out = [struct.pack("<" + code, v) if v is not None else None for v in arr.to_pylist()]
    elif dtype.name in ("String", "Bytes"):
        return arr.cast(pa.large_binary()).to_pylist()
    elif dtype.name in JSON_TYPES:
        encode = _json_encoder(dtype)
        return [encode(v) if v is not None else None for v in arr.to_pylist()]
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
    if not code or child.null_count or not LITTLE_ENDIAN:
        encode = value_encoder(FeatureType("Array", item))
        if item.name == "UnixTimestamp":  # already microseconds: keep them as ints
            encode = _array_encoder(FeatureType("Int64"))
        return [encode(v) if v is not None else None for v in arr.to_pylist()]
    width = _WIDTH[code]
    data = _fixed_bytes(child.cast(pa.uint8()) if code == "?" else child, width)
    offsets = arr.offsets.to_pylist()
    head = _ARRAY_HEAD.pack
    return [head(hi - lo, 0) + data[lo * width : hi * width] for lo, hi in zip(offsets, offsets[1:])]
