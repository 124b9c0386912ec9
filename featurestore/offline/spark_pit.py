"""The point-in-time join and the latest-row scan as Spark DataFrames.

The rule is the DuckDB engine's (``pit_sql``'s docstring spells it): for an entity row
(keys K, time T) the chosen feature row has keys K and ``T - ttl <= event <= T`` (ttl 0
or None: no lower bound); the greatest event timestamp wins, ties going to the greatest
created timestamp (a null one loses every tie); with ``known_at_timestamp`` the row must
also have been created by T. Timestamps are compared as UTC microseconds.

Spark has no ASOF join, so the join is one sort, like the DuckDB engine's known-at path:
source rows and entity rows go into one stream, partitioned by the keys and ordered by
time (source rows first at an equal time, so ``event == T`` counts), and a running
``max`` over each source row's ``struct(event, created, features...)`` hands every
entity row the greatest (event, created) row at or before its time. Structs compare
field by field, so that max is exactly the (event, created) order. With
``known_at_timestamp`` a source row enters the stream at the moment it became visible,
``max(event, coalesce(created, event))``, instead of at its event time. The running max is
the latest visible row, so when it is older than ``T - ttl`` no row qualifies.

Without a created timestamp the tie-break field is ``xxhash64`` of the row's values of all
the view's features (``tie_columns``): ties are resolved arbitrarily but deterministically,
the same way for every request and for materialization (``latest_frame``). Spark's hash
is not DuckDB's, so between the two engines rows tied on event time may resolve
differently; within one engine, online and offline agree.
"""

from __future__ import annotations

from datetime import datetime

from featurestore.clock import duration_us, to_micros
from featurestore.offline.base import ViewRequest
from featurestore.offline.pit_sql import Window
from featurestore.offline.scan import Scan
from featurestore.offline.spark_session import micros_column, source_frame

__all__ = ["MIN_LONG", "latest_frame", "pit_frame", "versioned_source"]

MIN_LONG = -(2**63)


def versioned_source(spark, view: ViewRequest, scan: Scan, known_at: bool = False):
    """The view's rows with non-null keys and time: keys ``__k*``, ``__ev`` (event µs),
    ``__c`` (the tie-break: created µs, least when null, or the row's hash), ``__v`` (the
    µs at which the row is visible) and features ``__f*``."""
    from pyspark.sql import functions as F

    source = view.source
    created = source.created_timestamp_field
    needed = [*view.join_keys, source.timestamp_field, *view.features]
    needed += [created] if created else list(view.tie_columns)
    frame = source_frame(spark, scan, needed)
    ts_type = scan.schema.field(source.timestamp_field).type
    event = micros_column(F.col(_q(source.timestamp_field)), ts_type)
    if created:
        created_us = micros_column(F.col(_q(created)), scan.schema.field(created).type)
        tie = F.coalesce(created_us, F.lit(MIN_LONG))
    else:
        values = [F.col(_q(c)) for c in (view.tie_columns or view.features)] or [F.lit(0)]
        tie, created_us = F.xxhash64(*values), None
    visible = F.greatest(event, F.coalesce(created_us, event)) if known_at and created else event
    columns = [F.col(_q(k)).alias(f"__k{i}") for i, k in enumerate(view.join_keys)]
    columns += [event.alias("__ev"), tie.alias("__c"), visible.alias("__v")]
    columns += [F.col(_q(f)).alias(f"__f{j}") for j, f in enumerate(view.features)]
    condition = F.col("__ev").isNotNull()
    for i in range(len(view.join_keys)):
        condition = condition & F.col(f"__k{i}").isNotNull()
    return frame.select(*columns).where(condition)


def pit_frame(spark, view: ViewRequest, scan: Scan, entities, window: Window | None, known_at: bool):
    """``__rn`` and the view's features ``__f*`` for every entity row, in no order.

    ``entities`` has ``__rn``, ``__k*`` (this view's join keys, in order) and ``__t``
    (µs, null for a row without a time)."""
    from pyspark.sql import Window as W
    from pyspark.sql import functions as F

    n_keys, n = len(view.join_keys), len(view.features)
    ttl = duration_us(view.ttl) if view.ttl else None  # ttl 0: no lower bound
    rows = versioned_source(spark, view, scan, known_at)
    if window is None:
        rows = rows.where(F.lit(False))
    else:  # only events some entity row could pick
        rows = rows.where(F.col("__ev") <= window.last_us)
        if ttl:
            rows = rows.where(F.col("__ev") >= window.first_us - ttl)
    keys = [f"__k{i}" for i in range(n_keys)]
    features = [f"__f{j}" for j in range(n)]
    source = rows.select(*keys, F.lit(None).cast("long").alias("__rn"), F.col("__v").alias("__t"),
                         F.lit(0).alias("__o"), F.struct(*(F.col(c) for c in ["__ev", "__c", *features])).alias("__s"))
    struct_type = source.schema["__s"].dataType
    entity = entities.select(*keys, "__rn", "__t", F.lit(1).alias("__o"), F.lit(None).cast(struct_type).alias("__s"))
    stream = source.unionByName(entity)
    order = W.partitionBy(*keys).orderBy("__t", "__o").rowsBetween(W.unboundedPreceding, W.currentRow)
    picked = stream.withColumn("__p", F.max("__s").over(order)).where(F.col("__o") == 1)
    fresh = F.col("__p.__ev") >= F.col("__t") - ttl if ttl else F.lit(True)
    return picked.select("__rn", *(F.when(fresh, F.col(f"__p.{f}")).alias(f) for f in features))


def latest_frame(spark, view: ViewRequest, scan: Scan, start: datetime | None, end: datetime):
    """Per entity key, the greatest (event, created) row with ``start <= event <= end``:
    ``__k*``, ``__f*`` and ``__ev`` (µs)."""
    from pyspark.sql import functions as F

    rows = versioned_source(spark, view, scan).where(F.col("__ev") <= to_micros(end))
    if start is not None:
        rows = rows.where(F.col("__ev") >= to_micros(start))
    keys = [f"__k{i}" for i in range(len(view.join_keys))]
    features = [f"__f{j}" for j in range(len(view.features))]
    best = F.max(F.struct(*(F.col(c) for c in ["__ev", "__c", *features]))).alias("__p")
    grouped = rows.groupBy(*keys).agg(best) if keys else rows.agg(best).where(F.col("__p").isNotNull())
    return grouped.select(*keys, *(F.col(f"__p.{f}").alias(f) for f in features), F.col("__p.__ev").alias("__ev"))


def _q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
