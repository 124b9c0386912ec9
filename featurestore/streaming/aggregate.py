"""The online side of windowed aggregations: the value as of T from the stored events.

The rule is the batch side's, spelled out in ``featurestore/offline/aggregate_sql.py``;
this module computes it in Python from the events a state store returns, with the same
integer arithmetic for sums and the same conversions, so that an online lookup at T and
``get_historical_features`` at T agree bit for bit. Change one, change both (the parity
tests in tests/streaming pin them together).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.clock import duration_us, from_micros
from featurestore.definitions import FeatureView
from featurestore.errors import NotFoundError
from featurestore.offline.aggregate_sql import REST_SCALE, SUM_LIMIT, SUM_SCALE, to_double
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.streaming.events import ViewLayout

__all__ = ["AggregateReader", "Event", "aggregate"]

#: One stored event: (event µs, created µs or None, values in ``ViewLayout.columns`` order).
Event = tuple[int, "int | None", tuple]

_MIN_CREATED = -(2**63)
_F32 = struct.Struct("<f")
_SCALE, _REST = float(SUM_SCALE), float(REST_SCALE)
_INT_RANGE = {"Int32": (-(2**31), 2**31), "Int64": (-(2**63), 2**63)}


def _round_half_away(x: float) -> int:
    """``round`` as DuckDB's ``round(DOUBLE)``: to the nearest integer, halves away from 0."""
    whole = math.trunc(x)
    frac = x - whole  # exact for doubles
    if frac >= 0.5:
        whole += 1
    elif frac <= -0.5:
        whole -= 1
    return whole


def _to_float32(x: float) -> float | None:
    try:
        return _F32.unpack(_F32.pack(x))[0]
    except OverflowError:  # TRY_CAST(... AS FLOAT) gives null
        return None


@dataclass(frozen=True)
class _Spec:
    index: int  # the column's place in ViewLayout.columns
    function: str
    window_us: int
    kind: str
    dtype: str  # declared type name of the column


def _normalize(kind: str) -> Callable[[Any], Any]:
    if kind == "float":
        return lambda v: v + 0.0 if v is not None and math.isfinite(v) else None
    return lambda v: v


def _compute(spec: _Spec, values: list[tuple[int, int, Any]]) -> Any:
    """One aggregation over the (event µs, created µs, value) of its window, nulls removed."""
    fn = spec.function
    if fn == "count":
        return len(values)
    if not values:
        return None
    if fn == "last":
        value = max(values)[2]
    elif fn == "min":
        value = min(v for _, _, v in values)
    elif fn == "max":
        value = max(v for _, _, v in values)
    elif spec.kind == "float":  # exact: two integer totals (see aggregate_sql)
        high = rest = n = 0
        for _, _, v in values:
            if abs(v) < SUM_LIMIT:
                h = _round_half_away(v * _SCALE)
                high += h
                rest += _round_half_away((v - float(h) / _SCALE) * _REST)
                n += 1
        if not n:
            return None
        total = to_double(high) / _SCALE + to_double(rest) / _REST
        if fn == "mean":
            return total / n
        return _to_float32(total) if spec.dtype == "Float32" else total
    else:  # int sum / mean
        total = sum(v for _, _, v in values)
        if fn == "mean":
            return to_double(total) / len(values)
        lo, hi = _INT_RANGE[spec.dtype]
        return total if lo <= total < hi else None
    if spec.kind == "time":
        return from_micros(value)
    return value


def _specs(layout: ViewLayout, features: Sequence[str]) -> list[_Spec]:
    by_name = {a.name: a for a in layout.aggregations}
    specs = []
    for name in features:
        agg = by_name.get(name)
        if agg is None:
            raise NotFoundError("aggregation", name, by_name, where=f"view {layout.name!r}")
        i = layout.columns.index(agg.column)
        specs.append(_Spec(i, agg.function, duration_us(agg.time_window),
                           layout.kinds[i], layout.dtypes[i].name))
    return specs


def aggregate(layout: ViewLayout, features: Sequence[str], events: Sequence[Event], t_us: int) -> tuple:
    """The named aggregations of ``layout``'s view as of ``t_us`` over ``events``."""
    return _aggregate(_specs(layout, features), [_normalize(k) for k in layout.kinds], events, t_us)


def _aggregate(specs: list[_Spec], normalize: list[Callable], events: Sequence[Event], t_us: int) -> tuple:
    out = []
    for spec in specs:
        lo, norm, i = t_us - spec.window_us, normalize[spec.index], spec.index
        values = []
        for ts, created, row in events:
            if lo < ts <= t_us:
                v = norm(row[i])
                if v is not None:
                    values.append((ts, _MIN_CREATED if created is None else created, v))
        out.append(_compute(spec, values))
    return tuple(out)


class AggregateReader:
    """Online lookups of some aggregations of one view: reads the events of the longest
    requested window from ``state`` and aggregates them as of the lookup time."""

    def __init__(self, view: FeatureView, features: Sequence[str], state):
        self.layout = ViewLayout.of(view)
        self.features = tuple(features)
        self.state = state
        self._specs = _specs(self.layout, self.features)
        self._normalize = [_normalize(k) for k in self.layout.kinds]
        self._window_us = max((s.window_us for s in self._specs), default=0)
        self._encode_key = entity_key_encoder(tuple(self.layout.join_keys))
        self._decode = self.layout.payload_decoder()

    def read(self, keys: Sequence[tuple], now_us: int) -> list[tuple[int | None, tuple, bool]]:
        """Per entity key: (the latest event time in the window or None, the values,
        whether the store knows the entity at all)."""
        encoded = [self._encode_key(k) for k in keys]
        stored = self.state.read(self.layout, encoded, now_us - self._window_us, now_us)
        out = []
        decode = self._decode
        for found in stored:
            events = []
            if found:
                for ts, payload in found:
                    values, created = decode(payload)
                    events.append((ts, created, values))
            latest = max((e[0] for e in events), default=None)
            out.append((latest, _aggregate(self._specs, self._normalize, events, now_us), found is not None))
        return out
