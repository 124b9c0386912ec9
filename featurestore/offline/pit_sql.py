"""The SQL (DuckDB dialect) behind the point-in-time join and the latest-row scan.

The point-in-time rule, enforced here: for an entity row (keys K, time T) the chosen
feature row has keys K and ``T - ttl <= event_timestamp <= T`` (both ends inclusive; no
lower bound without a ttl); among those the greatest event timestamp wins, ties going to
the greatest created timestamp (a null created timestamp loses every tie). Timestamps are
compared as UTC microseconds: naive ones are read as UTC, finer ones rounded.

How it stays as fast as a plain ASOF join: each source row gets one HUGEINT "version"

    q = event_us * 2**64 + created_us        (created_us in [-2**63, 2**63))

which orders rows exactly by (event, created). The entity row asks for ``q <= T * 2**64 +
2**63 - 1``, i.e. ``event <= T``, so DuckDB's ASOF join itself picks the greatest (event,
created) among the candidates, tie-breaking included. The ASOF pick is the latest row at
or before T, so when it is older than ``T - ttl`` no row qualifies and a CASE nulls it.
Without a created timestamp the low half is a hash of the row's values of all the view's
features (``tie_columns``, not only the requested ones): ties are then resolved
arbitrarily but deterministically, the same way for every request and for
materialization (identical rows are interchangeable).

ASOF sorts the source by (join keys, q), and DuckDB's sort is much faster when that key
fits 24 bytes: a BIGINT key (9 bytes with its null marker) plus q (17) does not, so an
integer key whose source values span less than 2**32 (known from Parquet statistics) is
rebased to UINTEGER on both sides; entity values outside the span cannot match anyway.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

from featurestore.clock import duration_us, to_utc
from featurestore.offline.base import ViewRequest
from featurestore.offline.scan import Scan, epoch_us_sql, ident, quote, scan_sql

__all__ = ["ENTITY_TABLE", "entity_table", "latest_sql", "pit_sql"]

ENTITY_TABLE = "__fs_entities"
_SHIFT = 2**64
_LOW_MAX = 2**63 - 1
_LOW_MIN = -(2**63)


def entity_table(entities: pa.Table, timestamp_column: str, keys: list[str]) -> pa.Table:
    """What the entity side registers with DuckDB: row number, keys and time, zero-copy.

    Columns are renamed (``__rn``, ``__k0``..., ``__t``) so no user name needs quoting
    and none can clash with ours.
    """
    rn = pa.array(np.arange(entities.num_rows, dtype=np.int64))
    arrays = [rn, *(entities.column(k) for k in keys), entities.column(timestamp_column)]
    names = ["__rn", *(f"__k{i}" for i in range(len(keys))), "__t"]
    return pa.Table.from_arrays(arrays, names=names)


def _version(view: ViewRequest, scan: Scan) -> str:
    """The HUGEINT q ordering a view's rows by (event, created); see the module doc."""
    source = view.source
    event = epoch_us_sql(ident(source.timestamp_field), scan.schema.field(source.timestamp_field).type)
    if source.created_timestamp_field:
        created_type = scan.schema.field(source.created_timestamp_field).type
        low = f"coalesce({epoch_us_sql(ident(source.created_timestamp_field), created_type)}, {_LOW_MIN})"
    else:
        values = ", ".join(ident(c) for c in view.tie_columns or view.features) or "0"
        low = f"(CAST(hash({values}) AS HUGEINT) + {_LOW_MIN})"
    return f"CAST({event} AS HUGEINT) * {_SHIFT} + {low}"


def _key_pair(scan: Scan, key: str, entity_column: str, narrow: bool) -> tuple[str, str]:
    """(entity-side, source-side) expressions of one join key."""
    if narrow and key in scan.key_ranges:
        lo, hi = scan.key_ranges[key]
        entity = (
            f"CASE WHEN {entity_column} BETWEEN {lo} AND {hi} "
            f"THEN CAST(CAST({entity_column} AS HUGEINT) - {lo} AS UINTEGER) END"
        )
        return entity, f"CAST(CAST({ident(key)} AS BIGINT) - {lo} AS UINTEGER)"
    return entity_column, ident(key)


def _source_sql(view: ViewRequest, scan: Scan, key_exprs: list[str], extra: str = "", where: str = "") -> str:
    source = view.source
    needed = [*view.join_keys, source.timestamp_field, *view.features]
    if source.created_timestamp_field:
        needed.append(source.created_timestamp_field)
    else:  # hashed by _version
        needed += view.tie_columns
    needed = list(dict.fromkeys(needed))
    keys = ", ".join(f"{expr} AS __k{i}" for i, expr in enumerate(key_exprs))
    features = ", ".join(f"{ident(f)} AS __f{j}" for j, f in enumerate(view.features))
    select = ", ".join(s for s in (keys, f"{_version(view, scan)} AS __q", extra, features) if s)
    return f"SELECT {select} FROM ({scan_sql(scan, needed, where)})"


def pit_sql(
    view: ViewRequest,
    scan: Scan,
    entity_keys: list[str],
    entity_time_type: pa.DataType,
    known_at_timestamp: bool = False,
) -> str:
    """One view's features for every entity row, with its row number ``__rn``, in no order.

    ``entity_keys`` are the registered entity table's key columns (``__k*``) matching
    ``view.join_keys`` in order.
    """
    created = view.source.created_timestamp_field
    slow = known_at_timestamp and created is not None
    pairs = [_key_pair(scan, key, col, narrow=not slow) for key, col in zip(view.join_keys, entity_keys)]
    time = f"CAST({epoch_us_sql('__t', entity_time_type)} AS HUGEINT) * {_SHIFT}"
    columns = ["__rn", *(f"{expr} AS __k{i}" for i, (expr, _) in enumerate(pairs)), f"{time} AS __t"]
    entity = f"SELECT {', '.join(columns)} FROM {ENTITY_TABLE}"
    on = " AND ".join(f"e.__k{i} = f.__k{i}" for i in range(len(pairs)))
    # The lowest q still inside the ttl: event == T - ttl with the least created value.
    lower = f"e.__t - {duration_us(view.ttl) * _SHIFT - _LOW_MIN}" if view.ttl else None  # ttl 0: none
    if not slow:
        features = ", ".join(
            (f"CASE WHEN f.__q >= {lower} THEN f.__f{j} END" if lower else f"f.__f{j}") + f" AS __f{j}"
            for j in range(len(view.features))
        )
        source = _source_sql(view, scan, [src for _, src in pairs])
        cond = f"{on} AND " if on else ""
        return (
            f"SELECT e.__rn{', ' if features else ''}{features} FROM ({entity}) e "
            f"ASOF LEFT JOIN ({source}) f ON {cond}e.__t + {_LOW_MAX} >= f.__q"
        )
    # known_at_timestamp: the row must also have been created by T. No single ASOF
    # ordering expresses that, so join every candidate and keep the greatest q per row.
    created_us = epoch_us_sql(ident(created), scan.schema.field(created).type)
    event_us = epoch_us_sql(ident(view.source.timestamp_field), scan.schema.field(view.source.timestamp_field).type)
    known = f"CAST(coalesce({created_us}, {event_us}) AS HUGEINT) * {_SHIFT} AS __known"
    source = _source_sql(view, scan, [src for _, src in pairs], extra=known)
    conds = [on] if on else []
    conds += [f"f.__q <= e.__t + {_LOW_MAX}", "f.__known <= e.__t"]
    if lower:
        conds.append(f"f.__q >= {lower}")
    features = ", ".join(f"arg_max_null(f.__f{j}, f.__q) AS __f{j}" for j in range(len(view.features)))
    return (
        f"SELECT e.__rn{', ' if features else ''}{features} FROM ({entity}) e "
        f"LEFT JOIN ({source}) f ON {' AND '.join(conds)} GROUP BY e.__rn"
    )


def latest_sql(view: ViewRequest, scan: Scan, start: datetime | None, end: datetime) -> str:
    """Per entity key, the greatest-q row with ``start <= event <= end``."""
    ts = view.source.timestamp_field
    ts_type = scan.schema.field(ts).type
    bounds = [f"{ident(ts)} <= {_literal(end)}"]
    if start is not None:
        bounds.insert(0, f"{ident(ts)} >= {_literal(start)}")
    event = epoch_us_sql(ident(ts), ts_type)
    keys = [ident(k) for k in view.join_keys]
    # Filtering the raw column lets DuckDB skip Parquet row groups by their statistics.
    where = " WHERE " + " AND ".join(bounds)
    scan_sql = _source_sql(view, scan, keys, extra=f"{event} AS __ev", where=where)
    key_cols = [f"__k{i}" for i in range(len(keys))]
    columns = [
        *key_cols,
        *(f"arg_max_null(__f{j}, __q) AS __f{j}" for j in range(len(view.features))),
        "CAST(make_timestamp(max(__ev)) AS TIMESTAMPTZ) AS __ev",
    ]
    group = f"GROUP BY {', '.join(key_cols)}" if key_cols else "HAVING count(*) > 0"
    return f"SELECT {', '.join(columns)} FROM ({scan_sql}) {group}"


def _literal(moment: datetime) -> str:
    """``moment`` as a naive UTC TIMESTAMP literal (naive means UTC). DuckDB compares it
    with any timestamp or date column: with TIMESTAMPTZ through the session's UTC zone,
    and, unlike a TIMESTAMPTZ literal, also with TIMESTAMP_NS and TIMESTAMPTZ_NS columns
    (nanosecond Parquet files, or a folder mixing units and zones)."""
    return f"TIMESTAMP {quote(to_utc(moment).strftime('%Y-%m-%d %H:%M:%S.%f'))}"
