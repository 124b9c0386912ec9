"""A write batch, checked and encoded: what an online store's ``write_batch`` stores.

Every check runs before the first row is encoded, so a store writing what ``encode_batch``
yields writes nothing from a bad batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from featurestore.errors import InputError, SchemaError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.online.entity_keys import KeyColumns, cast_key_column
from featurestore.online.values import cast_column, encode_cast, timestamp_micros

__all__ = ["EncodedBatch", "encode_batch"]


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
    casts = []
    for key in view.join_keys:
        try:
            casts.append(cast_key_column(table.column(key)))
        except (TypeError, pa.ArrowException) as exc:
            raise SchemaError(f"feature view {name!r}: join key column {key!r}: {exc}") from None
    keys = KeyColumns(view.join_keys, casts)
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
    return _encode_slices(keys, micros, values, view.dtypes, max(1, rows))


def _encode_slices(keys: KeyColumns, micros, values, dtypes, rows: int) -> Iterator[EncodedBatch]:
    for start in range(0, len(micros), rows):
        entity_keys = keys.encode(start, rows)
        event_ts = micros.slice(start, rows).to_pylist()
        encoded = [encode_cast(arr.slice(start, rows), dtype) for arr, dtype in zip(values, dtypes)]
        if None in entity_keys:
            kept = [i for i, k in enumerate(entity_keys) if k is not None]
            entity_keys = [entity_keys[i] for i in kept]
            event_ts = [event_ts[i] for i in kept]
            encoded = [[column[i] for i in kept] for column in encoded]
        yield EncodedBatch(entity_keys, event_ts, encoded)
