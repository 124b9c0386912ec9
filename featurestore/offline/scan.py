"""A source resolved for reading: its concrete files, their schemas, what their statistics say.

A source lists files, folders and globs; a folder means every ``*.parquet`` below it, a
path ending in ``.csv``/``.csv.gz`` is CSV. The table is the union of the files by column
name (a column missing from a file is null there), so the schema is their union too.
Only footers are read here, never rows.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field

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
    statistics cover every row group and whose span fits 32 bits (see ``pit_sql``).
    """

    parquet: tuple[str, ...]
    csv: tuple[str, ...]
    schema: pa.Schema
    file_schemas: dict[str, pa.Schema] = field(default_factory=dict)
    key_ranges: dict[str, tuple[int, int]] = field(default_factory=dict)


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
        parts.append(f"SELECT {cols(scan.parquet)} FROM read_parquet({files}{union}){where}")
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


def scan_source(source: SourceTable, root: str | None = None, join_keys: tuple[str, ...] = ()) -> Scan:
    """Resolve ``source``: files, schemas, and the value ranges of ``join_keys``."""
    files = resolve_files(source, root)
    schemas: dict[str, pa.Schema] = {}
    ranges: dict[str, tuple[int, int] | None] | None = dict.fromkeys(join_keys)
    for path in files:
        if path.lower().endswith(_CSV):
            schemas[path] = _csv_schema(path)
            ranges = None  # CSV has no statistics
            continue
        try:
            meta = pq.read_metadata(path)
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"cannot read Parquet file {path!r}: {exc}") from None
        schemas[path] = meta.schema.to_arrow_schema().remove_metadata()
        if ranges is not None:
            ranges = _merge_ranges(ranges, meta, schemas[path])
    return Scan(
        parquet=tuple(f for f in files if not f.lower().endswith(_CSV)),
        csv=tuple(f for f in files if f.lower().endswith(_CSV)),
        schema=_union(schemas),
        file_schemas=schemas,
        key_ranges={k: r for k, r in (ranges or {}).items() if r is not None and r[1] - r[0] < 2**32},
    )


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


def _merge_ranges(ranges: dict, meta: pq.FileMetaData, schema: pa.Schema) -> dict:
    """Fold one file's min/max statistics of signed integer keys into ``ranges``.

    A key drops out (no narrowing) when any row group lacks statistics for it.
    """
    columns = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    merged = {}
    for key, known in ranges.items():
        index = columns.get(key)
        if index is None or key not in schema.names or not pa.types.is_signed_integer(schema.field(key).type):
            continue
        lo, hi = known if known else (None, None)
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            stats = group.column(index).statistics
            if stats is not None and stats.has_min_max:
                lo = stats.min if lo is None else min(lo, stats.min)
                hi = stats.max if hi is None else max(hi, stats.max)
            elif group.num_rows:
                break
        else:
            if lo is not None:
                merged[key] = (lo, hi)
    return merged
