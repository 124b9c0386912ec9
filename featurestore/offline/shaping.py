"""What the offline engines share around their queries: the checks of a request against
its source's files, the types of the answer, and putting it back in entity order.

Every engine refuses the same bad requests with the same ``SchemaError`` (naming the
view, the column and the files) before its query engine runs, and returns the same Arrow
types, so a switch of engine changes neither the errors nor the schema of a training set.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa

from featurestore.clock import to_utc
from featurestore.errors import InputError, SchemaError
from featurestore.offline.aggregate_sql import check_aggregations, output_types
from featurestore.offline.base import ViewRequest
from featurestore.offline.conform import conform, declared_types, targets
from featurestore.offline.entity_set import check_entities, check_key_type, days, is_time
from featurestore.offline.pit_sql import Window
from featurestore.offline.scan import Scan

__all__ = ["cast_like", "check_latest", "check_request", "check_source", "conformer", "feature_types", "in_entity_order"]


def check_request(entities: pa.Table | pa.RecordBatch, timestamp_column: str, views: Sequence[ViewRequest],
                  scan: Callable[..., Scan]) -> tuple[pa.Table, Window | None, list[str], list[Scan]]:
    """A point-in-time request checked: the entity rows as a Table, the span of their
    times, every join key once, and each view's source resolved by ``scan(view, join_keys,
    days)`` (the engine's: it checks the view against the files) with its key types checked."""
    if isinstance(entities, pa.RecordBatch):
        entities = pa.Table.from_batches([entities])
    window = check_entities(entities, timestamp_column, views)
    keys = list(dict.fromkeys(k for v in views for k in v.join_keys))
    scans = []
    for view in views:
        found = scan(view, view.join_keys, days(window, view))
        for key in view.join_keys:
            check_key_type(view, key, entities.schema.field(key).type, found.schema.field(key).type)
        scans.append(found)
    return entities, window, keys, scans


def check_latest(view: ViewRequest, start: datetime | None, end: datetime,
                 scan: Callable[..., Scan]) -> tuple[Scan, pa.Schema, list]:
    """A latest-rows request checked: the source resolved by ``scan(view, days=...)`` (only
    the days the window needs; an aggregation's windows reach back before ``start``), the
    output schema (join keys, features, ``event_timestamp``) and one function per column
    making a column of the answer its type."""
    first = to_utc(start) if start else None
    if first and view.aggregations:
        first = min(first, to_utc(end) - max(a.time_window for a in view.aggregations))
    found = scan(view, days=(first.date() if first else None, to_utc(end).date()))
    names = [*view.join_keys, *view.features, "event_timestamp"]
    if len(set(names)) != len(names):
        raise InputError(f"view {view.name!r}: a join key or feature is named like another column: {names}")
    declared = declared_types(view)
    key_types = targets(view, view.join_keys, [found.schema.field(c).type for c in view.join_keys])
    features, fit_features = feature_types(view, found)
    types = key_types + features + [pa.timestamp("us", tz="UTC")]
    fit = [*(conformer(view, k, declared.get(k)) for k in view.join_keys), *fit_features, cast_like]
    return found, pa.schema([pa.field(n, t) for n, t in zip(names, types)]), fit


def check_source(view: ViewRequest, scan: Scan) -> None:
    """Every file has the keys and timestamps; the union has every feature (or every
    aggregated column, suiting its function)."""
    src = view.source
    required = [*view.join_keys, src.timestamp_field, *filter(None, [src.created_timestamp_field])]
    for path, schema in scan.file_schemas.items():
        for column in required:
            if column not in schema.names:
                raise SchemaError(f"view {view.name!r}: column {column!r} is missing from {path!r}; "
                                  f"its columns are {schema.names}")
    for column in (src.timestamp_field, src.created_timestamp_field):
        dtype = scan.schema.field(column).type if column else None
        if column and not is_time(dtype):
            raise SchemaError(f"view {view.name!r}: timestamp column {column!r} is {dtype} in "
                              f"{list(scan.file_schemas)}; it must be a timestamp or date")
    if view.aggregations:
        check_aggregations(view, scan)
        return
    for feature in view.features:
        if feature not in scan.schema.names:
            raise SchemaError(f"view {view.name!r}: feature column {feature!r} is not in "
                              f"{', '.join(map(repr, scan.file_schemas))}; its columns are {scan.schema.names}")


def feature_types(view: ViewRequest, scan: Scan) -> tuple[list[pa.DataType], list]:
    """The Arrow type of each requested feature and the function making a column so."""
    if view.aggregations:
        types = output_types(view, scan)
        return types, [cast_like] * len(types)
    declared = declared_types(view)
    types = targets(view, view.features, [scan.schema.field(f).type for f in view.features])
    return types, [conformer(view, f, declared.get(f)) for f in view.features]


def conformer(view: ViewRequest, column: str, declared):
    """The function making ``column``'s values the target type (``conform``)."""
    return lambda values, target: conform(view, column, values, target, declared)


def in_entity_order(table: pa.Table) -> pa.Table:
    """The columns after the first in entity order: column 0 holds each row's entity row
    number, a permutation of 0..n-1 (one scatter and one take)."""
    rn = table.column(0).to_numpy()
    order = np.empty(len(rn), dtype=np.int64)
    order[rn] = np.arange(len(rn), dtype=np.int64)
    return table.drop_columns([table.column_names[0]]).take(pa.array(order))


def cast_like(column: pa.ChunkedArray | pa.Array, dtype: pa.DataType):
    """A query engine's column as the source's Arrow type (tz, unit, width), when Arrow can."""
    if column.type == dtype:
        return column
    try:
        return column.cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return column
