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

How its cost follows the entity set: the distinct entity keys get dense UINTEGER ids
(``__ids``), and the source is inner-joined to them, so only rows whose keys some entity
row asks for reach the sort, and they carry a 4-byte key whatever the keys' types (one
string, a wide integer, several columns): with q (17 bytes) that fits DuckDB's fast
24-byte sort. The scan also keeps only events in ``[min T - ttl, max T]`` (``Window``),
written on the raw column so DuckDB skips Parquet row groups, files and hive partitions
by their statistics or folder names. Both filters drop rows no entity row could pick.
When the entity set asks for most of the source's keys (``dense``), filtering them costs
more than it saves: an integer key is then narrowed arithmetically from its statistics,
``key - min`` as UINTEGER when its span fits 32 bits. A wider one (a single key spanning
2**32 or more, with a ttl) is split: its low 32 bits are the ASOF key and its high part
``h`` is folded into the time, ``h * 2**b + (event - base)`` with ``base`` below every
event read and ``2**b`` above the last, both on the source and the entity side, so rows
of another ``h`` sharing the low bits sort below the entity row's whole block or above
it, and the ttl check (at least ``base``) rejects the former.

With ``known_at_timestamp`` a row must also have been created by T. The plain ASOF pick
is the answer wherever it was; the entity rows where it was not (a late write) take the
greatest q among their key's rows known by T, found by a hash join that, with a ttl,
looks only in the ttl-wide buckets of event time that ``[T - ttl, T]`` touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from featurestore.clock import duration_us, to_utc
from featurestore.offline.base import ViewRequest
from featurestore.offline.scan import Scan, epoch_us_sql, ident, quote, scan_sql

__all__ = ["ENTITY_TABLE", "Window", "entity_table", "latest_sql", "lookback_us", "pit_sql", "window_where"]

ENTITY_TABLE = "__fs_entities"
_SHIFT = 2**64
_LOW_MAX = 2**63 - 1
_LOW_MIN = -(2**63)
_EPOCH = datetime(1970, 1, 1)


@dataclass(frozen=True)
class Window:
    """The least and greatest entity time, in UTC microseconds."""

    first_us: int
    last_us: int


def entity_table(entities: pa.Table, timestamp_column: str, keys: list[str]) -> pa.Table:
    """What the entity side registers with DuckDB: row number, keys and time, zero-copy.

    Columns are renamed (``__rn``, ``__k0``..., ``__t``) so no user name needs quoting
    and none can clash with ours.
    """
    rn = pa.array(np.arange(entities.num_rows, dtype=np.int64))
    arrays = [rn, *(entities.column(k) for k in keys), entities.column(timestamp_column)]
    names = ["__rn", *(f"__k{i}" for i in range(len(keys))), "__t"]
    return pa.Table.from_arrays(arrays, names=names)


def _version(view: ViewRequest, scan: Scan, fold: str = "") -> str:
    """The HUGEINT q ordering a view's rows by (event, created); see the module doc.
    ``fold`` rewrites the event (``{}`` in it) as a folded wide key's ``_Fold.time``."""
    source = view.source
    event = epoch_us_sql(ident(source.timestamp_field), scan.schema.field(source.timestamp_field).type)
    event = fold.format(event) if fold else event
    if source.created_timestamp_field:
        created_type = scan.schema.field(source.created_timestamp_field).type
        low = f"coalesce({epoch_us_sql(ident(source.created_timestamp_field), created_type)}, {_LOW_MIN})"
    else:
        values = ", ".join(ident(c) for c in view.tie_columns or view.features) or "0"
        low = f"(CAST(hash({values}) AS HUGEINT) + {_LOW_MIN})"
    return f"CAST({event} AS HUGEINT) * {_SHIFT} + {low}"


def _source_sql(view: ViewRequest, scan: Scan, key_exprs: list[str], extra: str = "", where: str = "",
                join: str = "", fold: str = "") -> str:
    source = view.source
    needed = [*view.join_keys, source.timestamp_field, *view.features]
    if source.created_timestamp_field:
        needed.append(source.created_timestamp_field)
    else:  # hashed by _version
        needed += view.tie_columns
    needed = list(dict.fromkeys(needed))
    keys = ", ".join(f"{expr} AS __k{i}" for i, expr in enumerate(key_exprs))
    features = ", ".join(f"{ident(f)} AS __f{j}" for j, f in enumerate(view.features))
    select = ", ".join(s for s in (keys, f"{_version(view, scan, fold)} AS __q", extra, features) if s)
    return f"SELECT {select} FROM ({scan_sql(scan, needed, where)}) __s{join}"


def lookback_us(view: ViewRequest) -> int | None:
    """How long before an entity time a view's events still count, in microseconds: its
    longest aggregation window, else its ttl (None: no limit; a ttl of 0 is none)."""
    if view.aggregations:
        return max(duration_us(a.time_window) for a in view.aggregations)
    return duration_us(view.ttl) if view.ttl else None


def window_where(view: ViewRequest, window: Window | None) -> str:
    """The scan filter keeping events in ``[first T - lookback, last T]``, one microsecond
    wider each side (finer units round), on the raw column so statistics prune."""
    if window is None:
        return " WHERE FALSE"
    ts = ident(view.source.timestamp_field)
    bounds = []
    reach = lookback_us(view)
    if reach is not None and _in_range(low := window.first_us - reach - 1):
        bounds.append(f"{ts} >= {_literal_us(low)}")
    if _in_range(high := window.last_us + 1):
        bounds.append(f"{ts} <= {_literal_us(high)}")
    return " WHERE " + " AND ".join(bounds) if bounds else ""


def _ids_sql(entity_keys: list[str]) -> str:
    """Dense UINTEGER ids of the distinct non-null entity keys (``__ids``)."""
    keys = ", ".join(entity_keys)
    not_null = " AND ".join(f"{k} IS NOT NULL" for k in entity_keys)
    return (
        f"__ids AS (SELECT {keys}, CAST(row_number() OVER () AS UINTEGER) AS __id "
        f"FROM (SELECT DISTINCT {keys} FROM {ENTITY_TABLE} WHERE {not_null}))"
    )


def _key_pair(scan: Scan, key: str, entity_column: str) -> tuple[str, str]:
    """(entity-side, source-side) expressions of one join key spanning under 2**32 in the
    source's statistics, rebased to UINTEGER (values outside cannot match)."""
    lo, hi = scan.key_ranges[key]
    entity = (
        f"CASE WHEN e.{entity_column} BETWEEN {lo} AND {hi} "
        f"THEN CAST(CAST(e.{entity_column} AS HUGEINT) - {lo} AS UINTEGER) END"
    )
    return entity, f"CAST(CAST({ident(key)} AS BIGINT) - {lo} AS UINTEGER)"


@dataclass(frozen=True)
class _Fold:
    """A wide integer key split in two: its low 32 bits join, its high part goes into the
    time (see the module doc). ``time`` rewrites an epoch-microseconds expression (``{}``)."""

    pair: tuple[str, str]
    entity_time: str
    time: str


def _fold(scan: Scan, key: str, entity_column: str, view: ViewRequest, window: Window | None) -> _Fold | None:
    """The split of a key spanning 2**32 or more; None when the entity times have no lower
    bound (no ttl) or the high part and the events do not fit 62 bits together."""
    lo, hi = scan.key_ranges[key]
    if window is None or not view.ttl or hi - lo >= 2**63:
        return None
    # window_where's bounds: every event read is in [base, last T + 1]
    base, top = window.first_us - duration_us(view.ttl) - 1, window.last_us + 1
    bits = (top - base).bit_length()
    if not (_in_range(base) and _in_range(top)) or ((hi - lo) >> 32).bit_length() + bits > 62:
        return None
    source = f"(CAST({ident(key)} AS BIGINT) - ({lo}))"
    entity = (f"CASE WHEN e.{entity_column} BETWEEN {lo} AND {hi} "
              f"THEN CAST(CAST(e.{entity_column} AS HUGEINT) - ({lo}) AS BIGINT) END")

    def low(offset: str) -> str:
        return f"CAST({offset} & {2**32 - 1} AS UINTEGER)"

    def time(offset: str) -> str:  # a template: a key's name may hold braces
        offset = offset.replace("{", "{{").replace("}", "}}")
        return f"({offset} >> 32) * {2**bits} + ({{}} - ({base}))"

    return _Fold((low(entity), low(source)), time(f"({entity})"), time(source))


def _narrowed(view: ViewRequest, scan: Scan, entity_keys: list[str], window: Window | None,
              known_at_timestamp: bool) -> tuple[list[tuple[str, str]], _Fold | None] | None:
    """The key pairs of a dense entity set, narrowed from the statistics, and the one
    wide key folded into the time if any; None when a key cannot be narrowed (two wide
    ones, no ttl, or ``known_at_timestamp``, whose buckets read the plain time)."""
    pairs, fold = [], None
    for key, column in zip(view.join_keys, entity_keys):
        lo, hi = scan.key_ranges[key]
        if hi - lo < 2**32:
            pairs.append(_key_pair(scan, key, column))
            continue
        if fold or known_at_timestamp or not (fold := _fold(scan, key, column, view, window)):
            return None
        pairs.append(fold.pair)
    return pairs, fold


def pit_sql(
    view: ViewRequest,
    scan: Scan,
    entity_keys: list[str],
    entity_time_type: pa.DataType,
    window: Window | None,
    known_at_timestamp: bool = False,
    dense: bool = False,
) -> str:
    """One view's features for every entity row, with its row number ``__rn``, in no order.

    ``entity_keys`` are the registered entity table's key columns (``__k*``) matching
    ``view.join_keys`` in order; ``window`` spans the entity times. ``dense``: the entity
    keys cover most of the source's keys, so filtering by them would cost more than it
    saves; the keys are then narrowed from the source statistics instead of ``__ids``.
    """
    where = window_where(view, window)
    prefix, join, entity_join = "", "", ""
    narrowed = _narrowed(view, scan, entity_keys, window, known_at_timestamp) if dense and entity_keys else None
    fold = narrowed[1] if narrowed else None
    if not entity_keys:  # a view without entities: every entity row sees every source row
        pairs = [("0", "0")]
    elif narrowed:
        pairs = narrowed[0]
    else:
        on = " AND ".join(f"__s.{ident(c)} = __ids.{k}" for c, k in zip(view.join_keys, entity_keys))
        prefix, join = f"{_ids_sql(entity_keys)}, ", f" JOIN __ids ON {on}"
        entity_join = " LEFT JOIN __ids ON " + " AND ".join(f"e.{k} = __ids.{k}" for k in entity_keys)
        pairs = [("__ids.__id", "__ids.__id")]
    keys = "".join(f", {expr} AS __k{i}" for i, (expr, _) in enumerate(pairs))
    t_us = epoch_us_sql("e.__t", entity_time_type)
    t_us = fold.entity_time.format(t_us) if fold else t_us
    entity = f"SELECT e.__rn{keys}, {t_us} AS __t FROM {ENTITY_TABLE} e{entity_join}"
    on = " AND ".join(f"e.__k{i} = f.__k{i}" for i in range(len(pairs)))
    asof = f"{on} AND CAST(e.__t AS HUGEINT) * {_SHIFT} + {_LOW_MAX} >= f.__q"
    n = len(view.features)
    # The lowest q still inside the ttl: event == T - ttl with the least created value.
    ttl_q = duration_us(view.ttl) * _SHIFT - _LOW_MIN if view.ttl else None  # ttl 0: none

    def fresh(q: str, t: str) -> str:
        return f"{q} >= CAST({t} AS HUGEINT) * {_SHIFT} - {ttl_q}" if ttl_q else "TRUE"

    created = view.source.created_timestamp_field
    if not (known_at_timestamp and created):
        source = _source_sql(view, scan, [src for _, src in pairs], where=where, join=join,
                             fold=fold.time if fold else "")
        features = "".join(f", CASE WHEN {fresh('f.__q', 'e.__t')} THEN f.__f{j} END AS __f{j}" for j in range(n))
        return f"WITH {prefix}__e AS ({entity}) SELECT e.__rn{features} FROM __e e ASOF LEFT JOIN ({source}) f ON {asof}"
    # known_at_timestamp: the row must also have been known (created) by T. The plain pick
    # is the answer when it was; only entity rows where it was not (a late write) look for
    # the greatest q among the rows known by T. With a ttl those rows have events in
    # [T - ttl, T]: numbering the source in ttl-wide buckets of event time, each looks in
    # the (at most two) buckets that range touches instead of all of its key's history.
    times = [(c, scan.schema.field(c).type) for c in (view.source.timestamp_field, created)]
    event_us, created_us = (epoch_us_sql(ident(c), t) for c, t in times)
    extra = f"coalesce({created_us}, {event_us}) AS __known"
    key_cols = "".join(f"__k{i}, " for i in range(len(pairs)))
    late_rows, bucket_on = f"(SELECT __rn, {key_cols}__t FROM __pick WHERE __fk > __t)", ""
    if ttl_q:
        width = duration_us(view.ttl)
        base = window.first_us - width - 1 if window else 0  # at or below every event read
        extra += f", ({event_us} - {base}) // {width} AS __b"
        buckets = f"range((__t - {width} - {base}) // {width}, (__t - {base}) // {width} + 1)"
        late_rows = f"(SELECT __rn, {key_cols}__t, unnest({buckets}) AS __b FROM __pick WHERE __fk > __t)"
        bucket_on = " AND e.__b = f.__b"
    source = _source_sql(view, scan, [src for _, src in pairs], extra=extra, where=where, join=join)
    picked = "".join(f", f.__f{j}" for j in range(n))
    # the ASOF carries only what the pick needs (not the bucket): its sort moves every byte
    carried = ", ".join([*(f"__k{i}" for i in range(len(pairs))), "__q", "__known", *(f"__f{j}" for j in range(n))])
    pick = (f"SELECT e.*, f.__known AS __fk, f.__q AS __fq{picked} FROM ({entity}) e "
            f"ASOF LEFT JOIN (SELECT {carried} FROM __src) f ON {asof}")
    plain = "".join(f", CASE WHEN {fresh('__fq', '__t')} THEN __f{j} END" for j in range(n))
    late = " AND ".join([asof + bucket_on, "f.__known <= e.__t", fresh("f.__q", "e.__t")])
    best = "".join(f", arg_max_null(f.__f{j}, f.__q)" for j in range(n))
    return (
        f"WITH {prefix}__src AS ({source}), __pick AS ({pick}) "
        f"SELECT __rn{plain} FROM __pick WHERE NOT coalesce(__fk > __t, FALSE) UNION ALL "
        f"SELECT e.__rn{best} FROM {late_rows} e LEFT JOIN __src f ON {late} GROUP BY e.__rn"
    )


def _literal_us(us: int) -> str:
    return _literal(_EPOCH + timedelta(microseconds=us))


def _in_range(us: int) -> bool:
    """Whether ``us`` after the epoch is a moment Python (years 1..9999) can spell."""
    try:
        _EPOCH + timedelta(microseconds=us)
    except OverflowError:
        return False
    return True


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
