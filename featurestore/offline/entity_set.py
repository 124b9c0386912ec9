"""What an entity set asks of the offline engine: checked, and summarised for pruning.

``check_entities`` refuses a malformed request with an error naming the column, and
returns the span of the entity times (``Window``) that bounds the events a join reads;
``days`` turns it into the UTC days of a date-partitioned source, ``dense`` tells whether
filtering the source by the entity keys would be worth it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore.clock import check_spellable
from featurestore.errors import InputError, SchemaError
from featurestore.offline.base import ViewRequest
from featurestore.offline.pit_sql import Window, lookback_us
from featurestore.offline.scan import Scan
from featurestore.types import arrow_kind

__all__ = ["check_entities", "check_key_type", "days", "dense", "is_time"]

_EPOCH = datetime(1970, 1, 1)
_MIN_US = (datetime(1, 1, 1) - _EPOCH) // timedelta(microseconds=1)


def check_entities(entities: pa.Table, timestamp_column: str, views: Sequence[ViewRequest]) -> Window | None:
    """Refuse a malformed request; the span of the entity times (None: no time at all)."""
    if not isinstance(entities, pa.Table):
        raise InputError(f"entity rows must be a pyarrow Table, not {type(entities).__name__}")
    names = entities.schema.names
    if timestamp_column not in names:
        raise InputError(f"the entity table has no timestamp column {timestamp_column!r}; its columns are {names}")
    dtype = entities.schema.field(timestamp_column).type
    if not (is_time(dtype) or pa.types.is_null(dtype)):
        raise InputError(
            f"entity timestamp column {timestamp_column!r} is {dtype}; convert it to a timestamp"
        )
    window = _check_entity_times(entities.column(timestamp_column), timestamp_column) if is_time(dtype) else None
    seen = set(names)
    for view in views:
        for key in view.join_keys:
            if key not in names:
                raise InputError(
                    f"view {view.name!r} joins on {key!r}, which the entity table lacks; its columns are {names}"
                )
        if len(view.output_names) != len(view.features):
            raise InputError(
                f"view {view.name!r}: {len(view.features)} features but {len(view.output_names)} output names"
            )
        for name in view.output_names:
            if name in seen:
                raise InputError(
                    f"output column {name!r} of view {view.name!r} already exists in the result; "
                    "rename it (full_feature_names=True prefixes the view name)"
                )
            seen.add(name)
    return window


def _check_entity_times(column: pa.ChunkedArray, name: str) -> Window | None:
    """Entity times may be any time in the years 1..9999 (before 1970: every feature is
    null; far ahead, for a backtest or a forecast: the newest rows), never one no layer
    can spell, which would fail the join or the conversion of its answer."""
    what = f"a time in entity timestamp column {name!r}"
    try:
        micros = column.cast(pa.timestamp("us"), safe=False) if pa.types.is_timestamp(column.type) and \
            column.type.unit == "ns" else column.cast(pa.timestamp("us"))
    except pa.ArrowInvalid:  # seconds or milliseconds beyond the int64 microsecond range
        raise InputError(f"{what} is outside the years 1..9999 in UTC") from None
    if len(micros) == micros.null_count:
        return None
    extremes = pc.min_max(micros.cast(pa.int64()))
    first, last = extremes["min"].as_py(), extremes["max"].as_py()
    for us in (first, last):
        check_spellable(us, what)
    return Window(first, last)


def is_time(dtype: pa.DataType) -> bool:
    return pa.types.is_timestamp(dtype) or pa.types.is_date(dtype)


def _kind(dtype: pa.DataType) -> str:
    """Integer, string and binary keys join across widths; other key types only with themselves."""
    kind = arrow_kind(dtype)
    if kind in ("integer", "string", "binary"):
        return kind
    return _kind(dtype.value_type) if pa.types.is_dictionary(dtype) else str(dtype)


def check_key_type(view: ViewRequest, key: str, entity: pa.DataType, source: pa.DataType) -> None:
    if pa.types.is_null(entity) or _kind(entity) == _kind(source):
        return
    raise SchemaError(
        f"join key {key!r} of view {view.name!r} is {entity} in the entity table but {source} in "
        f"the source {list(view.source.files)}; cast the entity column to {source}"
    )


def days(window: Window | None, view: ViewRequest) -> tuple[date | None, date | None] | None:
    """The UTC days of the events the entity rows can use: from the first entity time less
    the ttl (or the longest aggregation window) to the last."""
    if window is None:
        return None
    first = None
    if (reach := lookback_us(view)) is not None:
        first = (_EPOCH + timedelta(microseconds=max(window.first_us - reach, _MIN_US))).date()
    return first, (_EPOCH + timedelta(microseconds=window.last_us)).date()


def dense(entities: pa.Table, keys: tuple[str, ...], scan: Scan) -> bool:
    """Whether the entity set asks for most of the source's rows (integer keys with
    statistics): filtering the source by its keys would keep most rows, and probing every
    row costs more than sorting the few it would drop (measured by bench/pit.py: at 10M x
    100k, 63% of the keys, filtering is still cheaper). A key spanning under 2**32 counts
    as asked when the entity set holds three quarters of its span; a wider key, whose span
    says nothing of how many values it has, when three quarters of a sample of the source's
    keys (its first rows) are in the entity set."""
    if not keys or any(k not in scan.key_ranges for k in keys):
        return False
    for key in keys:
        lo, hi = scan.key_ranges[key]
        if hi - lo < 2**32:
            if _asked_in_span(entities.column(key), lo, hi) * 4 < (hi - lo + 1) * 3:
                return False
        elif _asked_share(entities.column(key), _key_sample(scan, key)) < 0.75:
            return False
    return True


_SAMPLE_ROWS = 65_536


def _asked_in_span(asked: pa.ChunkedArray, lo: int, hi: int) -> int:
    """How many distinct values in ``[lo, hi]`` the entity set asks for, counted on a
    bitmap of the span (cheaper than hashing); 0 when fewer rows than three quarters of
    the span could not reach the threshold anyway."""
    if len(asked) * 4 < (hi - lo + 1) * 3:
        return 0
    values = pc.cast(pc.drop_null(asked), pa.int64(), safe=False).to_numpy()
    values = values[(values >= lo) & (values <= hi)] - lo
    seen = np.zeros(hi - lo + 1, dtype=bool)
    seen[values] = True
    return int(np.count_nonzero(seen))


def _key_sample(scan: Scan, key: str) -> pa.Array:
    """The first rows' values of ``key`` in the source (one batch of its first file with rows)."""
    for path in scan.parquet:
        with pq.ParquetFile(path) as file:
            for batch in file.iter_batches(batch_size=_SAMPLE_ROWS, columns=[key]):
                if batch.num_rows:
                    return batch.column(0)
    return pa.array([], pa.int64())


def _asked_share(asked: pa.ChunkedArray, sample: pa.Array) -> float:
    """The share of ``sample`` whose values are in ``asked`` (0 for an empty sample)."""
    if not len(sample):
        return 0.0
    found = pc.is_in(sample, value_set=pc.unique(asked).cast(sample.type, safe=False))
    return pc.sum(found).as_py() / len(sample)
