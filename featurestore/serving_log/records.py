"""What one logged answer holds and how many of them become Arrow.

A ``LogEntry`` is the raw pieces of one ``/get-online-features`` answer or one finished
``/predict``: made on the request thread, it only keeps references. The writer's thread
groups entries of the same columns (``grouped``) and turns each group into one table in
the layout of ``layout.py`` (``entries_table``): per column one flat list across the
group and one ``pa.array``, and the values that are the same for a whole request (its
time, id, model...) one per request, repeated by its row count in Arrow. Building rows
per request (lists of ``[value] * n``, a table each) cost the writer several times more.

An entry crosses to the serving log's process (``process.py``) as a plain tuple
(``entry_message``, turned back by ``message_entry``): lists, strings and numbers pickle
fastest, and the column names and types a read plan shares between requests are pickled
once per batch (pickle keeps one copy of an object it meets twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from typing import Any

import numpy as np
import pyarrow as pa

from featurestore.online.read import OnlineResponse, ReadPlan
from featurestore.serving_log.layout import (
    LATENCY_MS, OUTCOME, PREDICTION, STATUS_SUFFIX, TIME_TYPE, TIMESTAMP_SUFFIX,
)
from featurestore.transforms import request_columns

__all__ = ["LogEntry", "entries_table", "entries_tables", "entry_message", "grouped", "message_entry",
           "online_log_entry"]


class LogEntry:
    """The rows of ``response`` (its first ``keys`` columns are the join keys, the others
    features) with the request's ``fields`` (columns or entity rows as sent: every name
    that is not a join key is a request field, typed by ``field_types`` or inferred) and,
    for a model, its ``predictions`` (one value or list per row), ``status`` and
    ``latency_ms``. What it references must not change once logged."""

    __slots__ = ("response", "keys", "fields", "field_types", "log_time_us", "request_id", "model", "version",
                 "variant", "predictions", "status", "latency_ms", "rows")

    def __init__(self, response: OnlineResponse, keys: int,
                 fields: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 field_types: Mapping[str, pa.DataType] | None = None, *, log_time_us: int, request_id: str,
                 model: str | None = None, version: int | None = None, variant: str = "stable",
                 predictions: Sequence[Any] | None = None, status: str = "ok", latency_ms: float | None = None):
        self.response, self.keys, self.fields, self.field_types = response, keys, fields, field_types
        self.log_time_us, self.request_id = log_time_us, request_id
        self.model, self.version, self.variant = model, version, variant
        self.predictions, self.status, self.latency_ms = predictions, status, latency_ms
        self.rows = len(response.values[0]) if response.values else 0


def entry_message(entry: LogEntry) -> tuple:
    """``entry`` as plain values, for ``message_entry`` in another process."""
    r = entry.response
    return (r.feature_names, r.values, r.statuses, r.event_timestamps, r.dtypes, entry.keys, entry.fields,
            entry.field_types, entry.log_time_us, entry.request_id, entry.model, entry.version, entry.variant,
            entry.predictions, entry.status, entry.latency_ms)


def message_entry(message: tuple) -> LogEntry:
    """The ``LogEntry`` an ``entry_message`` was made of."""
    (names, values, statuses, times, dtypes, keys, fields, field_types, log_time_us, request_id, model, version,
     variant, predictions, status, latency_ms) = message
    return LogEntry(OnlineResponse(names, values, statuses, times, dtypes), keys, fields, field_types,
                    log_time_us=log_time_us, request_id=request_id, model=model, version=version, variant=variant,
                    predictions=predictions, status=status, latency_ms=latency_ms)


def online_log_entry(plan: ReadPlan, response: OnlineResponse,
                     entity_rows: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, log_time_us: int,
                     request_id: str) -> LogEntry:
    """The ``LogEntry`` of an online answer read by ``plan`` for ``entity_rows`` (the
    request fields its on-demand views took come from the rows)."""
    fields: dict[str, list] = {}
    types: dict[str, pa.DataType] = {}
    for transform, _ in plan.transforms:
        if transform.odfv.request_sources:
            fields.update(request_columns(transform.odfv, entity_rows, len(response.values[0]) if response.values else 0))
            types.update({f.name: f.dtype.to_arrow() for r in transform.odfv.request_sources for f in r.schema})
    return LogEntry(response, len(plan.join_keys), fields, types, log_time_us=log_time_us, request_id=request_id)


def grouped(entries: Sequence[LogEntry]) -> tuple[list[list[LogEntry]], list[tuple[LogEntry, Exception]]]:
    """``entries`` in groups of the same columns and types, each group in arrival order,
    and those whose request fields could not be read, with why. Keyed by names (strings
    hash fast); the feature types are compared, not hashed: a response's come from its
    read plan, the same objects request after request."""
    groups: dict[tuple, list[tuple[list, Mapping | None, list[LogEntry]]]] = {}
    unreadable = []
    for entry in entries:
        response = entry.response
        try:
            entry.fields = _request_fields(entry)
        except Exception as exc:
            unreadable.append((entry, exc))
            continue
        key = (tuple(response.feature_names), entry.keys, tuple(entry.fields), entry.model, entry.version,
               entry.predictions is None)
        same_names = groups.setdefault(key, [])
        for dtypes, field_types, members in same_names:
            if dtypes == response.dtypes and field_types == entry.field_types:
                members.append(entry)
                break
        else:
            same_names.append((response.dtypes, entry.field_types, [entry]))
    return [members for same_names in groups.values() for _, _, members in same_names], unreadable


def entries_tables(entries: Sequence[LogEntry], unfit: Callable[[int, Exception], None]) -> list[pa.Table]:
    """The tables of ``entries``, one per group of ``grouped``; a request whose rows do not
    fit their columns (found one at a time) goes to ``unfit(rows, error)`` instead."""
    groups, unreadable = grouped(entries)
    for entry, exc in unreadable:
        unfit(entry.rows, exc)
    tables = []
    for group in groups:
        try:
            tables.append(entries_table(group))
        except Exception:
            for entry in group:
                try:
                    tables.append(entries_table([entry]))
                except Exception as exc:
                    unfit(entry.rows, exc)
    return tables


def entries_table(entries: Sequence[LogEntry]) -> pa.Table:
    """One table of the rows of ``entries``, all of one group of ``grouped``."""
    first = entries[0]
    names, dtypes, keys = first.response.feature_names, first.response.dtypes, first.keys
    counts = [e.rows for e in entries]
    total = sum(counts)
    repeat = None if all(n == 1 for n in counts) else pa.array(np.repeat(np.arange(len(counts)), counts))

    def per_request(values: list, dtype: pa.DataType) -> pa.Array:
        if values.count(values[0]) == len(values):  # the usual case but for the time and id
            return pa.repeat(pa.scalar(values[0], type=dtype), total)
        array = pa.array(values, type=dtype)
        return array if repeat is None else array.take(repeat)

    def per_row(column: Any, dtype: pa.DataType | None) -> pa.Array:  # column(entry) -> the entry's values
        values = list(chain.from_iterable(map(column, entries)))
        if dtype == pa.string() and values and values.count(values[0]) == len(values):  # e.g. every status PRESENT
            return pa.repeat(pa.scalar(values[0], type=dtype), total)
        return _times(values) if dtype == TIME_TYPE else pa.array(values, type=dtype)

    columns: dict[str, pa.Array] = {
        "log_time": per_request([e.log_time_us for e in entries], TIME_TYPE),
        "request_id": per_request([e.request_id for e in entries], pa.string()),
        "model": per_request([e.model for e in entries], pa.string()),
        "version": per_request([e.version for e in entries], pa.int64()),
        "variant": per_request([e.variant for e in entries], pa.string()),
    }
    for i in range(keys):
        columns[names[i]] = per_row(lambda e, i=i: e.response.values[i], _arrow(dtypes[i]))
    field_types = first.field_types or {}
    for field in first.fields:
        columns[field] = per_row(lambda e, f=field: e.fields[f], field_types.get(field))
    for i in range(keys, len(names)):
        columns[names[i]] = per_row(lambda e, i=i: e.response.values[i], _arrow(dtypes[i]))
        columns[names[i] + STATUS_SUFFIX] = per_row(lambda e, i=i: e.response.statuses[i], pa.string())
        columns[names[i] + TIMESTAMP_SUFFIX] = per_row(lambda e, i=i: e.response.event_timestamps[i], TIME_TYPE)
    if first.predictions is not None:
        columns[PREDICTION] = per_row(lambda e: e.predictions, None)
        columns[OUTCOME] = per_request([e.status for e in entries], pa.string())
        columns[LATENCY_MS] = per_request([e.latency_ms for e in entries], pa.float64())
    return pa.table(columns)


def _times(values: list) -> pa.Array:
    """Event times in microseconds (ints, or None when there is none) as ``TIME_TYPE``:
    numpy turns plain ints into an array several times faster than Arrow does."""
    try:
        return pa.array(np.array(values, dtype=np.int64)).view(TIME_TYPE)
    except (TypeError, ValueError, OverflowError):  # a None among them
        return pa.array(values, type=TIME_TYPE)


def _arrow(dtype) -> pa.DataType | None:
    return dtype.to_arrow() if dtype is not None else None


def _request_fields(entry: LogEntry) -> dict[str, list]:
    """The entry's request fields as plain lists: its fields minus the join keys."""
    given = entry.fields
    if not given:
        return {}
    keys = set(entry.response.feature_names[:entry.keys])
    if isinstance(given, Mapping):
        return {k: _plain(v, entry.rows) for k, v in given.items() if k not in keys}
    names = sorted({k for row in given for k in row} - keys)
    return {k: [row.get(k) for row in given] for k in names}


def _plain(values: Any, n: int) -> list:
    """A request field's values as a list of Python values: it may arrive as an Arrow or
    numpy array, a pandas Series, or one value for every row."""
    if isinstance(values, list):
        return values
    for method in ("to_pylist", "tolist"):
        if hasattr(values, method):
            values = getattr(values, method)()
            return values if isinstance(values, list) else [values] * n
    return list(values) if isinstance(values, (tuple, range)) else [values] * n
