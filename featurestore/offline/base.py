"""The offline engine seam: point-in-time joins and latest-row scans over source files.

The engine sees resolved, data-only requests (absolute file paths, column names), never
the registry or the DSL objects, so a backend is a small module behind this protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import pyarrow as pa

from featurestore.definitions import Aggregation
from featurestore.types import FeatureType

__all__ = ["ExecutorWrites", "OfflineEngine", "SourceTable", "ViewRequest"]


@dataclass(frozen=True)
class SourceTable:
    """The files holding one view's rows: its batch source plus any pushed Parquet files.

    ``files`` are absolute paths, folders or globs; a path ending in ``.csv`` (or
    ``.csv.gz``) is CSV, anything else Parquet. Their union (by column name) is the table.
    ``date_partition`` names the hive partition column holding each row's UTC event date
    (``.../date=2024-05-01/...``), so reads skip the days they cannot use.
    """

    files: tuple[str, ...]
    timestamp_field: str
    created_timestamp_field: str | None = None
    date_partition: str | None = None


@dataclass(frozen=True)
class ViewRequest:
    """What to fetch from one view: ``features`` (source columns) renamed to ``output_names``.

    For a view with ``aggregations``, ``features`` name aggregation outputs (each
    ``Aggregation.name``) and the engine computes them over ``(T - window, T]``.
    ``tie_columns`` (default: ``features``) are hashed to order rows tied on event time
    when the source has no created timestamp: give all the view's features, so the same
    row wins whichever of them a request names, offline and in materialization alike.
    ``declared`` holds the registered type of each source column the view reads (join
    keys, features, aggregated columns): the engine refuses files whose columns changed
    kind since, and returns keys and features as those types, each value checked to fit
    (``offline/conform.py``). Empty: the files' own types, unchecked.
    """

    name: str
    source: SourceTable
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    ttl: timedelta | None = None
    aggregations: tuple[Aggregation, ...] = ()
    tie_columns: tuple[str, ...] = ()
    declared: tuple[tuple[str, FeatureType], ...] = ()


class OfflineEngine(Protocol):
    def read_schema(self, source: SourceTable) -> pa.Schema:
        """The source's columns; raises SchemaError/InputError naming a missing file."""

    def point_in_time_join(
        self,
        entities: pa.Table,
        timestamp_column: str,
        views: Sequence[ViewRequest],
        *,
        known_at_timestamp: bool = False,
    ) -> pa.RecordBatchReader:
        """The entity rows in input order, their columns unchanged, then each view's
        ``output_names`` as of each row's timestamp (see docs/concepts.md for the rule).
        With ``known_at_timestamp`` a row also needs ``created <= T``."""

    def latest_rows(
        self, view: ViewRequest, start: datetime | None, end: datetime, batch_rows: int = 100_000
    ) -> pa.RecordBatchReader:
        """Per entity, the latest row with ``start <= event_timestamp <= end`` (ties by
        created timestamp): join keys, ``features`` and ``event_timestamp`` (UTC)."""

    def event_range(self, view: ViewRequest) -> tuple[datetime, datetime] | None:
        """The earliest and latest event time in the view's source (UTC); None: no rows."""

    def aggregation_events(self, view: ViewRequest, lo_us: int, hi_us: int) -> pa.Table:
        """The view's raw events with ``lo_us < event µs <= hi_us``, one row per event id
        (``_event_id``: stored, or derived from the row so that loading twice adds nothing):
        what a windowed view's online state is loaded from (``aggregate_sql.aggregate_events_sql``)."""

    def query(self, sql: str) -> pa.Table:
        """Run a SQL query (an entity set, say) over the offline store's files."""


@runtime_checkable
class ExecutorWrites(Protocol):
    """An engine whose workers write a materialization into the online store themselves
    (Spark's executors), so the rows never pass through the calling process."""

    def write_latest_rows(self, view: ViewRequest, start: datetime | None, end: datetime, target) -> int:
        """Write ``latest_rows(view, start, end)`` into the online store the engine was
        built with, as the online view ``target``; the number of rows written."""
