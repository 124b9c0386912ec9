"""What one logged answer holds and how many of them become Arrow.

A ``LogEntry`` is the raw pieces of one ``/get-online-features`` answer or one finished
``/predict``: made on the request thread, it only keeps references. The writer's thread
gathers entries of the same columns and types (``ColumnGroups``) into one flat list per
column (an ``EntryColumns``), and makes that one table
in the layout of ``layout.py`` (``columns_table``): one ``pa.array`` per column, and the
values that are the same for a whole request (its time, id, model...) one per request,
repeated by its row count in Arrow. Building rows per request (lists of ``[value] * n``,
a table each) cost the writer several times more.

A server worker gathers its entries as they come (``process.py``): the request's objects
are freed at once rather than kept for the collector to walk until a thread sends them,
and they cross to the serving log's process as ``EntryColumns``: flat lists of strings
and numbers pickle fastest, the column names and types once per group, and the process
hands each list to Arrow in one call, with no Python work per request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa

from featurestore.online.read import FieldStatus, OnlineResponse, ReadPlan
from featurestore.serving_log.layout import (
    LATENCY_MS, OUTCOME, PREDICTION, STATUS_SUFFIX, TIME_TYPE, TIMESTAMP_SUFFIX,
)
from featurestore.transforms import request_columns

__all__ = ["ColumnGroups", "EntryColumns", "LogEntry", "columns_table", "columns_tables", "entries_tables",
           "online_log_entry"]


class LogEntry:
    """The rows of ``response`` (its first ``keys`` columns are the join keys, the others
    features) with the request's ``fields`` (columns or entity rows as sent: every name
    that is not a join key is a request field, typed by ``field_types`` or inferred) and,
    for a model, its ``predictions`` (one value or list per row), ``status`` and
    ``latency_ms``, and the ``shadow`` candidate to score the rows with as well (``(uri,
    timeout)``: ``shadow.py``; ``before_model_ms``, the request's time up to its model
    call). What it references must not change once logged."""

    __slots__ = ("response", "keys", "fields", "field_types", "log_time_us", "request_id", "model", "version",
                 "variant", "predictions", "status", "latency_ms", "shadow", "before_model_ms", "rows")

    def __init__(self, response: OnlineResponse, keys: int,
                 fields: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
                 field_types: Mapping[str, pa.DataType] | None = None, *, log_time_us: int, request_id: str,
                 model: str | None = None, version: int | None = None, variant: str = "stable",
                 predictions: Sequence[Any] | None = None, status: str = "ok", latency_ms: float | None = None,
                 shadow: tuple[str, float] | None = None, before_model_ms: float | None = None):
        self.response, self.keys, self.fields, self.field_types = response, keys, fields, field_types
        self.log_time_us, self.request_id = log_time_us, request_id
        self.model, self.version, self.variant = model, version, variant
        self.predictions, self.status, self.latency_ms = predictions, status, latency_ms
        self.shadow, self.before_model_ms = shadow, before_model_ms
        self.rows = len(response.values[0]) if response.values else 0


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


class EntryColumns:
    """The rows of entries of the same columns and types (``ColumnGroups``) as flat lists
    of plain values, one per column, and what their Arrow types are: what
    ``columns_table`` makes a table of. Flat lists of numbers and strings pickle several
    times faster than entries' nested ones and keep nothing for the garbage collector to
    walk, and Arrow takes each in one call."""

    __slots__ = ("names", "dtypes", "keys", "fields", "field_types", "model", "version", "predicted", "counts",
                 "per_request", "per_row", "rows")

    def __init__(self, names, dtypes, keys, fields, field_types, model, version, predicted, counts, per_request,
                 per_row):
        self.names, self.dtypes, self.keys = names, dtypes, keys  # the response's feature names, types, join keys
        self.fields, self.field_types = fields, field_types  # request field names, their given types (or None)
        self.model, self.version, self.predicted = model, version, predicted  # the same for every request
        self.counts = counts  # rows per request
        self.per_request = per_request  # {LogEntry attribute: one value per request}
        # One flat list per column: the join keys, the fields, the features' values, their
        # statuses, their event times, the predictions (columns_table puts them in layout order).
        self.per_row = per_row
        self.rows = sum(counts)

    @classmethod
    def like(cls, entry: LogEntry) -> EntryColumns:
        """No rows yet, in the columns of ``entry`` (its ``fields`` read by ``_request_fields``)."""
        r = entry.response
        predicted = entry.predictions is not None
        lists = entry.keys + len(entry.fields) + 3 * (len(r.feature_names) - entry.keys) + predicted
        return cls(r.feature_names, r.dtypes, entry.keys, list(entry.fields), entry.field_types, entry.model,
                   entry.version, predicted, [], {attr: [] for attr in _PER_REQUEST + (_OUTCOME if predicted else ())},
                   [[] for _ in range(lists)])

    def fits(self, entry: LogEntry) -> bool:
        """Whether ``entry`` (of the same names) has the same types (compared, not hashed: a
        response's come from its read plan, the same objects request after request)."""
        return self.dtypes == entry.response.dtypes and self.field_types == entry.field_types

    def add(self, entry: LogEntry) -> None:
        """Append the rows of ``entry``; raises (and keeps none of them) when a value is not a
        list or a column's length is not the entry's row count."""
        r, keys, end = entry.response, self.keys, self.rows + entry.rows
        values = [*r.values[:keys], *map(entry.fields.__getitem__, self.fields), *r.values[keys:],
                  *r.statuses[keys:], *r.event_timestamps[keys:]]
        if self.predicted:
            values.append(entry.predictions)
        try:
            for _ in map(list.extend, self.per_row, values):  # one C loop, not a Python one per column
                pass
            if self.per_row and {*map(len, self.per_row)} != {end}:
                raise ValueError(f"a column's values are not {entry.rows} (the entity rows)")
        except Exception:
            for column in self.per_row:
                del column[self.rows:]
            raise
        for _ in map(list.append, self.per_request.values(), _REQUEST_VALUES[self.predicted](entry)):
            pass
        self.counts.append(entry.rows)
        self.rows = end

    def requests(self) -> list[EntryColumns]:
        """One ``EntryColumns`` per request (to find the one whose values do not fit)."""
        return [self.select([i]) for i in range(len(self.counts))]

    def select(self, requests: Sequence[int]) -> EntryColumns:
        """The requests at the positions ``requests`` (ascending), in an ``EntryColumns`` of their own."""
        if len(requests) == len(self.counts):
            return self
        starts = np.cumsum([0, *self.counts]).tolist()
        per_row = [[] for _ in self.per_row]
        for i in requests:
            for out, column in zip(per_row, self.per_row):
                out.extend(column[starts[i]:starts[i + 1]])
        return EntryColumns(self.names, self.dtypes, self.keys, self.fields, self.field_types, self.model,
                            self.version, self.predicted, [self.counts[i] for i in requests],
                            {k: [v[i] for i in requests] for k, v in self.per_request.items()}, per_row)

    def response(self) -> OnlineResponse:
        """The online answer the rows were logged from (the join keys PRESENT, without event times)."""
        keys, features, n = self.keys, len(self.names) - self.keys, self.rows
        at = keys + len(self.fields)
        values, statuses, times = (self.per_row[at:at + features], self.per_row[at + features:at + 2 * features],
                                   self.per_row[at + 2 * features:at + 3 * features])
        present = [FieldStatus.PRESENT] * n
        return OnlineResponse(list(self.names), [*self.per_row[:keys], *values], [*[present] * keys, *statuses],
                              [*[[None] * n] * keys, *times], list(self.dtypes))

    def request_fields(self) -> dict[str, list]:
        """The request fields sent, by name (the join keys too)."""
        return dict(zip([*self.names[:self.keys], *self.fields], self.per_row[:self.keys + len(self.fields)]))

    def answered(self, model: str, version: int, predictions: list, statuses: list[str],
                 latencies: list[float | None]) -> EntryColumns:
        """The same requests answered by another version: its ``shadow`` rows, with its
        predictions (one per row) and each request's status and latency."""
        k = len(self.counts)
        per_request = {**self.per_request, "variant": ["shadow"] * k, "status": statuses, "latency_ms": latencies,
                       "shadow": [None] * k, "before_model_ms": [None] * k}
        return EntryColumns(self.names, self.dtypes, self.keys, self.fields, self.field_types, model, version, True,
                            self.counts, per_request, [*self.per_row[:-1], predictions])


_PER_REQUEST = ("log_time_us", "request_id", "variant")
# A model's (the shadow candidate and the time up to the model call are not columns: shadow.py reads them).
_OUTCOME = ("status", "latency_ms", "shadow", "before_model_ms")
_REQUEST_VALUES = {False: attrgetter(*_PER_REQUEST), True: attrgetter(*_PER_REQUEST, *_OUTCOME)}  # by predicted


class ColumnGroups:
    """Entries gathered as they come into ``EntryColumns``, one per group of the same
    columns and types, each of at most ``most`` requests (then the next starts)."""

    def __init__(self, most: int | None = None):
        self.most = most
        self._open: dict[tuple, list[EntryColumns]] = {}  # keyed by names (strings hash fast)

    def add(self, entry: LogEntry) -> EntryColumns | None:
        """Gather ``entry``: the ``EntryColumns`` it started, or None when it joined one; raises
        (and keeps none of its rows) when its request fields cannot be read or a value does
        not fit (``EntryColumns.add``)."""
        entry.fields = _request_fields(entry)
        r = entry.response
        key = (tuple(r.feature_names), entry.keys, tuple(entry.fields), entry.model, entry.version,
               entry.predictions is None)
        same_names = self._open.setdefault(key, [])
        for columns in same_names:
            if columns.fits(entry):
                columns.add(entry)
                if self.most is not None and len(columns.counts) >= self.most:
                    same_names.remove(columns)
                return None
        columns = EntryColumns.like(entry)
        columns.add(entry)
        if self.most is None or self.most > 1:
            same_names.append(columns)
        return columns


def entries_tables(entries: Sequence[LogEntry], unfit: Callable[[int, Exception], None]) -> list[pa.Table]:
    """The tables of ``entries``, one per group of the same columns and types; a request
    whose values cannot be read or do not fit their columns goes to ``unfit(rows, error)``
    instead."""
    groups, started = ColumnGroups(), []
    for entry in entries:
        try:
            started.append(groups.add(entry))
        except Exception as exc:
            unfit(entry.rows, exc)
    return columns_tables([columns for columns in started if columns is not None], unfit)


def columns_tables(batches: Sequence[EntryColumns], unfit: Callable[[int, Exception], None]) -> list[pa.Table]:
    """A table per ``EntryColumns``; a request whose rows do not fit their columns (found
    one at a time) goes to ``unfit(rows, error)`` instead."""
    tables = []
    for columns in batches:
        try:
            tables.append(columns_table(columns))
        except Exception:
            for one in columns.requests():
                try:
                    tables.append(columns_table(one))
                except Exception as exc:
                    unfit(one.rows, exc)
    return tables


def columns_table(columns: EntryColumns) -> pa.Table:
    """The table of ``columns``, in the layout of ``layout.py``."""
    names, dtypes, keys, counts = columns.names, columns.dtypes, columns.keys, columns.counts
    total = sum(counts)
    repeat = None if all(n == 1 for n in counts) else pa.array(np.repeat(np.arange(len(counts)), counts))

    def per_request(values: list, dtype: pa.DataType) -> pa.Array:
        if values.count(values[0]) == len(values):  # the usual case but for the time and id
            return pa.repeat(pa.scalar(values[0], type=dtype), total)
        array = pa.array(values, type=dtype)
        return array if repeat is None else array.take(repeat)

    def per_row(values: list, dtype: pa.DataType | None) -> pa.Array:
        if dtype == pa.string() and values and values.count(values[0]) == len(values):  # e.g. every status PRESENT
            return pa.repeat(pa.scalar(values[0], type=dtype), total)
        return _times(values) if dtype == TIME_TYPE else pa.array(values, type=dtype)

    given = columns.per_request
    out: dict[str, pa.Array] = {
        "log_time": per_request(given["log_time_us"], TIME_TYPE),
        "request_id": per_request(given["request_id"], pa.string()),
        "model": pa.repeat(pa.scalar(columns.model, type=pa.string()), total),
        "version": pa.repeat(pa.scalar(columns.version, type=pa.int64()), total),
        "variant": per_request(given["variant"], pa.string()),
    }
    values = iter(columns.per_row)
    for i in range(keys):
        out[names[i]] = per_row(next(values), _arrow(dtypes[i]))
    field_types = columns.field_types or {}
    for field in columns.fields:
        out[field] = per_row(next(values), field_types.get(field))
    features = range(keys, len(names))
    feature_values, statuses, times = [next(values) for _ in features], [next(values) for _ in features], \
        [next(values) for _ in features]
    for i, value, status, time in zip(features, feature_values, statuses, times):
        out[names[i]] = per_row(value, _arrow(dtypes[i]))
        out[names[i] + STATUS_SUFFIX] = per_row(status, pa.string())
        out[names[i] + TIMESTAMP_SUFFIX] = per_row(time, TIME_TYPE)
    if columns.predicted:
        out[PREDICTION] = per_row(next(values), None)
        out[OUTCOME] = per_request(given["status"], pa.string())
        out[LATENCY_MS] = per_request(given["latency_ms"], pa.float64())
    return pa.table(out)


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
