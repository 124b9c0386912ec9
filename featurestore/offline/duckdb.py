"""The DuckDB offline engine: point-in-time joins and latest-row scans over Parquet/CSV.

Every call opens its own in-memory DuckDB connection (no database file, so no lock a
second process could trip on), registers the entity rows as an Arrow table without
copying them, and reads the source files directly. The SQL lives in ``pit_sql``; this
module resolves files, checks the request against the files' schemas (so a user error
is a ``FeatureStoreError`` naming the column, never a DuckDB traceback) and assembles
the result: the entity table's own columns untouched, then the features.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import datetime

import duckdb
import pyarrow as pa

from featurestore.clock import from_micros
from featurestore.errors import InputError, SchemaError, StoreUnavailableError
from featurestore.offline.aggregate_sql import aggregate_events_sql, aggregate_latest_sql, aggregate_pit_sql
from featurestore.offline.base import SourceTable, ViewRequest
from featurestore.offline.conform import check_declared
from featurestore.offline.entity_set import dense
from featurestore.offline.pit_sql import ENTITY_TABLE, entity_table, latest_sql, pit_sql
from featurestore.offline.progress import Progress, report_progress, watch
from featurestore.offline.scan import Scan, epoch_us_sql, ident, quote, scan_sql, scan_source
from featurestore.offline.shaping import check_latest, check_request, check_source, feature_types, in_entity_order

__all__ = ["DuckDBEngine"]


class DuckDBEngine:
    """``OfflineEngine`` over DuckDB. ``root`` is the offline store folder: relative paths in
    ``query()`` and in sources resolve against it. ``threads`` defaults to DuckDB's choice
    (one per core), ``memory_limit`` (``"12GB"``) to 80% of the machine's memory. A join
    larger than the memory limit spills to ``temp_directory``: by default ``.tmp`` in
    ``root`` (DuckDB's own default without a root). ``progress`` is told how far a join
    is once it has run a few seconds (default: ``progress.report_progress``)."""

    def __init__(self, root: str | None = None, *, threads: int | None = None, memory_limit: str | None = None,
                 temp_directory: str | None = None, progress: Progress | None = report_progress):
        self.root = os.path.abspath(root) if root else None
        self.threads = threads
        self.memory_limit = memory_limit
        self.temp_directory = temp_directory or (os.path.join(self.root, ".tmp") if self.root else None)
        self.progress = progress

    # -- connections -------------------------------------------------------------------

    def _connect(self, ordered_output: bool = False) -> duckdb.DuckDBPyConnection:
        config = {"preserve_insertion_order": ordered_output}
        if self.threads:
            config["threads"] = self.threads
        if self.memory_limit:
            config["memory_limit"] = self.memory_limit
        if self.temp_directory:
            config["temp_directory"] = self.temp_directory
        try:
            con = duckdb.connect(config=config)
        except duckdb.Error as exc:  # a memory limit DuckDB cannot parse
            raise InputError(
                f"offline store memory_limit {self.memory_limit!r} or threads {self.threads!r} is not valid "
                f"({_message(exc)}); give a size like '8GB' and a whole number of threads"
            ) from None
        con.execute("SET TimeZone = 'UTC'")  # TIMESTAMPTZ results come back as UTC
        # DuckDB tracks progress (off by default when not interactive); ours reports it
        con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
        if self.root:
            con.execute(f"SET file_search_path = {quote(self.root)}")
        return con

    # -- sources -----------------------------------------------------------------------

    def read_schema(self, source: SourceTable) -> pa.Schema:
        """The union (by column name) of the source files' schemas."""
        return scan_source(source, self.root).schema

    def _scan(self, view: ViewRequest, join_keys: tuple[str, ...] = (), days=None) -> Scan:
        """The view's source resolved (only ``days``' partitions), after checking it has
        what the view reads."""
        scan = scan_source(view.source, self.root, join_keys, days)
        check_source(view, scan)
        check_declared(view, scan)  # the files may have changed since apply
        return scan

    # -- point-in-time join ------------------------------------------------------------

    def point_in_time_join(
        self,
        entities: pa.Table,
        timestamp_column: str,
        views: Sequence[ViewRequest],
        *,
        known_at_timestamp: bool = False,
    ) -> pa.RecordBatchReader:
        """The entity rows in input order, their columns unchanged, then each view's
        ``output_names``; the rule is spelled out in ``pit_sql``."""
        entities, window, keys, scans = check_request(entities, timestamp_column, views, self._scan)
        columns, fields = list(entities.columns), list(entities.schema)
        registered = entity_table(entities, timestamp_column, keys)
        time_type = entities.schema.field(timestamp_column).type
        for view, scan in zip(views, scans):
            types, fit = feature_types(view, scan)
            if entities.num_rows == 0:
                result = [pa.chunked_array([], t) for t in types]
            else:
                entity_keys = [f"__k{keys.index(k)}" for k in view.join_keys]
                dense_keys = dense(entities, view.join_keys, scan)
                sql = (aggregate_pit_sql(view, scan, entity_keys, time_type, window) if view.aggregations
                       else pit_sql(view, scan, entity_keys, time_type, window, known_at_timestamp, dense_keys))
                table = in_entity_order(self._run(sql, view, registered))
                result = [fit[j](table.column(j), t) for j, t in enumerate(types)]
            columns += result
            fields += [pa.field(name, col.type) for name, col in zip(view.output_names, result)]
        return pa.Table.from_arrays(columns, schema=pa.schema(fields)).to_reader()

    def _run(self, sql: str, view: ViewRequest, registered: pa.Table) -> pa.Table:
        con = self._connect()
        try:
            con.register(ENTITY_TABLE, registered)
            with watch(con, f"training set, view {view.name!r}", self.progress):
                return con.sql(sql).to_arrow_table()
        except duckdb.Error as exc:
            spilling = self.temp_directory and self.temp_directory in str(exc)
            if isinstance(exc, duckdb.OutOfMemoryException) or spilling:
                raise self._out_of_memory(view, exc) from None
            raise _read_error(view, exc) from None
        finally:
            con.close()

    def _out_of_memory(self, view: ViewRequest, exc: Exception) -> StoreUnavailableError:
        """A join that outgrew the memory limit and could not spill (no room, no folder)."""
        limit = repr(self.memory_limit) if self.memory_limit else "(80% of the machine)"
        return StoreUnavailableError(
            f"view {view.name!r}: the join needs more than memory_limit {limit} and could not spill to "
            f"temp_directory {self.temp_directory or '(DuckDB default)'!r} ({_message(exc)}); raise "
            "offline_store.memory_limit, or set offline_store.temp_directory to a writable folder with free space",
            store="the offline store")

    # -- latest rows -------------------------------------------------------------------

    def latest_rows(
        self, view: ViewRequest, start: datetime | None, end: datetime, batch_rows: int = 100_000
    ) -> pa.RecordBatchReader:
        """Per entity key, the latest row with ``start <= event_timestamp <= end`` (ties by
        created timestamp): join keys, features (source names), ``event_timestamp`` (UTC).
        Streams in batches of about ``batch_rows``."""
        scan, schema, fit = check_latest(view, start, end, self._scan)
        types = schema.types
        con = self._connect()
        try:
            sql = aggregate_latest_sql(view, scan, start, end) if view.aggregations else latest_sql(view, scan, start, end)
            reader = con.sql(sql).to_arrow_reader(batch_rows)
        except duckdb.Error as exc:
            con.close()
            raise _read_error(view, exc) from None

        def batches() -> Iterator[pa.RecordBatch]:
            try:  # the connection lives as long as the reader is read
                for batch in reader:
                    arrays = [fit[i](batch.column(i), t) for i, t in enumerate(types)]
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
            except duckdb.Error as exc:
                raise _read_error(view, exc) from None
            finally:
                con.close()

        return pa.RecordBatchReader.from_batches(schema, batches())

    def event_range(self, view: ViewRequest) -> tuple[datetime, datetime] | None:
        """The earliest and latest event time in the view's source (UTC); None: no rows."""
        scan = scan_source(view.source, self.root)
        ts = view.source.timestamp_field
        us = epoch_us_sql(ident(ts), scan.schema.field(ts).type)
        con = self._connect()
        try:
            [(lo, hi)] = con.execute(f"SELECT min({us}), max({us}) FROM ({scan_sql(scan, [ts])})").fetchall()
        except duckdb.Error as exc:
            raise _read_error(view, exc) from None
        finally:
            con.close()
        return None if lo is None else (from_micros(lo), from_micros(hi))

    def aggregation_events(self, view: ViewRequest, lo_us: int, hi_us: int) -> pa.Table:
        """The view's events in ``(lo_us, hi_us]``, one per event id (``aggregate_events_sql``)."""
        scan = scan_source(view.source, self.root, view.join_keys)
        check_declared(view, scan)  # the files may have changed since apply
        return self.query(aggregate_events_sql(view, scan, lo_us, hi_us))

    # -- ad-hoc SQL --------------------------------------------------------------------

    def query(self, sql: str) -> pa.Table:
        """Run SQL over the offline store's files (paths relative to ``root``)."""
        con = self._connect(ordered_output=True)
        try:
            relation = con.sql(sql)
            return relation.to_arrow_table() if relation is not None else pa.table({})
        except duckdb.Error as exc:
            raise InputError(f"query failed: {_message(exc)}") from None
        finally:
            con.close()


def _read_error(view: ViewRequest, exc: Exception) -> SchemaError:
    """A DuckDB failure while reading a view's files (a corrupt file, an unparsable CSV)."""
    return SchemaError(f"view {view.name!r}: reading {list(view.source.files)} failed: {_message(exc)}")


def _message(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
