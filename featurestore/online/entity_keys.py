"""Entity keys: the bytes naming one entity of a view in the online store.

Layout: u8 count, then per join key, sorted by name: u8 name length, the name, a tag and
the value: ``i`` int64 LE (integers, bools, integral floats), ``s`` u32 length + UTF-8,
``b`` u32 length + bytes. Every part is typed and length-delimited, so the string "1|2",
the pair (1, 2) and the string "1" vs the int 1 are all different keys. A key with a null
value has no encoding (None): no row can match it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from functools import lru_cache
from numbers import Integral
from typing import Any

import pyarrow as pa

from featurestore.errors import InputError
from featurestore.online.values import LITTLE_ENDIAN, fixed_width_slices

__all__ = ["KeyColumns", "cast_key_column", "encode_entity_keys", "entity_key_encoder"]

_U32 = struct.Struct("<I")
_I64 = struct.Struct("<q")


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


def cast_key_column(arr: pa.Array | pa.ChunkedArray) -> tuple[bytes, pa.Array]:
    """A join key column's tag and the column as int64 or large_binary; TypeError or
    pyarrow.ArrowInvalid when it holds something else."""
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
        parts = fixed_width_slices(arr, 8) if LITTLE_ENDIAN else [_I64.pack(v or 0) for v in arr.to_pylist()]
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


class KeyColumns:
    """Join key columns, each passed through ``cast_key_column`` (in ``join_keys`` order),
    encoded a slice of rows at a time."""

    def __init__(self, join_keys: Sequence[str], casts: Sequence[tuple[bytes, pa.Array]]):
        order, self._names = _names(join_keys)
        self._count = bytes([len(order)])
        self._casts = [casts[i] for i in order]

    def encode(self, start: int = 0, length: int | None = None) -> list[bytes | None]:
        """Entity key bytes of the rows ``start:start+length`` (all rows by default), None
        where a key is null; byte-identical to ``entity_key_encoder`` on the same values."""
        per_key = [_key_parts(name, tag, arr if length is None else arr.slice(start, length))
                   for name, (tag, arr) in zip(self._names, self._casts)]
        return _join_keys(self._count, per_key)


def encode_entity_keys(join_keys: Sequence[str], columns: Sequence[pa.Array | pa.ChunkedArray]) -> list[bytes | None]:
    """Entity key bytes of every row of the join key columns (None where a key is null);
    byte-identical to ``entity_key_encoder`` on the same values."""
    return KeyColumns(join_keys, [cast_key_column(c) for c in columns]).encode()
