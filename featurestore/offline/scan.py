"""A source resolved for reading: its concrete files, their schemas, what their statistics say.

A source lists files, folders and globs; a folder means every ``*.parquet`` below it, a
path ending in ``.csv``/``.csv.gz`` is CSV. The table is the union of the files by column
name (a column missing from a file is null there), so the schema is their union too.
Only footers are read here, never rows, and each file's footer once per process while
the file is unchanged (same size and modification time): a source of thousands of files
costs a ``stat`` per file per query, not a footer read.

Hive-style partitions (``.../date=2024-05-01/part-0.parquet``) are detected when every
Parquet file's folders name the same partition columns: they become columns (typed
BIGINT, DATE or VARCHAR from all their values). A partition that is also a column inside
the files takes the folder's value and type, as DuckDB and Spark read it (the file's
column and its statistics are not used). A source's ``date_partition`` names the one
holding each row's event date (UTC): files outside the wanted days are dropped here,
before any footer is read, so a query or a materialization window reads only its days.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import InputError, SchemaError
from featurestore.offline.base import SourceTable

__all__ = ["Scan", "epoch_us_sql", "ident", "quote", "resolve_files", "scan_source", "scan_sql"]

_CSV = (".csv", ".csv.gz")
_GLOB = set("*?[")
_UNITS = ["s", "ms", "us", "ns"]


@dataclass(frozen=True)
class Scan:
    """A source resolved to concrete files, with the union schema and each file's own.

    ``key_ranges`` holds ``(min, max)`` of signed integer join keys whose Parquet
    statistics cover every row group (``pit_sql`` narrows such keys to 4 bytes).
    ``hive`` holds the partition columns and their SQL types.
    """

    parquet: tuple[str, ...]
    csv: tuple[str, ...]
    schema: pa.Schema
    file_schemas: dict[str, pa.Schema] = field(default_factory=dict)
    key_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)
    hive: tuple[tuple[str, str], ...] = ()


def quote(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def epoch_us_sql(column: str, dtype: pa.DataType) -> str:
    """SQL for the UTC microseconds since the epoch of a timestamp or date column: a naive
    timestamp is UTC (cast as TIMESTAMP, never read in the session's zone), the SQL twin of
    ``featurestore/clock.py: to_micros``."""
    if pa.types.is_timestamp(dtype):
        kind = "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
        return f"epoch_us(CAST({column} AS {kind}))"
    return f"epoch_us(CAST({column} AS TIMESTAMP))"


def scan_sql(scan: Scan, columns: list[str], where: str = "") -> str:
    """SELECT ``columns`` from all of the scan's files (union by column name).

    Each part (the Parquet files together, each CSV file) selects only the columns it
    has; ``UNION ALL BY NAME`` makes the others null in its rows."""

    def cols(files) -> str:
        names = [set(scan.file_schemas[f].names) if f in scan.file_schemas else set(columns) for f in files]
        return ", ".join(ident(c) for c in columns if any(c in n for n in names))

    parts = []
    if scan.parquet:
        files = "[" + ", ".join(quote(f) for f in scan.parquet) + "]"
        union = ", union_by_name = true" if len(scan.parquet) > 1 else ""
        types = ", ".join(f"{quote(name)}: {sql}" for name, sql in scan.hive)
        hive = f", hive_partitioning = true, hive_types = {{{types}}}" if scan.hive else ", hive_partitioning = false"
        parts.append(f"SELECT {cols(scan.parquet)} FROM read_parquet({files}{union}{hive}){where}")
    for path in scan.csv:
        parts.append(f"SELECT {cols([path])} FROM read_csv({quote(path)}){where}")
    return " UNION ALL BY NAME ".join(parts)


def resolve_files(source: SourceTable, root: str | None = None) -> list[str]:
    """The concrete files behind a source, in a stable order; relative paths are under ``root``."""
    found: list[str] = []
    for entry in source.files:
        path = entry if os.path.isabs(entry) or not root else os.path.join(root, entry)
        if _GLOB & set(path):
            matches = sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))
            if not matches:
                raise InputError(f"source pattern {path!r} matches no files")
        elif os.path.isdir(path):
            matches = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
            if not matches:
                raise InputError(f"source folder {path!r} holds no .parquet files")
        elif os.path.isfile(path):
            matches = [path]
        else:
            raise InputError(f"source file {path!r} does not exist; check the source's path")
        found += matches
    if not found:
        raise InputError("the source lists no files")
    return list(dict.fromkeys(found))


def scan_source(source: SourceTable, root: str | None = None, join_keys: tuple[str, ...] = (),
                days: tuple[date | None, date | None] | None = None) -> Scan:
    """Resolve ``source``: files, schemas, and the value ranges of ``join_keys``; with
    ``days`` (first, last; None: open) and a ``date_partition``, only those days' files."""
    files = resolve_files(source, root)
    if days and source.date_partition:
        files = _prune_days(files, source.date_partition, days)
    parquet = [f for f in files if not f.lower().endswith(_CSV)]
    hive = _hive_columns(parquet)
    schemas: dict[str, pa.Schema] = {}
    # keys every file has statistics for (a partition's are the folders'), and their spans
    live, ranges = set(join_keys) - set(hive), {}
    for path in files:
        if path.lower().endswith(_CSV):
            schemas[path] = _csv_schema(path)
            live = set()  # CSV has no statistics
            continue
        stat = _stat(path)
        schemas[path] = _footer_schema(path, *stat)
        if hive:
            schemas[path] = _with_partitions(schemas[path], hive)
        for key in list(live):
            found = _key_range(path, *stat, key)
            if found is None:
                live.discard(key)
            elif found:  # () for a file without rows
                lo, hi = ranges.get(key, found)
                ranges[key] = (min(lo, found[0]), max(hi, found[1]))
    return Scan(
        parquet=tuple(parquet),
        csv=tuple(f for f in files if f.lower().endswith(_CSV)),
        schema=_union(schemas),
        file_schemas=schemas,
        key_ranges={k: r for k, r in ranges.items() if k in live},
        hive=tuple(hive.items()),
    )


_PARTITION = re.compile(r"^([^=/]+)=([^/]*)$")
_ARROW = {"BIGINT": pa.int64(), "DATE": pa.date32(), "VARCHAR": pa.string()}


def _partitions(path: str) -> list[tuple[str, str]]:
    """The ``name=value`` folders of ``path``, outermost first."""
    return [m.groups() for part in os.path.dirname(path).split(os.sep) if (m := _PARTITION.match(part))]


def _hive_columns(files: list[str]) -> dict[str, str]:
    """Partition column -> SQL type, when every file names the same partitions; else {}."""
    if not files:
        return {}
    names = [name for name, _ in _partitions(files[0])]
    values: dict[str, set[str]] = {name: set() for name in names}
    for path in files:
        found = _partitions(path)
        if [name for name, _ in found] != names:
            return {}
        for name, value in found:
            values[name].add(value)
    return {name: _sql_type(vals) for name, vals in values.items()}


def _sql_type(values: set[str]) -> str:
    if all(re.fullmatch(r"-?\d{1,18}", v) for v in values):
        return "BIGINT"
    if all(_day(v) for v in values):
        return "DATE"
    return "VARCHAR"


def _day(value: str) -> date | None:
    try:
        return date.fromisoformat(value) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else None
    except ValueError:
        return None


def _prune_days(files: list[str], column: str, days: tuple[date | None, date | None]) -> list[str]:
    """``files`` less those whose ``column=YYYY-MM-DD`` folder is outside ``days``; at least
    one file stays, so the schema is still known (the event-time filter then drops its rows)."""
    first, last = days

    def wanted(path: str) -> bool:
        day = next((_day(v) for name, v in _partitions(path) if name == column), None)
        return day is None or ((first is None or day >= first) and (last is None or day <= last))

    kept = [f for f in files if wanted(f)]
    return kept or files[:1]


def _with_partitions(schema: pa.Schema, hive: dict[str, str]) -> pa.Schema:
    """A file's schema with the partition columns; the folder wins over a column of the
    same name inside the file (DuckDB reads the folder's value, as Spark does)."""
    for name, sql in hive.items():
        field = pa.field(name, _ARROW[sql])
        index = schema.get_field_index(name)
        schema = schema.append(field) if index < 0 else schema.set(index, field)
    return schema


def _stat(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise InputError(f"cannot read Parquet file {path!r}: {exc.strerror}") from None
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8192)
def _footer(path: str, mtime_ns: int, size: int) -> pq.FileMetaData:
    """A file's footer, read once while it is unchanged (the arguments are the cache key)."""
    try:
        return pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"cannot read Parquet file {path!r}: {exc}") from None


@lru_cache(maxsize=8192)
def _footer_schema(path: str, mtime_ns: int, size: int) -> pa.Schema:
    return _footer(path, mtime_ns, size).schema.to_arrow_schema().remove_metadata()


@lru_cache(maxsize=8192)
def _key_range(path: str, mtime_ns: int, size: int, key: str) -> tuple[int, ...] | None:
    """(min, max) of a signed integer column over the file's row groups, () without rows;
    None when a row group with rows lacks statistics, or the column is not a signed integer."""
    meta, schema = _footer(path, mtime_ns, size), _footer_schema(path, mtime_ns, size)
    columns = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    index = columns.get(key)
    if index is None or key not in schema.names or not pa.types.is_signed_integer(schema.field(key).type):
        return None
    lo = hi = None
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        stats = group.column(index).statistics
        if stats is not None and stats.has_min_max:
            lo = stats.min if lo is None else min(lo, stats.min)
            hi = stats.max if hi is None else max(hi, stats.max)
        elif group.num_rows:
            return None
    return () if lo is None else (lo, hi)


def _csv_schema(path: str) -> pa.Schema:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(f"SELECT * FROM read_csv({quote(path)}) LIMIT 0").to_arrow_table().schema
    except duckdb.Error as exc:
        raise InputError(f"cannot read CSV file {path!r}: {str(exc).strip().splitlines()[0]}") from None
    finally:
        con.close()


def _union(schemas: dict[str, pa.Schema]) -> pa.Schema:
    """Columns by name in order of first appearance, types promoted as DuckDB's union does."""
    fields: dict[str, tuple[pa.Field, str]] = {}
    for path, schema in schemas.items():
        for f in schema:
            if f.name not in fields:
                fields[f.name] = (f, path)
                continue
            seen, where = fields[f.name]
            if seen.type == f.type:
                continue
            if pa.types.is_timestamp(seen.type) and pa.types.is_timestamp(f.type):
                # naive (meaning UTC) with aware, or two zones: aware UTC in the finer unit
                unit = max(seen.type.unit, f.type.unit, key=_UNITS.index)
                tz = seen.type.tz if seen.type.tz == f.type.tz else "UTC"
                fields[f.name] = (pa.field(f.name, pa.timestamp(unit, tz=tz)), where)
                continue
            try:
                merged = pa.unify_schemas([pa.schema([seen]), pa.schema([f])], promote_options="permissive")
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                raise SchemaError(
                    f"column {f.name!r} is {seen.type} in {where!r} but {f.type} in {path!r}; "
                    "make the files agree"
                ) from None
            fields[f.name] = (merged.field(0), where)
    return pa.schema([f for f, _ in fields.values()])
