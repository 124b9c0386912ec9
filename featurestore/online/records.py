"""The record: several named values in one blob (the SQLite store's row, an event's payload).

Layout (docs/online-store.md): u16 count, count u16 name lengths, count u32 value lengths
(0xFFFFFFFF: null), the UTF-8 names, then the values. Names make a stored row
self-describing, like a Redis hash: a view that later reads more or fewer features still
decodes it.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

__all__ = ["decode_record", "encode_record"]

_NULL_LEN = 0xFFFFFFFF


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
