"""The SQL (DuckDB dialect) of windowed aggregations: as of each entity row's time, and as
of one time for every entity.

The rule, enforced here for the batch side and in ``featurestore/streaming/aggregate.py``
for the online side (docs/streaming.md says it for users):

- an aggregation ``(column, function, window)`` as of T covers the events with the
  entity's keys and ``T - window < event_timestamp <= T`` whose ``column`` is not null
  (float NaN and +-inf count as null); timestamps are compared as UTC microseconds;
- ``count`` is their number (0 for an empty window); every other function is null for an
  empty window; an entity row without a time gets nulls (count too: there is no window);
- ``sum`` of integers is exact, null when it overflows the column's type. ``sum`` of
  floats must not depend on the order of the additions (DuckDB's window trees and the
  online side add in different orders, and plain float sums differ in the last bits), so
  it is computed exactly: each value is split into an integer multiple of 2**-32 (rounded
  half away from zero) and an integer multiple of 2**-96 (the rest, rounded likewise),
  the two are summed exactly as 128-bit integers, and the total is
  ``to_double(high) / 2**32 + to_double(rest) / 2**96`` (``to_double`` below). That is the
  exact sum to within a unit in the last place, identical on both sides; values below
  2**-96 are lost, and values of magnitude 2**63 or more are left out of sums and means;
- ``mean`` is that total (before any cast to Float32) divided by the number of values it adds;
- ``min``/``max`` compare numbers, strings (by UTF-8 bytes), bools and timestamps; -0.0
  counts as 0.0; ``last`` is the value of the event with the greatest (event time, created
  time, value), a null created time being the least;
- rows of the source that share a non-null ``_event_id`` (the id a stream or push gave
  the event; a redelivered event is appended offline again) count once.

How it runs: the entity rows are appended to the events (values null, so no aggregate
sees them) and every aggregation is a window function over ``PARTITION BY keys ORDER BY
event microseconds RANGE BETWEEN window - 1 PRECEDING AND CURRENT ROW``: with integer
microseconds that frame is exactly ``(T - window, T]``, and ``CURRENT ROW`` takes in the
events at T itself (its peers). One sort per distinct window, then segment trees: no
per-row Python and no per-row join fan-out. Events are first cut to the entity set's keys
and to ``(min T - longest window, max T]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa

from featurestore.clock import duration_us, to_micros
from featurestore.definitions import Aggregation
from featurestore.errors import SchemaError
from featurestore.offline.base import ViewRequest
from featurestore.offline.pit_sql import ENTITY_TABLE, Window, window_where
from featurestore.offline.scan import Scan, epoch_us_sql, ident, scan_sql

__all__ = [
    "EVENT_ID_COLUMN",
    "FUNCTION_KINDS",
    "REST_SCALE",
    "SUM_LIMIT",
    "SUM_SCALE",
    "aggregate_events_sql",
    "aggregate_pit_sql",
    "aggregate_latest_sql",
    "aggregation_columns",
    "check_aggregations",
    "output_types",
    "to_double",
]

#: The offline column holding an event's id (null for rows that never had one).
EVENT_ID_COLUMN = "_event_id"
#: A float value is summed as an integer multiple of 1 / SUM_SCALE plus an integer
#: multiple of 1 / REST_SCALE (what the first leaves over, which is smaller than 2**-33).
SUM_SCALE = 2**32
REST_SCALE = 2**96
_MIN_BIGINT = -(2**63)
#: Float values of this magnitude or more are left out of sums and means (no fixed point).
SUM_LIMIT = 2.0**63


def to_double(total: int) -> float:
    """A 128-bit integer as a double, exactly as ``_to_double_sql`` computes it: correctly
    rounded within 64 bits; beyond that ``hi * 2**64 + (mid * 2**32 + lo)`` in doubles."""
    if -(2**63) <= total < 2**63:
        return float(total)
    low = total & (2**64 - 1)
    return float(total >> 64) * 18446744073709551616.0 + (float(low >> 32) * 4294967296.0 + float(low & 0xFFFFFFFF))


def _double(x: float) -> str:
    """A DOUBLE literal (a bare ``4294967296.0`` would be a DECIMAL)."""
    return f"CAST('{float(x)!r}' AS DOUBLE)"


def _to_double_sql(total: str) -> str:
    low = f"({total} & CAST(18446744073709551615 AS HUGEINT))"
    return (
        f"CASE WHEN {total} BETWEEN -9223372036854775808 AND 9223372036854775807 "
        f"THEN CAST(CAST({total} AS BIGINT) AS DOUBLE) "
        f"ELSE CAST(CAST({total} >> 64 AS BIGINT) AS DOUBLE) * {_double(2.0**64)} "
        f"+ (CAST(CAST({low} >> 32 AS BIGINT) AS DOUBLE) * {_double(2.0**32)} "
        f"+ CAST(CAST({low} & CAST(4294967295 AS HUGEINT) AS BIGINT) AS DOUBLE)) END"
    )


# -- checks and types -----------------------------------------------------------------


def _kind(dtype: pa.DataType) -> str | None:
    if pa.types.is_integer(dtype):
        return "int"
    if pa.types.is_floating(dtype):
        return "float"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "string"
    if pa.types.is_boolean(dtype):
        return "bool"
    if pa.types.is_timestamp(dtype):
        return "time"
    return None


#: The column kinds each function takes.
FUNCTION_KINDS = {
    "sum": ("int", "float"),
    "mean": ("int", "float"),
    "min": ("int", "float", "string", "bool", "time"),
    "max": ("int", "float", "string", "bool", "time"),
    "last": ("int", "float", "string", "bool", "time"),
    "count": ("int", "float", "string", "bool", "time"),
}


def aggregation_columns(view: ViewRequest) -> list[str]:
    """The distinct source columns the view's aggregations read, in first-use order."""
    return list(dict.fromkeys(a.column for a in view.aggregations))


def _requested(view: ViewRequest) -> list[Aggregation]:
    by_name = {a.name: a for a in view.aggregations}
    missing = [f for f in view.features if f not in by_name]
    if missing:
        raise SchemaError(
            f"view {view.name!r}: {missing} are not aggregations of the view; it has {list(by_name)}"
        )
    return [by_name[f] for f in view.features]


def check_aggregations(view: ViewRequest, scan: Scan) -> None:
    """Every aggregated column exists in the source and suits its function."""
    names = scan.schema.names
    for agg in _requested(view):
        if agg.column not in names:
            raise SchemaError(
                f"view {view.name!r}: aggregation {agg.name!r} reads column {agg.column!r}, which is not in "
                f"the source; its columns are {names}"
            )
        dtype = scan.schema.field(agg.column).type
        if _kind(dtype) not in FUNCTION_KINDS[agg.function]:
            raise SchemaError(
                f"view {view.name!r}: aggregation {agg.name!r} ({agg.function}) cannot read column "
                f"{agg.column!r} of type {dtype}; {agg.function} takes "
                f"{' or '.join(FUNCTION_KINDS[agg.function])} columns"
            )


def output_types(view: ViewRequest, scan: Scan) -> list[pa.DataType]:
    """The Arrow type of each requested aggregation: count int64, mean float64, others the
    source column's type."""
    out = []
    for agg in _requested(view):
        if agg.function == "count":
            out.append(pa.int64())
        elif agg.function == "mean":
            out.append(pa.float64())
        else:
            out.append(scan.schema.field(agg.column).type)
    return out


# -- building blocks --------------------------------------------------------------------


def _value_sql(column: str, dtype: pa.DataType) -> str:
    """The value as aggregated: floats normalized (-0.0 to 0.0, NaN and +-inf to null)."""
    if pa.types.is_floating(dtype):
        return f"CASE WHEN isfinite({column}) THEN CAST({column} AS DOUBLE) + 0.0 END"
    if pa.types.is_timestamp(dtype):
        return f"CAST({column} AS {'TIMESTAMPTZ' if dtype.tz else 'TIMESTAMP'})"
    return column


def _events_sql(view: ViewRequest, scan: Scan, where: str = "", keys_in: str | None = None,
                scan_where: str = "") -> str:
    """One row per event: keys ``__k*``, ``__ts``/``__c`` (event/created µs), values ``__v*``;
    rows with a null key or time dropped, copies of an event id dropped. ``where`` filters
    on those columns, ``scan_where`` (`` WHERE ...``) on the source's own; ``keys_in``
    names a relation whose ``__k*`` the keys must be in."""
    source = view.source
    columns = aggregation_columns(view)
    schema = scan.schema
    ts = source.timestamp_field
    created = source.created_timestamp_field if source.created_timestamp_field in schema.names else None
    has_id = EVENT_ID_COLUMN in schema.names
    needed = list(dict.fromkeys([*view.join_keys, ts, *filter(None, [created]), *columns,
                                 *([EVENT_ID_COLUMN] if has_id else [])]))
    select = [f"{ident(k)} AS __k{i}" for i, k in enumerate(view.join_keys)]
    select.append(f"{epoch_us_sql(ident(ts), schema.field(ts).type)} AS __ts")
    select.append(f"{epoch_us_sql(ident(created), schema.field(created).type)} AS __c" if created
                  else "CAST(NULL AS BIGINT) AS __c")
    select += [f"{_value_sql(ident(c), schema.field(c).type)} AS __v{j}" for j, c in enumerate(columns)]
    if has_id:
        select.append(f"CAST({ident(EVENT_ID_COLUMN)} AS VARCHAR) AS __id")
    conds = [f"{ident(k)} IS NOT NULL" for k in view.join_keys] + [f"{ident(ts)} IS NOT NULL"]
    rows = f"SELECT {', '.join(select)} FROM ({scan_sql(scan, needed, scan_where)}) WHERE {' AND '.join(conds)}"
    rows = f"SELECT * FROM ({rows}){' WHERE ' + where if where else ''}"
    if keys_in and view.join_keys:
        on = " AND ".join(f"r.__k{i} = s.__k{i}" for i in range(len(view.join_keys)))
        rows = f"SELECT r.* FROM ({rows}) r SEMI JOIN {keys_in} s ON {on}"
    if not has_id:
        return rows
    keep = ", ".join(["__k" + str(i) for i in range(len(view.join_keys))] + ["__ts", "__c"]
                     + [f"__v{j}" for j in range(len(columns))])
    return (
        f"SELECT {keep} FROM ({rows}) WHERE __id IS NULL UNION ALL "
        f"SELECT {keep} FROM ({rows}) WHERE __id IS NOT NULL "
        f"QUALIFY row_number() OVER (PARTITION BY __id ORDER BY __ts, __c) = 1"
    )


def _summed_floats(view: ViewRequest, scan: Scan) -> list[int]:
    """Indexes (into ``aggregation_columns``) of float columns that a sum or mean reads."""
    columns = aggregation_columns(view)
    return sorted({columns.index(a.column) for a in _requested(view)
                   if a.function in ("sum", "mean") and pa.types.is_floating(scan.schema.field(a.column).type)})


def _with_splits(view: ViewRequest, scan: Scan, events: str) -> str:
    """The events with each summed float value split into two exact integers (see the
    module docstring): ``__h{j}`` its multiple of 2**-32, ``__l{j}`` the rest in 2**-96."""
    parts = ["*"]
    for j in _summed_floats(view, scan):
        v = f"__v{j}"
        ok, scale, rest = f"abs({v}) < {_double(SUM_LIMIT)}", _double(SUM_SCALE), _double(REST_SCALE)
        parts.append(f"CASE WHEN {ok} THEN CAST(round({v} * {scale}) AS HUGEINT) END AS __h{j}")
        parts.append(
            f"CASE WHEN {ok} THEN CAST(round(({v} - round({v} * {scale}) / {scale}) * {rest}) AS HUGEINT) END AS __l{j}"
        )
    return f"SELECT {', '.join(parts)} FROM ({events})"


def _aggregate_exprs(view: ViewRequest, scan: Scan, frame) -> tuple[list[str], list[str]]:
    """Per requested aggregation, the aggregate calls (``inner``, each ``... AS __a{n}``;
    ``frame(agg)`` follows each call: ``OVER wN`` or ``FILTER (WHERE ...)``) and the
    expression over them that gives the value (``outer``)."""
    columns = aggregation_columns(view)
    inner: list[str] = []
    outer: list[str] = []

    def call(expr: str, agg: Aggregation) -> str:
        inner.append(f"{expr} {frame(agg)} AS __a{len(inner)}")
        return f"__a{len(inner) - 1}"

    for agg in _requested(view):
        j = columns.index(agg.column)
        value = f"__v{j}"
        dtype = scan.schema.field(agg.column).type
        if agg.function == "count":
            outer.append(call(f"count({value})", agg))
        elif agg.function in ("min", "max"):
            outer.append(call(f"{agg.function}({value})", agg))
        elif agg.function == "last":
            struct = f"CASE WHEN {value} IS NOT NULL THEN struct_pack(t := __ts, c := coalesce(__c, {_MIN_BIGINT}), v := {value}) END"
            outer.append(f"struct_extract({call(f'max({struct})', agg)}, 'v')")
        elif pa.types.is_floating(dtype):  # sum, mean of floats: two exact integer totals
            high, rest, n = call(f"sum(__h{j})", agg), call(f"sum(__l{j})", agg), call(f"count(__h{j})", agg)
            total = (f"({_to_double_sql(high)}) / {_double(SUM_SCALE)} "
                     f"+ ({_to_double_sql(rest)}) / {_double(REST_SCALE)}")
            if agg.function == "mean":
                outer.append(f"({total}) / {n}")
            else:
                outer.append(f"TRY_CAST({total} AS {'FLOAT' if dtype == pa.float32() else 'DOUBLE'})")
        else:  # sum, mean of integers: one exact total
            total = call(f"sum(CAST({value} AS HUGEINT))", agg)
            if agg.function == "mean":
                outer.append(f"({_to_double_sql(total)}) / {call(f'count({value})', agg)}")
            else:
                outer.append(f"TRY_CAST({total} AS {_int_sql(dtype)})")
    return inner, outer


def _int_sql(dtype: pa.DataType) -> str:
    return {
        pa.int8(): "TINYINT", pa.int16(): "SMALLINT", pa.int32(): "INTEGER", pa.int64(): "BIGINT",
        pa.uint8(): "UTINYINT", pa.uint16(): "USMALLINT", pa.uint32(): "UINTEGER", pa.uint64(): "UBIGINT",
    }[dtype]


def _longest(view: ViewRequest) -> int:
    return max(duration_us(a.time_window) for a in _requested(view))


# -- the two queries ----------------------------------------------------------------------


def aggregate_pit_sql(
    view: ViewRequest, scan: Scan, entity_keys: Sequence[str], entity_time_type: pa.DataType,
    window: Window | None,
) -> str:
    """Every requested aggregation of ``view`` for every entity row as of its time, with
    its row number ``__rn`` (columns ``__rn, __f0, __f1, ...``), in no particular order.

    ``entity_keys`` are the registered entity table's columns (``__k*``) matching
    ``view.join_keys`` in order; the table is ``__fs_entities(__rn, __k*, __t)``.
    ``window`` (the span of the entity times; None: no entity row has a time) bounds the
    scan on the raw timestamp column, so Parquet statistics skip row groups and files.
    """
    n_keys = len(view.join_keys)
    t_us = epoch_us_sql("__t", entity_time_type)
    entity_cols = ", ".join(f"{k} AS __k{i}" for i, k in enumerate(entity_keys))
    entities = f"SELECT __rn{', ' if entity_cols else ''}{entity_cols}, {t_us} AS __ts FROM {ENTITY_TABLE}"
    keys = [f"__k{i}" for i in range(n_keys)]
    longest = _longest(view)
    # Only events that can be in some row's window: keys the entity set has, times in range.
    bounds = f"__ts > (SELECT min(__ts) FROM __e) - {longest} AND __ts <= (SELECT max(__ts) FROM __e)"
    events = _events_sql(view, scan, where=bounds, keys_in="__e", scan_where=window_where(view, window))
    union = "SELECT *, CAST(NULL AS BIGINT) AS __rn FROM __ev UNION ALL BY NAME SELECT * FROM __e"
    windows = {}
    for agg in _requested(view):
        windows.setdefault(duration_us(agg.time_window), f"__w{len(windows)}")
    partition = f"PARTITION BY {', '.join(keys)} " if keys else ""
    window_sql = ", ".join(
        f"{name} AS ({partition}ORDER BY __ts RANGE BETWEEN {width - 1} PRECEDING AND CURRENT ROW)"
        for width, name in windows.items()
    )
    inner, outer = _aggregate_exprs(view, scan, lambda agg: f"OVER {windows[duration_us(agg.time_window)]}")
    # A row without a time has no window: every output null (count included).
    outputs = ", ".join(f"CASE WHEN __ts IS NOT NULL THEN {e} END AS __f{j}" for j, e in enumerate(outer))
    calls = "".join(f", {c}" for c in inner)
    return (
        f"WITH __e AS ({entities}), __ev AS ({_with_splits(view, scan, events)}) "
        f"SELECT __rn{', ' if outputs else ''}{outputs} FROM ("
        f"SELECT __rn, __ts{calls} FROM ({union}) WINDOW {window_sql} QUALIFY __rn IS NOT NULL)"
    )


def aggregate_latest_sql(view: ViewRequest, scan: Scan, start: datetime | None, end: datetime) -> str:
    """Per entity key, every requested aggregation as of ``end``: columns ``__k*``, ``__f*``,
    ``__ev`` (= ``end``, as TIMESTAMPTZ).

    The entities are those with an event in ``(end - longest window, end]`` and, when
    ``start`` is given, in ``[start, end]`` too (their windows may have emptied since:
    count 0), or with any event up to ``end`` when ``start`` is None.
    """
    end_us = to_micros(end)
    longest = _longest(view)
    lower = "" if start is None else f"__ts >= {min(to_micros(start), end_us - longest + 1)} AND "
    events = _events_sql(view, scan, where=f"{lower}__ts <= {end_us}")
    keys = [f"__k{i}" for i in range(len(view.join_keys))]
    inner, outer = _aggregate_exprs(
        view, scan, lambda agg: f"FILTER (WHERE __ts > {end_us - duration_us(agg.time_window)})"
    )
    features = ", ".join(f"{e} AS __f{j}" for j, e in enumerate(outer))
    end_sql = f"CAST(make_timestamp({end_us}) AS TIMESTAMPTZ)"
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    grouped = f"SELECT {', '.join([*keys, *inner])} FROM ({_with_splits(view, scan, events)}){group}"
    return (
        f"SELECT {', '.join(keys)}{', ' if keys else ''}{features}{', ' if features else ''}{end_sql} AS __ev "
        f"FROM ({grouped})"
    )


def aggregate_events_sql(view: ViewRequest, scan: Scan, lo_us: int, hi_us: int) -> str:
    """The view's raw events with ``lo_us < event µs <= hi_us`` (what the online state is
    loaded from): the join keys, timestamp, created and aggregated columns as stored, and
    ``_event_id``: the stored id, or ``h:{md5 of the row}:{n}`` for the n-th copy of a row
    without one (stable across runs, so loading twice adds nothing). One row per id."""
    source = view.source
    schema = scan.schema
    ts = source.timestamp_field
    created = source.created_timestamp_field if source.created_timestamp_field in schema.names else None
    names = list(dict.fromkeys([*view.join_keys, ts, *filter(None, [created]), *aggregation_columns(view)]))
    has_id = EVENT_ID_COLUMN in schema.names
    read = names + ([EVENT_ID_COLUMN] if has_id else [])
    ts_us = epoch_us_sql(ident(ts), schema.field(ts).type)
    cols = ", ".join(ident(c) for c in names)
    conds = " AND ".join([*(f"{ident(k)} IS NOT NULL" for k in view.join_keys), f"{ident(ts)} IS NOT NULL"])
    given = f"CAST({ident(EVENT_ID_COLUMN)} AS VARCHAR)" if has_id else "CAST(NULL AS VARCHAR)"
    rows = (
        f"SELECT * FROM (SELECT {cols}, {given} AS __id, {ts_us} AS __ts FROM ({scan_sql(scan, read)}) "
        f"WHERE {conds}) WHERE __ts > {lo_us} AND __ts <= {hi_us}"
    )
    parts = [
        f"CASE WHEN {ident(c)} IS NULL THEN '-' ELSE length(CAST({ident(c)} AS VARCHAR)) || ':' "
        f"|| CAST({ident(c)} AS VARCHAR) END" for c in names
    ]
    digest = f"md5({' || chr(31) || '.join(parts)})"
    return (
        f"SELECT {cols}, __id AS {ident(EVENT_ID_COLUMN)} FROM ({rows}) WHERE __id IS NOT NULL "
        f"QUALIFY row_number() OVER (PARTITION BY __id ORDER BY __ts) = 1 "
        f"UNION ALL BY NAME "
        f"SELECT {cols}, 'h:' || __h || ':' || row_number() OVER (PARTITION BY __h) AS {ident(EVENT_ID_COLUMN)} "
        f"FROM (SELECT *, {digest} AS __h FROM ({rows}) WHERE __id IS NULL)"
    )
