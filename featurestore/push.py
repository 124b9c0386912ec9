"""Push: rows sent by clients, checked against the views' schemas, then written.

Everything is validated and cast before anything is written, so bad input changes
nothing. The online write comes first because it is idempotent (newer-timestamp-wins);
the offline append is one atomic Parquet file, so a retried push after a failure between
the two cannot leave a half-written file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from featurestore.clock import TimeRange, check_spellable, clock_us, to_utc
from featurestore.definitions import FeatureView, FileSource, PushSource
from featurestore.documents import document_array, is_document
from featurestore.errors import InputError, NotFoundError, SchemaError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineStore
from featurestore.online.base import online_view
from featurestore.source_tables import same_batch_views, write_pushed
from featurestore.streaming.events import EVENT_ID_COLUMN, column_ids, fill_ids
from featurestore.streaming.ingest import add_events
from featurestore.types import arrow_kind, from_arrow

__all__ = ["PUSH_TARGETS", "PushMode", "PushResult", "push_rows", "push_to_source", "rows_to_arrow", "write_view_rows"]

PUSH_TARGETS = ("online", "offline", "online_and_offline")


class PushMode(str, Enum):
    """Feast's ``to=`` values for ``store.push``; the strings work as well."""

    ONLINE = "online"
    OFFLINE = "offline"
    ONLINE_AND_OFFLINE = "online_and_offline"


def rows_to_arrow(data: Any) -> pa.Table:
    """Pushed rows as Arrow: a dict of columns, a list of row dicts, Arrow, polars or pandas."""
    if isinstance(data, pa.Table):
        return data
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return data.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    try:
        if isinstance(data, Mapping):
            return pa.table({k: list(v) if isinstance(v, (list, tuple)) else [v] for k, v in data.items()})
        if isinstance(data, list):
            if not all(isinstance(row, Mapping) for row in data):
                raise InputError("pushed rows given as a list must each be a mapping of column -> value")
            return pa.Table.from_pylist(data)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        raise InputError(f"pushed rows are not a table of uniform columns: {exc}") from None
    raise InputError(
        f"pushed rows of type {type(data).__name__} are not supported; send a dict of columns, "
        "a list of row dicts, or an Arrow/polars/pandas table"
    )


def _conform(table: pa.Table, views: list[FeatureView], source: PushSource | FileSource, times: TimeRange,
             also: list[FeatureView] = ()) -> pa.Table:
    """The pushed table with the columns ``views`` read, each cast to its declared type, its
    event (and created) times within ``times`` and its other times spellable. Columns of the
    views in ``also`` are kept when given; columns no view reads are dropped, as Feast does."""
    if table.num_rows == 0:
        raise InputError(f"push to {source.name!r} has no rows")
    ts_field = source.timestamp_field
    wanted: dict[str, pa.DataType] = {ts_field: pa.timestamp("us", tz="UTC")}
    if source.created_timestamp_field:
        wanted[source.created_timestamp_field] = pa.timestamp("us", tz="UTC")
    optional = {source.created_timestamp_field}
    for view in [*views, *also]:
        for f in view.schema:
            if view in also and f.name not in wanted:
                optional.add(f.name)
            wanted.setdefault(f.name, f.dtype.to_arrow())
        for key in view.join_keys:
            wanted.setdefault(key, table.schema.field(key).type if key in table.column_names else pa.int64())
    columns, names = [], []
    for name, dtype in wanted.items():
        if name not in table.column_names and name in optional and name != source.created_timestamp_field:
            continue  # read only by a view of the same batch source: its rows get nulls there
        if name not in table.column_names:
            if name in optional:
                now = pa.scalar(clock_us(times.clock), pa.int64()).cast(dtype)  # the store's clock
                columns.append(pa.array([now] * table.num_rows, type=dtype))
                names.append(name)
                continue
            required = ", ".join(n for n in wanted if n not in optional)
            raise SchemaError(f"push to {source.name!r} is missing column {name!r}; it needs {required}"
                              + "".join(f" ({n} is optional)" for n in wanted if n in optional))
        column = table.column(name)
        if is_document(dtype):  # Map, Json, Struct: dicts or JSON text, whatever Arrow inferred
            try:
                column = document_array(column.to_pylist(), dtype)
            except ValueError as exc:
                raise SchemaError(f"push to {source.name!r}: column {name!r} holds a value that is not "
                                  f"{from_arrow(dtype)} ({exc}); send objects or JSON text") from None
        else:
            _check_kind(column.type, dtype, name, source.name)
        if pa.types.is_timestamp(dtype) and pa.types.is_string(column.type):
            column = _parse_times(column, name, source.name)
        elif pa.types.is_timestamp(dtype) and (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            # Arrow would read the numbers as microseconds: 1714564800 s would become 1970.
            raise SchemaError(
                f"push to {source.name!r}: column {name!r} holds numbers, not times; send ISO 8601 "
                "strings (naive times are UTC) or datetimes"
            )
        try:
            column = column.cast(dtype) if column.type != dtype else column
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise SchemaError(
                f"push to {source.name!r}: column {name!r} is {from_arrow(column.type) or column.type} "
                f"but the view declares {from_arrow(dtype) or dtype}; send values of that type"
            ) from None
        columns.append(column)
        names.append(name)
    if table.column(ts_field).null_count:
        raise InputError(f"push to {source.name!r}: column {ts_field!r} has nulls; every row needs an event time")
    conformed = pa.Table.from_arrays(columns, names=names)
    _check_times(conformed, {ts_field, source.created_timestamp_field}, source.name, times)
    return conformed


def _check_times(table: pa.Table, event_fields: set, source: str, times: TimeRange) -> None:
    """InputError unless the event and created times are in ``times`` and every other time
    (UnixTimestamp values, list items too) is within the years 1..9999."""
    bounds = times.bounds_us()
    for name in table.column_names:
        column = table.column(name)
        while pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            column = pc.list_flatten(column)
        if not pa.types.is_timestamp(column.type) or len(column) == column.null_count:
            continue
        extremes = pc.min_max(column.cast(pa.int64()))
        for us in (extremes["min"].as_py(), extremes["max"].as_py()):
            what = f"push to {source!r}: a time in column {name!r}"
            if name in event_fields:
                times.check_us(us, what, bounds)
            else:
                check_spellable(us, what)


# Which kinds of pushed values may fill a column of each declared kind. Strict, as JSON
# spells types: a boolean is not a number, a string is not a number, a number is not a
# string. Numbers fill numbers (a float fills an integer column only when it is whole: the
# safe cast refuses 7.5); a time column takes times or ISO 8601 strings; nulls fill anything.
_FILLS = {
    "bool": {"bool"},
    "integer": {"integer", "float"},
    "float": {"integer", "float"},
    "string": {"string"},
    "binary": {"binary", "string"},
    "time": {"time", "string"},
}
_SEND = {"bool": "true or false", "integer": "whole numbers", "float": "numbers", "string": "strings",
         "binary": "bytes or strings", "time": "ISO 8601 strings (naive times are UTC) or datetimes"}


def _check_kind(given: pa.DataType, declared: pa.DataType, name: str, source: str) -> None:
    """A SchemaError unless values of Arrow type ``given`` may fill a column ``declared``."""
    have, want = arrow_kind(given), arrow_kind(declared)
    if have == "null":
        return
    if want == "list" and have == "list":
        return _check_kind(given.value_type, declared.value_type, f"{name} (items)", source)
    if have in _FILLS.get(want, ()):
        return
    raise SchemaError(
        f"push to {source!r}: column {name!r} is {from_arrow(given) or given} but the view declares "
        f"{from_arrow(declared) or declared}; send {_SEND.get(want, 'lists of values')}"
    )


def _parse_times(column: pa.ChunkedArray, name: str, source: str) -> pa.ChunkedArray:
    try:
        parsed = [None if v is None else datetime.fromisoformat(v.replace("Z", "+00:00")) for v in column.to_pylist()]
        parsed = [to_utc(p) if p is not None else p for p in parsed]
        return pa.chunked_array([pa.array(parsed, type=pa.timestamp("us", tz="UTC"))])
    except (ValueError, AttributeError, TypeError):
        raise SchemaError(f"push to {source!r}: column {name!r} holds text that is not an ISO 8601 time") from None
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        raise InputError(f"push to {source!r}: column {name!r} holds a time outside the years 1..9999 in UTC") from None


@dataclass(frozen=True)
class PushResult:
    """Rows pushed, and per aggregation view the events dropped online as older than its
    longest window (they still reach the offline store)."""

    rows: int
    late: dict[str, int] = field(default_factory=dict)


def push_to_source(store, push_source_name: str, data: Any, to: str) -> PushResult:
    """``store.push``: the push source by name, the views it feeds, then ``push_rows``
    with the store's online store (unless ``to="offline"``) and aggregation state."""
    contents = store.contents
    source = contents.sources.get(push_source_name)
    if not isinstance(source, PushSource):
        pushes = [n for n, s in contents.sources.items() if isinstance(s, PushSource)]
        raise NotFoundError("push source", push_source_name, pushes)
    views = [v for v in contents.feature_views.values()
             if isinstance(v.source, PushSource) and v.source.name == source.name]
    to = to.value if isinstance(to, PushMode) else to
    online = store.online if to != "offline" else None
    state = store.aggregation_state if online is not None and any(v.aggregations for v in views) else None
    also = same_batch_views(source, contents.feature_views.values(), store.repo_path)
    return push_rows(source, views, data, to, online, store.config.offline_store, state=state, times=store.times,
                     also=also)


def push_rows(
    source: PushSource,
    views: list[FeatureView],
    data: Any,
    to: str,
    online: OnlineStore | None,
    offline_root: Path,
    *,
    state: Any = None,
    times: TimeRange = TimeRange(),
    also: list[FeatureView] = (),
) -> PushResult:
    """Validate and write pushed rows; returns how many, and how many were too late.

    For views with aggregations the rows are events: each has an id (its ``_event_id``
    when the push gives that column, so a retried push counts once; else a new one), goes
    to the view's aggregation ``state`` unless it is older than the longest window as of
    now (``times.clock``; featurestore/streaming/ingest.py), and the offline file keeps the
    ids. Event times outside ``times`` are refused (featurestore/clock.py: TimeRange).
    ``also`` are the other views reading the push source's batch source: an offline push
    reaches them too (source_tables.py), so the columns they read are kept."""
    to = to.value if isinstance(to, PushMode) else to
    if to not in PUSH_TARGETS:
        raise InputError(f"push target {to!r} is not valid; use one of {', '.join(PUSH_TARGETS)}")
    if not views:
        raise InputError(f"push source {source.name!r} feeds no feature view; apply a view that uses it")
    table = rows_to_arrow(data)
    aggregated = any(v.aggregations for v in views)
    given = None
    if aggregated and EVENT_ID_COLUMN in table.column_names:
        given = column_ids(table.column(EVENT_ID_COLUMN))
        table = table.drop_columns([EVENT_ID_COLUMN])
    table = _conform(table, views, source, times, also if to != "online" else [])
    ids = fill_ids(given, table.num_rows) if aggregated else None
    late: dict[str, int] = {}
    if to in ("online", "online_and_offline"):
        for view in views:
            if view.online and view.aggregations:
                late[view.name] = add_events(state, view, table, ids, clock_us(times.clock)).late
            elif view.online:
                _write_online(online, view, table, source.timestamp_field)
    if to in ("offline", "online_and_offline"):
        if ids is not None:
            table = table.append_column(EVENT_ID_COLUMN, pa.array([i.decode() for i in ids], pa.string()))
        write_pushed(offline_root, source.name, table)
    return PushResult(table.num_rows, late)


def write_view_rows(view: FeatureView, data: Any, online: OnlineStore, *, times: TimeRange = TimeRange()) -> int:
    """Feast's ``write_to_online_store``: rows of one view straight into the online store
    (newer event time wins), checked as a push is. Feast's clients name the times
    ``event_timestamp`` and ``created`` whatever the source calls them; both spellings work."""
    if view.aggregations:
        raise InputError(
            f"feature view {view.name!r} aggregates events: push them to its push source instead "
            "(POST /push or store.push), so its windows count them"
        )
    if not view.online:
        raise InputError(f"feature view {view.name!r} is offline only (online=False); set online=True and apply")
    source = view.batch_source
    table = rows_to_arrow(data)
    for theirs, ours in ((EVENT_TIMESTAMP, source.timestamp_field), ("created", source.created_timestamp_field)):
        if ours and ours != theirs and ours not in table.column_names and theirs in table.column_names:
            table = table.rename_columns([ours if c == theirs else c for c in table.column_names])
    table = _conform(table, [view], source, times)
    _write_online(online, view, table, source.timestamp_field)
    return table.num_rows


def _write_online(online: OnlineStore, view: FeatureView, table: pa.Table, ts_field: str) -> None:
    if ts_field != EVENT_TIMESTAMP:
        table = table.append_column(EVENT_TIMESTAMP, table.column(ts_field))
    target = online_view(view)
    online.write_batch(target, table.select([*target.join_keys, *target.features, EVENT_TIMESTAMP]))
