"""Events of an aggregation view as the online side keeps them: layout, ids, stored bytes.

An aggregation view's online state is its raw events within the longest window (see
``state.py``). Each event is stored as

- its **entity key** (the online store's encoding, ``online/entity_keys.py``);
- its **event time** in UTC microseconds (the sorted-set score);
- its **event id**: what makes a redelivered event count once. A stream event's id is its
  ``event_id`` field when it has one, else ``{stream}/{entry id}``; a pushed row's is its
  ``_event_id`` column when given, else a random one; a row loaded from the offline store
  keeps its ``_event_id``, or gets ``h:{md5 of the row}:{n}`` (n-th copy of that row);
- its **payload**: a record (``encode_record``) of the aggregated columns' values, encoded
  with the declared types, plus ``@c``, the created time, when the source has one (it
  breaks ties for ``last``). Names are stored so that a view that later reads more or
  fewer columns still decodes old events (an absent column reads as null).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import pyarrow as pa

from featurestore.clock import duration_us
from featurestore.definitions import Aggregation, FeatureView
from featurestore.errors import SchemaError
from featurestore.offline.aggregate_sql import EVENT_ID_COLUMN, FUNCTION_KINDS
from featurestore.online.entity_keys import encode_entity_keys
from featurestore.online.records import decode_record, encode_record
from featurestore.online.values import encode_column, timestamp_micros, value_decoder
from featurestore.types import FeatureType

__all__ = ["CREATED", "EVENT_ID_COLUMN", "ViewLayout", "column_ids", "encode_events", "fill_ids", "new_event_ids"]

#: The payload field holding the created time (µs), when the source has one.
CREATED = "@c"
_I64 = struct.Struct("<q")
_KINDS = {"Int32": "int", "Int64": "int", "Float32": "float", "Float64": "float", "String": "string",
          "Bool": "bool", "UnixTimestamp": "time"}


@dataclass(frozen=True)
class ViewLayout:
    """What the online side needs of an aggregation view: which columns its events carry
    (with their declared types), its aggregations, and its longest window."""

    name: str
    join_keys: tuple[str, ...]
    aggregations: tuple[Aggregation, ...]
    columns: tuple[str, ...]
    dtypes: tuple[FeatureType, ...]
    timestamp_field: str
    created_field: str | None
    longest_us: int

    @staticmethod
    def of(view: FeatureView) -> ViewLayout:
        return _layout(view)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(_KINDS[d.name] for d in self.dtypes)

    def payload_decoder(self) -> Callable[[bytes], tuple[tuple, int | None]]:
        """bytes -> (values in ``columns`` order, created µs or None)."""
        return _decoder(self)


@lru_cache(maxsize=256)
def _layout(view: FeatureView) -> ViewLayout:
    if not view.aggregations:
        raise SchemaError(f"feature view {view.name!r} has no aggregations")
    declared = {f.name: f.dtype for f in view.schema}
    columns = tuple(dict.fromkeys(a.column for a in view.aggregations))
    for agg in view.aggregations:
        kind = _KINDS.get(declared[agg.column].name)  # arrays and bytes: None
        if kind not in FUNCTION_KINDS[agg.function]:
            raise SchemaError(
                f"feature view {view.name!r}: aggregation {agg.name!r} ({agg.function}) cannot read column "
                f"{agg.column!r} of type {declared[agg.column]}; {agg.function} takes "
                f"{' or '.join(FUNCTION_KINDS[agg.function])} columns"
            )
    longest = duration_us(max(a.time_window for a in view.aggregations))
    source = view.batch_source
    return ViewLayout(view.name, view.join_keys, view.aggregations, columns,
                      tuple(declared[c] for c in columns), source.timestamp_field,
                      source.created_timestamp_field, longest)


@lru_cache(maxsize=256)
def _decoder(layout: ViewLayout) -> Callable[[bytes], tuple[tuple, int | None]]:
    decoders = []
    for dtype in layout.dtypes:
        if dtype.name == "UnixTimestamp":  # kept as µs: compared as integers, output as datetime
            decoders.append(lambda b: _I64.unpack(b)[0])
        else:
            decoders.append(value_decoder(dtype))
    pairs = list(zip(layout.columns, decoders))

    def decode(blob: bytes) -> tuple[tuple, int | None]:
        record = decode_record(blob)
        values = tuple(None if (raw := record.get(c)) is None else d(raw) for c, d in pairs)
        created = record.get(CREATED)
        return values, (_I64.unpack(created)[0] if created is not None else None)

    return decode


def new_event_ids(n: int) -> list[bytes]:
    """Fresh ids for events that came without one (a push without ``_event_id``)."""
    return [uuid.uuid4().hex.encode() for _ in range(n)]


def encode_events(layout: ViewLayout, table: pa.Table) -> tuple[list[bytes | None], list[int], list[bytes]]:
    """The entity keys (None where a key is null), event times (µs) and payloads of the
    rows of ``table``, which has the view's join keys, timestamp field and columns (and
    the created field when the source has one) already cast to their declared types."""
    keys = encode_entity_keys(layout.join_keys, [table.column(k) for k in layout.join_keys])
    micros = timestamp_micros(table.column(layout.timestamp_field))
    if micros.null_count:
        raise SchemaError(f"events of view {layout.name!r} need a {layout.timestamp_field!r}; some have none")
    names = [c.encode() for c in layout.columns]
    columns = [encode_column(table.column(c), d) for c, d in zip(layout.columns, layout.dtypes)]
    # Fixed-width values without nulls all have one length: then every record has the same head.
    widths = [_WIDTHS.get(d.name) if table.column(c).null_count == 0 else None
              for c, d in zip(layout.columns, layout.dtypes)]
    created_field = layout.created_field
    if created_field and created_field in table.column_names:
        created = timestamp_micros(table.column(created_field))
        names.append(CREATED.encode())
        columns.append([None if c is None else _I64.pack(c) for c in created.to_pylist()])
        widths.append(8 if created.null_count == 0 else None)
    return keys, micros.to_pylist(), _records(names, columns, widths, table.num_rows)


_WIDTHS = {"Int32": 4, "Int64": 8, "Float32": 4, "Float64": 8, "Bool": 1, "UnixTimestamp": 8}


def _records(names: list[bytes], columns: list[list[bytes | None]], widths: list[int | None], n: int) -> list[bytes]:
    """``encode_record`` of every row, the head built once when every width is known."""
    if not columns:
        return [encode_record(names, ())] * n
    if None in widths:
        return [encode_record(names, row) for row in zip(*columns)]
    head = encode_record(names, [b"\0" * w for w in widths])[: -sum(widths) or None]
    join = b"".join
    return [head + join(row) for row in zip(*columns)]


def column_ids(column: pa.ChunkedArray | pa.Array) -> list[bytes | None]:
    """Event ids from an ``_event_id`` column (text or bytes; null where missing)."""
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        return column.to_pylist()
    return [None if v is None else str(v).encode() for v in column.to_pylist()]


def fill_ids(ids: Sequence[bytes | None] | None, n: int) -> list[bytes]:
    """``ids`` with fresh ones where missing (all fresh when ``ids`` is None)."""
    if ids is None:
        return new_event_ids(n)
    return [i if i else uuid.uuid4().hex.encode() for i in ids]
