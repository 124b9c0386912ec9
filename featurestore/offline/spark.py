"""The Spark offline engine: the ``OfflineEngine`` protocol on a Spark cluster (or local mode).

For tables past one machine: the same requests, the same rule, the same answers as the
DuckDB engine (``docs/scaling.md`` says when to switch and how to run it on a cluster).
What is checked, and how, is shared with the DuckDB engine: the driver resolves a
source's files and reads their footers (``offline/scan.py``), refuses a request whose
columns or types are wrong with a ``FeatureStoreError`` naming them, and conforms the
answer to the registered types (``offline/conform.py``). Spark does the reading, the
shuffle and the sort: ``spark_pit`` (point-in-time join, latest rows) and
``spark_aggregate`` (windowed aggregations) build the DataFrames.

Arrow in and out: the entity rows go to Spark as an Arrow table (only their row number,
keys and time in microseconds), the answer comes back with ``DataFrame.toArrow`` and is
put back into input order here. A materialization never comes back: ``write_latest_rows``
has the executors write each batch into the online store (``spark_sink``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.clock import from_micros, to_utc
from featurestore.errors import InputError, SchemaError
from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.conform import check_declared
from featurestore.offline.scan import Scan, scan_source
from featurestore.offline.shaping import check_latest, check_request, check_source, feature_types, in_entity_order
from featurestore.offline.spark_aggregate import aggregate_latest_frame, aggregate_pit_frame, finish
from featurestore.offline.spark_pit import latest_frame, pit_frame, versioned_source
from featurestore.offline.spark_session import SPARK_MASTER, spark_session

__all__ = ["SparkEngine"]


class SparkEngine:
    """``OfflineEngine`` on Spark. ``root`` is the offline store folder (relative source
    paths resolve against it); ``master`` and ``conf`` build the session when the process
    has none (``spark-submit`` or a notebook's session is used as it is). ``open_online``
    opens the online store inside an executor (``write_latest_rows``)."""

    def __init__(self, root: str | None = None, *, master: str = SPARK_MASTER,
                 conf: Mapping[str, str] | None = None, open_online: Callable | None = None):
        self.root = os.path.abspath(root) if root else None
        self.master = master
        self.conf = dict(conf or {})
        self.open_online = open_online
        self._spark = None

    @property
    def spark(self):
        """The SparkSession, started on first use (a JVM start takes seconds)."""
        if self._spark is None:
            self._spark = spark_session(self.master, self.conf)
        return self._spark

    def close(self) -> None:
        """Nothing to close: the session is the process's and outlives the engine."""

    # -- sources -----------------------------------------------------------------------

    def read_schema(self, source: SourceTable) -> pa.Schema:
        return scan_source(source, self.root).schema

    def _scan(self, view: ViewRequest, join_keys: tuple[str, ...] = (), days=None) -> Scan:
        scan = scan_source(view.source, self.root, join_keys, days)
        check_source(view, scan)
        check_declared(view, scan)
        return scan

    # -- point-in-time join ------------------------------------------------------------

    def point_in_time_join(self, entities: pa.Table, timestamp_column: str, views: Sequence[ViewRequest], *,
                           known_at_timestamp: bool = False) -> pa.RecordBatchReader:
        """The entity rows in input order, their columns unchanged, then each view's
        ``output_names`` (the rule: ``spark_pit``, ``spark_aggregate``)."""
        entities, window, keys, scans = check_request(entities, timestamp_column, views, self._scan)
        columns, fields = list(entities.columns), list(entities.schema)
        registered = None
        for view, scan in zip(views, scans):
            types, fit = feature_types(view, scan)
            if entities.num_rows == 0:
                result = [pa.chunked_array([], t) for t in types]
            else:
                if registered is None:  # the entity rows go to Spark once, for every view
                    registered = self._entities(entities, timestamp_column, keys)
                mine = registered.select("__rn", "__t", *(registered[f"__e{keys.index(k)}"].alias(f"__k{i}")
                                                           for i, k in enumerate(view.join_keys)))
                if view.aggregations:
                    table = in_entity_order(_to_arrow(aggregate_pit_frame(self.spark, view, scan, mine, window), view))
                    values = finish(view, scan, table, 0)
                else:
                    frame = pit_frame(self.spark, view, scan, mine, window, known_at_timestamp)
                    table = in_entity_order(_to_arrow(frame, view))
                    values = [table.column(j) for j in range(table.num_columns)]
                result = [fit[j](values[j], t) for j, t in enumerate(types)]
            columns += result
            fields += [pa.field(name, col.type) for name, col in zip(view.output_names, result)]
        return pa.Table.from_arrays(columns, schema=pa.schema(fields)).to_reader()

    def _entities(self, entities: pa.Table, timestamp_column: str, keys: list[str]):
        """The entity rows as a DataFrame: ``__rn``, keys ``__e*``, ``__t`` (UTC µs)."""
        arrays = [pa.array(np.arange(entities.num_rows, dtype=np.int64))]
        arrays += [_spark_ready(entities.column(k)) for k in keys]
        arrays.append(_micros(entities.column(timestamp_column)))
        names = ["__rn", *(f"__e{i}" for i in range(len(keys))), "__t"]
        return self.spark.createDataFrame(pa.Table.from_arrays(arrays, names=names))

    # -- latest rows -------------------------------------------------------------------

    def _latest(self, view: ViewRequest, start: datetime | None, end: datetime):
        """The latest-rows DataFrame and what shapes its batches: the output schema and
        one conformer per column."""
        scan, schema, fit = check_latest(view, start, end, self._scan)
        if view.aggregations:
            frame = aggregate_latest_frame(self.spark, view, scan, start, end)
        else:
            frame = latest_frame(self.spark, view, scan, start, end)
        shape = LatestShape(view, scan, schema, fit, to_utc(end))
        return frame, shape

    def latest_rows(self, view: ViewRequest, start: datetime | None, end: datetime,
                    batch_rows: int = 100_000) -> pa.RecordBatchReader:
        """Per entity key, the latest row with ``start <= event_timestamp <= end``: join keys,
        features (source names), ``event_timestamp`` (UTC). Collected on the driver: a
        materialization writes from the executors instead (``write_latest_rows``)."""
        frame, shape = self._latest(view, start, end)
        table = _to_arrow(frame, view)
        batches = [shape(batch) for batch in table.to_batches(batch_rows)]
        return pa.RecordBatchReader.from_batches(shape.schema, iter(batches))

    def write_latest_rows(self, view: ViewRequest, start: datetime | None, end: datetime, target,
                          batch_rows: int = 10_000) -> int:
        """Write ``latest_rows`` into the online store from the executors, each Arrow batch
        as it is computed (newer-timestamp-wins, as the driver would); the rows written.
        Nothing but the count comes back to the driver."""
        from featurestore.offline.spark_sink import write_from_executors

        if self.open_online is None:
            raise InputError("this Spark engine has no online store to write to; build it through the store's "
                             "featurestore.yaml (offline_store: {engine: spark})")
        frame, shape = self._latest(view, start, end)
        return write_from_executors(frame, shape, self.open_online, target, batch_rows, view)

    def event_range(self, view: ViewRequest) -> tuple[datetime, datetime] | None:
        from pyspark.sql import functions as F

        scan = scan_source(view.source, self.root)
        rows = versioned_source(self.spark, view, scan)
        lo, hi = _run(lambda: rows.agg(F.min("__ev"), F.max("__ev")).collect()[0], view)
        return None if lo is None else (from_micros(lo), from_micros(hi))

    def aggregation_events(self, view: ViewRequest, lo_us: int, hi_us: int) -> pa.Table:
        """The view's events in ``(lo_us, hi_us]``, one per event id, read by DuckDB on the
        driver: they are loaded into the online state from the driver anyway (one longest
        window of events), and a row without an id gets the id hashed from DuckDB's spelling
        of its values, the same whichever engine (or stream worker) loaded it before."""
        from featurestore.offline.duckdb import DuckDBEngine

        return DuckDBEngine(self.root).aggregation_events(view, lo_us, hi_us)

    # -- ad-hoc SQL --------------------------------------------------------------------

    def query(self, sql: str) -> pa.Table:
        """Run Spark SQL (``SELECT * FROM parquet.`/path/file.parquet```, a Hive table...)."""
        try:
            return self.spark.sql(sql).toArrow()
        except Exception as exc:  # pyspark's AnalysisException, ParseException, ...
            raise InputError(f"query failed: {_message(exc)}") from None


class LatestShape:
    """Turns a batch of the latest-rows frame (``__k*``, ``__f*``/``__a*``, ``__ev``) into the
    engine's output: typed keys and features, ``event_timestamp``. Picklable: executors use it."""

    def __init__(self, view: ViewRequest, scan: Scan, schema: pa.Schema, fit: list, end: datetime):
        self.view, self.scan, self.schema, self.fit, self.end = view, scan, schema, fit, end

    def __call__(self, batch: pa.RecordBatch | pa.Table) -> pa.RecordBatch:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        if table.num_rows == 0:
            return pa.RecordBatch.from_pylist([], schema=self.schema)
        view, n_keys = self.view, len(self.view.join_keys)
        types = self.schema.types
        fit = self.fit
        arrays = [fit[i](table.column(i), types[i]) for i in range(n_keys)]
        if view.aggregations:
            values = finish(view, self.scan, table, n_keys)
            stamp = pa.array([self.end] * table.num_rows, pa.timestamp("us", tz="UTC"))
        else:
            values = [table.column(n_keys + j) for j in range(len(view.features))]
            stamp = table.column(table.num_columns - 1).cast(pa.timestamp("us", tz="UTC"))
        arrays += [fit[n_keys + j](values[j], types[n_keys + j]) for j in range(len(view.features))]
        arrays.append(stamp)
        return pa.RecordBatch.from_arrays([_whole(a) for a in arrays], schema=self.schema)


def _to_arrow(frame, view: ViewRequest) -> pa.Table:
    return _run(frame.toArrow, view)


def _run(action, view: ViewRequest):
    """Run a Spark action; a failure reading the view's files is a SchemaError naming them."""
    try:
        return action()
    except Exception as exc:
        if type(exc).__module__.startswith(("pyspark", "py4j")):
            raise SchemaError(f"view {view.name!r}: reading {list(view.source.files)} on Spark failed: "
                              f"{_message(exc)}") from None
        raise


def _micros(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A timestamp or date column as UTC µs since the epoch (naive means UTC)."""
    if pa.types.is_null(column.type):
        return pa.chunked_array([pa.nulls(len(column), pa.int64())])
    if pa.types.is_date(column.type):
        days_ = column.cast(pa.date32()).cast(pa.int32()).cast(pa.int64())
        return pc.multiply(days_, 86_400_000_000)
    unit = column.type.unit
    us = column.cast(pa.timestamp(unit)).cast(pa.int64())
    if unit == "us":
        return us
    if unit == "ns":  # floor, as Spark reads a nanosecond source column (spark_session)
        return _floor_div(us, 1000)
    return pc.multiply(us, {"s": 1_000_000, "ms": 1_000}[unit])


def _floor_div(values: pa.ChunkedArray, by: int) -> pa.ChunkedArray:
    data = values.to_numpy(zero_copy_only=False)
    mask = np.asarray(values.is_null()) if values.null_count else None
    return pa.chunked_array([pa.array(np.floor_divide(np.nan_to_num(data).astype(np.int64), by), pa.int64(), mask=mask)])


def _spark_ready(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Entity keys in a type Spark takes (a dictionary decoded, a view or large string plain)."""
    dtype = column.type
    if pa.types.is_dictionary(dtype):
        column, dtype = column.cast(dtype.value_type), dtype.value_type
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return column.cast(pa.string())
    if pa.types.is_unsigned_integer(dtype):
        return column.cast(pa.int64() if dtype.bit_width < 64 else pa.decimal128(20, 0))
    return column


def _whole(array):
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _message(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
