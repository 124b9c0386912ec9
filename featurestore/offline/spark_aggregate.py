"""Windowed aggregations as Spark DataFrames, with the DuckDB engine's exact rule.

The rule is ``aggregate_sql``'s (its docstring spells it; ``docs/streaming.md`` for users):
over the events with the entity's keys and ``T - window < event <= T`` whose value is not
null (float NaN and +-inf count as null, -0.0 as 0.0); count 0 and null otherwise for an
empty window; ``last`` the value of the greatest (event, created, value); copies of one
``_event_id`` count once; sums of integers exact (null when the total overflows the
column's type), sums of floats exact as below.

Exact float sums, reproduced bit for bit: each value v (``|v| < 2**63``) is split into
``h = round(v * 2**32)`` and ``l = round((v - h / 2**32) * 2**96)`` (both rounded half
away from zero), which Spark sums exactly as ``DECIMAL(38, 0)``. Spark cannot turn a
double above 2**53 into a decimal exactly (it goes through the shortest decimal
spelling), so each product is built from two exact parts: ``x = trunc(x) + frac(x)``
with ``trunc`` a ``BIGINT`` and ``round(frac(x) * 2**32)`` at most 2**32, which is exact
because ``trunc(x)`` and ``frac(x)`` share a sign (rounding half away from zero then
commutes with adding an integer). The totals come back to the driver (or the executor
that writes them) as Arrow decimals and ``finish`` turns them into doubles with
``aggregate_sql.to_double``'s arithmetic, vectorized (``exact_doubles``).

How it runs: the entity rows join the events (values null, so no aggregate sees them) and
each aggregation is a window function over ``PARTITION BY keys ORDER BY event µs RANGE
BETWEEN window - 1 PRECEDING AND CURRENT ROW``: exactly ``(T - window, T]``. Aggregations
sharing the keys and the order share one sort.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
import pyarrow as pa

from featurestore.clock import duration_us, to_micros
from featurestore.definitions import Aggregation
from featurestore.offline.aggregate_sql import (
    EVENT_ID_COLUMN, REST_SCALE, SUM_LIMIT, SUM_SCALE, aggregation_columns, output_types,
)
from featurestore.offline.base import ViewRequest
from featurestore.offline.pit_sql import Window
from featurestore.offline.scan import Scan
from featurestore.offline.shaping import cast_like
from featurestore.offline.spark_pit import MIN_LONG
from featurestore.offline.spark_session import micros_column, source_frame

__all__ = ["aggregate_latest_frame", "aggregate_pit_frame", "exact_doubles", "finish"]

_DECIMAL = "decimal(38,0)"


def _events(spark, view: ViewRequest, scan: Scan):
    """One row per event: ``__k*``, ``__ts``/``__c`` (µs), values ``__v*`` (floats as
    aggregated), float splits ``__h*``/``__l*``; copies of an event id dropped."""
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    source, schema = view.source, scan.schema
    created = source.created_timestamp_field if source.created_timestamp_field in schema.names else None
    columns = aggregation_columns(view)
    has_id = EVENT_ID_COLUMN in schema.names
    needed = [*view.join_keys, source.timestamp_field, *filter(None, [created]), *columns,
              *([EVENT_ID_COLUMN] if has_id else [])]
    frame = source_frame(spark, scan, needed)
    ts = source.timestamp_field
    select = [F.col(_q(k)).alias(f"__k{i}") for i, k in enumerate(view.join_keys)]
    select.append(micros_column(F.col(_q(ts)), schema.field(ts).type).alias("__ts"))
    select.append((micros_column(F.col(_q(created)), schema.field(created).type) if created
                   else F.lit(None).cast("long")).alias("__c"))
    for j, c in enumerate(columns):
        select.append(_value(F.col(_q(c)), schema.field(c).type).alias(f"__v{j}"))
    if has_id:
        select.append(F.col(_q(EVENT_ID_COLUMN)).cast("string").alias("__id"))
    condition = F.col("__ts").isNotNull()
    for i in range(len(view.join_keys)):
        condition = condition & F.col(f"__k{i}").isNotNull()
    rows = frame.select(*select).where(condition)
    if has_id:
        first = W.partitionBy("__id").orderBy("__ts", "__c")
        with_id = rows.where(F.col("__id").isNotNull()).withColumn("__n", F.row_number().over(first))
        rows = rows.where(F.col("__id").isNull()).unionByName(with_id.where(F.col("__n") == 1).drop("__n"))
        rows = rows.drop("__id")
    for j in _summed_floats(view, scan):
        rows = rows.withColumns(_splits(F.col(f"__v{j}"), j))
    return rows


def _value(column, dtype: pa.DataType):
    from pyspark.sql import functions as F

    if pa.types.is_floating(dtype):
        value = column.cast("double")
        finite = ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))
        return F.when(finite, value + F.lit(0.0))
    return column


def _exact(x):
    """``round(x)`` (half away from zero) as an exact DECIMAL(38,0), for ``|x| < 2**63``
    (see the module docstring)."""
    from pyspark.sql import functions as F

    whole = x.cast("long")
    return whole.cast(_DECIMAL) * F.lit(2**32).cast(_DECIMAL) + F.round((x - whole.cast("double")) * F.lit(2.0**32)).cast(_DECIMAL)


def _splits(v, j: int) -> dict:
    """``__h{j}`` (v in units of 2**-32) and ``__l{j}`` (the rest in units of 2**-96), as
    ``aggregate_sql._with_splits`` computes them, but exact in Spark's decimals."""
    from pyspark.sql import functions as F

    ok = F.abs(v) < F.lit(SUM_LIMIT)
    high = F.round(v * F.lit(float(SUM_SCALE)))  # a double: exact below 2**53, already whole above
    rest = v - high / F.lit(float(SUM_SCALE))  # |rest| <= 2**-33
    return {f"__h{j}": F.when(ok, _exact(v)), f"__l{j}": F.when(ok, _exact(rest * F.lit(2.0**64)))}


def _summed_floats(view: ViewRequest, scan: Scan) -> list[int]:
    columns = aggregation_columns(view)
    return sorted({columns.index(a.column) for a in _requested(view)
                   if a.function in ("sum", "mean") and pa.types.is_floating(scan.schema.field(a.column).type)})


def _requested(view: ViewRequest) -> list[Aggregation]:
    by_name = {a.name: a for a in view.aggregations}
    return [by_name[f] for f in view.features]


def _raw_columns(view: ViewRequest, scan: Scan, arg: Callable, call: Callable) -> list:
    """Per requested aggregation, its raw columns as (column, name ``__a{n}_{m}``), in
    request order. The frame is applied by ``arg(agg, column)`` to each aggregate's
    argument (a filter of a group) and by ``call(agg, column)`` to each call (a window)."""
    from pyspark.sql import functions as F

    columns = aggregation_columns(view)
    raw = []
    for n, agg in enumerate(_requested(view)):
        def over(column, agg=agg):
            return arg(agg, column)

        j = columns.index(agg.column)
        value = F.col(f"__v{j}")
        dtype = scan.schema.field(agg.column).type
        if agg.function == "count":
            parts = [F.count(over(value))]
        elif agg.function in ("min", "max"):
            parts = [getattr(F, agg.function)(over(value))]
        elif agg.function == "last":
            ranked = F.when(value.isNotNull(), F.struct(F.col("__ts").alias("t"),
                                                        F.coalesce(F.col("__c"), F.lit(MIN_LONG)).alias("c"),
                                                        value.alias("v")))
            raw.append((call(agg, F.max(over(ranked))).getField("v"), f"__a{n}_0"))
            continue
        elif pa.types.is_floating(dtype):
            parts = [F.sum(over(F.col(f"__h{j}"))), F.sum(over(F.col(f"__l{j}"))),
                     F.count(over(F.col(f"__h{j}")))]
        else:
            parts = [F.sum(over(value.cast(_DECIMAL))), F.count(over(value))]
        raw += [(call(agg, p), f"__a{n}_{m}") for m, p in enumerate(parts)]
    return raw


def aggregate_pit_frame(spark, view: ViewRequest, scan: Scan, entities, window: Window | None):
    """``__rn`` and every requested aggregation's raw columns for every entity row (no
    order); ``entities`` has ``__rn``, ``__k*`` and ``__t`` (µs), ``window`` spans their
    times. ``finish`` gives the values."""
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    keys = [f"__k{i}" for i in range(len(view.join_keys))]
    longest = max(duration_us(a.time_window) for a in _requested(view))
    events = _events(spark, view, scan)
    if window is None:
        events = events.where(F.lit(False))
    else:  # only events in some row's window
        events = events.where((F.col("__ts") > window.first_us - longest) & (F.col("__ts") <= window.last_us))
    marked = entities.select("__rn", *keys, F.col("__t").alias("__ts"))
    stream = events.withColumn("__rn", F.lit(None).cast("long")).unionByName(marked, allowMissingColumns=True)
    windows = {}

    def window(agg: Aggregation, column):
        width = duration_us(agg.time_window)
        if width not in windows:  # (T - window, T] in whole microseconds
            windows[width] = W.partitionBy(*keys).orderBy("__ts").rangeBetween(-(width - 1), 0)
        return column.over(windows[width])

    raw = _raw_columns(view, scan, lambda agg, column: column, window)
    has_time = F.col("__ts").isNotNull()  # a row without a time has no window: all null
    out = stream.select("__rn", *(F.when(has_time, column).alias(name) for column, name in raw))
    return out.where(F.col("__rn").isNotNull())


def aggregate_latest_frame(spark, view: ViewRequest, scan: Scan, start: datetime | None, end: datetime):
    """Per entity key, every requested aggregation's raw columns as of ``end``: ``__k*``
    and ``__a*``. The keys are those with an event in ``(end - longest window, end]`` and,
    with ``start``, in ``[start, end]`` too (their windows may have emptied: count 0)."""
    from pyspark.sql import functions as F

    end_us = to_micros(end)
    longest = max(duration_us(a.time_window) for a in _requested(view))
    rows = _events(spark, view, scan).where(F.col("__ts") <= end_us)
    if start is not None:
        rows = rows.where(F.col("__ts") >= min(to_micros(start), end_us - longest + 1))
    keys = [f"__k{i}" for i in range(len(view.join_keys))]

    def within(agg: Aggregation, column):
        return F.when(F.col("__ts") > end_us - duration_us(agg.time_window), column)

    raw = _raw_columns(view, scan, within, lambda agg, column: column)
    calls = [column.alias(name) for column, name in raw]
    return rows.groupBy(*keys).agg(*calls) if keys else rows.agg(*calls).where(F.lit(True))


# -- the driver (or executor) side: raw Arrow columns to values --------------------------


def exact_doubles(totals: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Decimal128 integers as doubles, exactly as ``aggregate_sql.to_double``: correctly
    rounded within 64 bits; beyond that ``hi * 2**64 + (mid * 2**32 + lo)``. Nulls: NaN."""
    if isinstance(totals, pa.ChunkedArray):
        totals = totals.combine_chunks() if totals.num_chunks else pa.array([], totals.type)
    n = len(totals)
    words = np.frombuffer(totals.buffers()[1], dtype="<u8")[2 * totals.offset: 2 * (totals.offset + n)]
    low, high = words[0::2], words[1::2].view(np.int64)
    small = ((high == 0) & (low < 2**63)) | ((high == -1) & (low >= 2**63))
    out = np.where(
        small,
        low.view(np.int64).astype(np.float64),
        high.astype(np.float64) * 18446744073709551616.0
        + ((low >> np.uint64(32)).astype(np.float64) * 4294967296.0 + (low & np.uint64(0xFFFFFFFF)).astype(np.float64)),
    )
    if totals.null_count:
        out[np.asarray(totals.is_null())] = np.nan
    return out


def _fits(totals: pa.Array, dtype: pa.DataType) -> np.ndarray:
    """Which decimal totals fit the integer type ``dtype``."""
    info = np.iinfo(dtype.to_pandas_dtype())
    n = len(totals)
    words = np.frombuffer(totals.buffers()[1], dtype="<u8")[2 * totals.offset: 2 * (totals.offset + n)]
    low, high = words[0::2], words[1::2].view(np.int64)
    if info.min >= 0:  # unsigned: a non-negative total within the type's maximum
        return (high == 0) & (low <= np.uint64(info.max))
    signed = low.view(np.int64)
    in_long = ((high == 0) & (low < 2**63)) | ((high == -1) & (low >= 2**63))
    return in_long & (signed >= info.min) & (signed <= info.max)


def finish(view: ViewRequest, scan: Scan, table: pa.Table, first: int) -> list[pa.Array]:
    """The requested aggregations' values from their raw columns, which start at column
    ``first`` of ``table`` in ``_raw_columns`` order; typed as ``output_types``."""
    out = []
    index = first
    types = output_types(view, scan)
    for agg, dtype in zip(_requested(view), types):
        source_type = scan.schema.field(agg.column).type
        column = table.column(index)
        if agg.function in ("count", "min", "max", "last"):
            out.append(cast_like(column, dtype))
            index += 1
        elif pa.types.is_floating(source_type):
            high, rest = _combined(table.column(index)), _combined(table.column(index + 1))
            counts = table.column(index + 2).to_numpy(zero_copy_only=False)
            total = exact_doubles(high) / float(SUM_SCALE) + exact_doubles(rest) / float(REST_SCALE)
            null = np.isnan(total)
            if agg.function == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    out.append(pa.array(total / counts, pa.float64(), mask=null | (counts == 0)))
            else:
                target = np.float32 if dtype == pa.float32() else np.float64
                with np.errstate(over="ignore"):
                    values = total.astype(target)
                out.append(pa.array(values, dtype, mask=null | (np.isinf(values) & np.isfinite(total))))
            index += 3
        else:
            totals = _combined(table.column(index))
            counts = table.column(index + 1).to_numpy(zero_copy_only=False)
            null = np.asarray(totals.is_null()) if totals.null_count else np.zeros(len(totals), bool)
            if agg.function == "mean":
                with np.errstate(invalid="ignore", divide="ignore"):
                    out.append(pa.array(exact_doubles(totals) / counts, pa.float64(), mask=null | (counts == 0)))
            else:
                ok = _fits(totals, dtype) & ~null
                words = np.frombuffer(totals.buffers()[1], dtype="<u8")[2 * totals.offset: 2 * (totals.offset + len(totals))]
                values = words[0::2].view(np.int64)
                out.append(pa.array(np.where(ok, values, 0).astype(dtype.to_pandas_dtype()), dtype, mask=~ok))
            index += 2
    return out


def _combined(column) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks else pa.array([], column.type)
    return column



def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
