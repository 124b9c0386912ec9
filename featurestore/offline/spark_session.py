"""The Spark side of the Spark offline engine: the session, and sources and entity rows as
DataFrames.

One ``SparkSession`` per process (Spark's own rule: ``getOrCreate`` hands back the running
one), so every engine of a process shares it, and the settings the engine relies on are
set on it at first use:

- ``spark.sql.session.timeZone = UTC``: a naive timestamp means UTC (DESIGN.md), and
  ``CAST(ts AS TIMESTAMP)`` of a ``TIMESTAMP_NTZ`` column reads it in the session zone;
- ``spark.sql.execution.arrow.pyspark.enabled``: Arrow in (``createDataFrame``) and out;
- ``spark.sql.ansi.enabled = false``: an overflowing cast or sum is null, as the DuckDB
  engine's ``TRY_CAST`` gives it, instead of failing the whole query.

A source is read as the DuckDB engine reads it (``offline/scan.py`` resolves the same
files, folders and globs on the driver): the union of its files by column name, a column
missing from a file being null there, each column cast to the union's type. Files sharing
one schema are read by one ``spark.read.parquet`` (Spark splits them over the executors).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Mapping
from itertools import groupby

import pyarrow as pa

from featurestore.errors import InputError, SchemaError
from featurestore.offline.scan import Scan

__all__ = ["DEFAULT_CONF", "SPARK_MASTER", "micros_column", "source_frame", "spark_session", "spark_type"]

#: The master when the config names none: every core of this machine.
SPARK_MASTER = "local[*]"

#: Settings the engine's semantics rely on (see the module docstring); a user's ``conf``
#: may add to them, not change them.
DEFAULT_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.legacy.parquet.nanosAsLong": "true",  # Spark has no nanosecond timestamps
}

_LOCK = threading.Lock()


def spark_session(master: str = SPARK_MASTER, conf: Mapping[str, str] | None = None):
    """The process's SparkSession: the running one (a notebook's, spark-submit's) or a new
    one on ``master`` (or a Spark Connect server, ``sc://...``) with ``conf``; either way
    with ``DEFAULT_CONF`` set."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError(
            "offline_store.engine is spark but pyspark is not installed; install the extra "
            "(pip install 'featurestore[spark]') and a Java 17+ runtime"
        ) from None
    with _LOCK:
        session = SparkSession.getActiveSession()
        if session is None:
            builder = SparkSession.builder.appName("featurestore")
            # sc://host:15002 is a Spark Connect server; anything else a master URL
            builder = builder.remote(master) if master.startswith("sc://") else builder.master(master)
            if master.startswith("local") and not os.environ.get("PYSPARK_PYTHON"):
                # local Python workers run this interpreter, so they import what this process does
                os.environ["PYSPARK_PYTHON"] = sys.executable
            for key, value in {**(conf or {}), **DEFAULT_CONF}.items():
                builder = builder.config(key, str(value))
            session = builder.getOrCreate()
        for key, value in DEFAULT_CONF.items():  # runtime settings, also on a session we did not build
            if session.conf.get(key, None) != value:
                session.conf.set(key, value)
    return session


def spark_type(dtype: pa.DataType):
    """The Spark SQL type of an Arrow type (through Spark's own Arrow mapping)."""
    from pyspark.sql.pandas.types import from_arrow_type

    if pa.types.is_timestamp(dtype):  # Spark holds microseconds; aware means TIMESTAMP
        from pyspark.sql.types import TimestampNTZType, TimestampType

        return TimestampType() if dtype.tz else TimestampNTZType()
    if pa.types.is_dictionary(dtype):
        return spark_type(dtype.value_type)
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return spark_type(pa.string())
    if pa.types.is_unsigned_integer(dtype):  # Spark has no unsigned types: the next wider signed one
        return spark_type({8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(dtype.bit_width, pa.decimal128(20, 0)))
    return from_arrow_type(dtype)


def micros_column(column, dtype: pa.DataType):
    """A timestamp or date column as UTC microseconds since the epoch (a naive timestamp is
    UTC: the session zone is UTC), the Spark twin of ``scan.epoch_us_sql``."""
    from pyspark.sql import functions as F

    if pa.types.is_timestamp(dtype) and dtype.unit == "ns":  # read as nanoseconds (see source_frame)
        return F.floor(column / 1000).cast("long")
    return F.unix_micros(column.cast("timestamp"))


def source_frame(spark, scan: Scan, columns: list[str]):
    """The scan's files as one DataFrame of ``columns`` (union by name, cast to the union's
    types; nanosecond timestamps as nanoseconds since the epoch, a ``long``)."""
    from pyspark.sql import functions as F

    wanted = [c for c in dict.fromkeys(columns) if c in scan.schema.names]
    frames = []
    parquet = [f for f in scan.parquet]
    hive = dict(scan.hive)
    key = lambda path: _schema_key(scan.file_schemas.get(path))  # noqa: E731
    for _, group in groupby(sorted(parquet, key=key), key=key):
        files = list(group)
        reader = spark.read
        if hive:  # partition columns come from the folders below the common root
            reader = reader.option("basePath", _base_path(files, hive))
        frames.append((reader.parquet(*files), scan.file_schemas.get(files[0])))
    for path in scan.csv:
        schema = scan.file_schemas[path]
        struct = _struct(schema)
        frames.append((spark.read.csv(path, header=True, schema=struct), schema))
    if not frames:
        raise InputError("the source lists no files")
    union = None
    for frame, schema in frames:
        present = set(frame.columns)
        selected = []
        for name in wanted:
            target = scan.schema.field(name).type
            if name in present:
                selected.append(_as(F.col(_quoted(name)), target).alias(name))
            else:
                selected.append(F.lit(None).cast(_frame_type(target)).alias(name))
        frame = frame.select(*selected)
        union = frame if union is None else union.unionByName(frame)
    return union


def _as(column, target: pa.DataType):
    if pa.types.is_timestamp(target) and target.unit == "ns":
        return column.cast("long")
    return column.cast(_frame_type(target))


def _frame_type(dtype: pa.DataType):
    from pyspark.sql.types import LongType

    if pa.types.is_timestamp(dtype) and dtype.unit == "ns":
        return LongType()
    try:
        return spark_type(dtype)
    except (TypeError, NotImplementedError) as exc:
        raise SchemaError(f"the Spark engine cannot read a column of type {dtype}: {exc}") from None


def _struct(schema: pa.Schema):
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, _frame_type(f.type), True) for f in schema])


def _schema_key(schema: pa.Schema | None) -> str:
    return "" if schema is None else str(schema)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _base_path(files: list[str], hive: dict[str, str]) -> str:
    """The folder above the outermost partition folder (``.../root/date=.../x.parquet``)."""
    first = next(iter(hive))
    parts = files[0].split(os.sep)
    index = next(i for i, part in enumerate(parts) if part.startswith(first + "="))
    return os.sep.join(parts[:index]) or os.sep
