"""``get_online_features``: the newest values per entity, with a status for each value.

This is the serving hot path, so everything that depends only on the request's feature
list (which views, which store fields, which ttl) is worked out once and cached as a
``ReadPlan``; a call then only builds entity keys, makes one store round trip and lays
the answer out column-major, as the HTTP API returns it. ``OnlineReader.read`` is the one
read both ``FeatureStore.get_online_features`` and ``POST /get-online-features`` call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pyarrow as pa

from featurestore.bounded import BoundedCache
from featurestore.clock import clock_us, duration_us, from_micros
from featurestore.definitions import FeatureService
from featurestore.documents import document_array
from featurestore.entity_values import convert_key_value
from featurestore.errors import InputError
from featurestore.online.base import AsyncReads, OnlineStore, OnlineView, online_view
from featurestore.refs import ResolvedTransform, ResolvedView, resolve_request
from featurestore.repo import RepoContents
from featurestore.transforms import input_types, request_columns, run_transform
from featurestore.types import JSON_TYPES, Bool, FeatureType, Float32, Float64, Int32, Int64, String

__all__ = ["PLAN_CACHE_SIZE", "AggregatesFactory", "AggregatesReader", "FieldStatus", "OnlineReader", "OnlineResponse",
           "ReadPlan", "read_online", "read_online_async"]


class FieldStatus:
    """Per-value statuses, spelled as Feast spells them."""

    PRESENT = "PRESENT"
    NULL_VALUE = "NULL_VALUE"
    NOT_FOUND = "NOT_FOUND"
    OUTSIDE_MAX_AGE = "OUTSIDE_MAX_AGE"


class AggregatesReader(Protocol):
    """The aggregations of one view as of a time (``streaming.aggregate.AggregateReader``)."""

    def read(self, keys: Sequence[tuple], now_us: int) -> Iterable[tuple[int | None, Sequence[Any], bool]]:
        """Per entity key: (newest event µs, the values, whether the entity has events)."""


#: Builds the reader of some aggregations of a view: ``(view, feature names) -> reader``.
AggregatesFactory = Callable[[Any, tuple[str, ...]], AggregatesReader]


@dataclass(frozen=True)
class _PlanItem:
    view: OnlineView
    features: tuple[str, ...]
    output_names: tuple[str, ...]
    dtypes: tuple[FeatureType, ...]
    ttl_us: int | None
    # A view with aggregations: its values are computed from its events as of the read
    # time by this reader (featurestore/streaming/aggregate.py); no ttl applies.
    aggregates: AggregatesReader | None = None


@dataclass(frozen=True)
class ReadPlan:
    join_keys: tuple[str, ...]
    key_types: dict[str, FeatureType | None]
    items: tuple[_PlanItem, ...]
    # On-demand views (each with its input types) run after the store's answer, and the
    # source features read only for them are dropped; both empty for most plans.
    transforms: tuple[tuple[ResolvedTransform, dict[str, FeatureType]], ...] = ()
    hidden: frozenset[str] = frozenset()

    @property
    def aggregates(self) -> bool:
        """Whether a view of the plan computes aggregations (read from their own state)."""
        return any(item.aggregates is not None for item in self.items)

    @classmethod
    def build(cls, views: Sequence[ResolvedView], aggregates: AggregatesFactory | None = None,
              transforms: Sequence[tuple[ResolvedTransform, dict[str, FeatureType]]] = (),
              hidden: frozenset[str] = frozenset()) -> "ReadPlan":
        """The plan of resolved views; ``aggregates`` builds the readers of aggregation views."""
        keys: list[str] = []
        key_types: dict[str, FeatureType | None] = {}
        items = []
        for rv in views:
            declared = {f.name: f.dtype for f in rv.view.schema}
            for key in rv.view.join_keys:
                if key not in key_types:
                    keys.append(key)
                    key_types[key] = declared.get(key)
            dtypes = {f.name: f.dtype for f in rv.view.features}
            ttl = duration_us(rv.view.ttl) if rv.view.ttl else None  # exact, as pit_sql
            reader = None
            if rv.view.aggregations:
                reader, ttl = aggregates(rv.view, tuple(rv.features)), None
            items.append(_PlanItem(online_view(rv.view), rv.features, rv.output_names,
                                   tuple(dtypes[f] for f in rv.features), ttl, reader))
        return cls(tuple(keys), key_types, tuple(items), tuple(transforms), hidden)


class OnlineResponse:
    """Column-major results: ``feature_names[i]`` has ``values[i][j]`` for entity row j."""

    __slots__ = ("feature_names", "values", "statuses", "event_timestamps", "dtypes")

    def __init__(self, feature_names, values, statuses, event_timestamps, dtypes):
        self.feature_names: list[str] = feature_names
        self.values: list[list[Any]] = values
        self.statuses: list[list[str]] = statuses
        self.event_timestamps: list[list[int | None]] = event_timestamps  # microseconds, UTC
        self.dtypes: list[FeatureType | None] = dtypes

    def to_dict(self, include_event_timestamps: bool = False) -> dict[str, list]:
        out = dict(zip(self.feature_names, self.values))
        if include_event_timestamps:
            for name, ts in zip(self.feature_names, self.event_timestamps):
                out[f"{name}__ts"] = [_datetime(t) for t in ts]
        return out

    def to_arrow(self) -> pa.Table:
        arrays = [
            document_array(values, dtype.to_arrow()) if dtype is not None and dtype.name in JSON_TYPES
            else pa.array(values, type=dtype.to_arrow() if dtype is not None else None)
            for values, dtype in zip(self.values, self.dtypes)
        ]
        return pa.Table.from_arrays(arrays, names=self.feature_names)

    def to_polars(self):
        import polars

        return polars.from_arrow(self.to_arrow())

    def to_pandas(self):
        return self.to_arrow().to_pandas()

    def to_df(self, include_event_timestamps: bool = False):
        """Feast's name: a pandas DataFrame, with ``{feature}__ts`` columns if asked."""
        if not include_event_timestamps:
            return self.to_pandas()
        import pandas

        return pandas.DataFrame(self.to_dict(include_event_timestamps=True))


def _datetime(us: int | None) -> datetime | None:
    return None if us is None else from_micros(us)


_PY_TYPES: dict[FeatureType, tuple[type, ...]] = {
    Int64: (int,), Int32: (int,), String: (str,), Bool: (bool,), Float32: (float, int), Float64: (float, int),
}


def entity_columns(entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
                   plan: ReadPlan) -> tuple[dict[str, list], int]:
    """The join key columns of a request (rows or columns), type-checked against the plan."""
    if isinstance(entity_rows, Mapping):
        columns = {k: _key_values(v) for k, v in entity_rows.items()}
    else:
        columns = {k: [] for k in plan.join_keys}
        for i, row in enumerate(entity_rows):
            if not isinstance(row, Mapping):
                raise InputError(f"entity row {i} must be a mapping of join key to value, not {type(row).__name__}")
            for k in plan.join_keys:
                if k not in row:
                    raise InputError(f"entity row {i} has no join key {k!r}; it has {', '.join(map(str, row)) or 'no keys'}")
                columns[k].append(row[k])
    n = -1
    for key in plan.join_keys:
        if key not in columns:
            raise InputError(f"entities are missing join key {key!r} (given: {', '.join(columns) or 'none'})")
        if n == -1:
            n = len(columns[key])
        elif len(columns[key]) != n:
            raise InputError(f"join key columns differ in length: {key!r} has {len(columns[key])} values, expected {n}")
        expected = plan.key_types.get(key)
        allowed = _PY_TYPES.get(expected) if expected is not None else None
        if allowed is not None:
            values = columns[key]
            for i, value in enumerate(values):
                if not isinstance(value, allowed) and hasattr(value, "item") and not hasattr(value, "__len__"):
                    value = values[i] = value.item()  # a numpy scalar: its Python value
                if not isinstance(value, allowed) and (converted := convert_key_value(value, expected)) is not None:
                    value = values[i] = converted  # "1001" for an Int64 key, as Feast converts it
                if not isinstance(value, allowed) or (isinstance(value, bool) and expected is not Bool):
                    raise InputError(
                        f"join key {key!r} is {expected} but got {type(value).__name__} value {value!r}; "
                        f"send {expected} values"
                    )
    return columns, max(n, 0)


def _key_values(column: Any) -> list:
    """One join key's values: a list or tuple, a numpy array or pandas Series, or one value."""
    if isinstance(column, (list, tuple)):
        return list(column)
    if not isinstance(column, (str, bytes)) and hasattr(column, "tolist"):
        values = column.tolist()  # numpy array, pandas Series: Python values
        if isinstance(values, list):
            return values
    return [column]


def read_online(
    store: OnlineStore,
    plan: ReadPlan,
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    clock: Callable[[], float] = time.time,
) -> OnlineResponse:
    columns, n, requests, stored = _requests(plan, entity_rows)
    rows = store.read(stored) if n and stored else [[] for _ in stored]
    response = _response(plan, columns, n, requests, rows, clock)
    return _transformed(plan, response, entity_rows, n) if plan.transforms else response


async def read_online_async(
    store: AsyncReads,
    plan: ReadPlan,
    entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
    clock: Callable[[], float] = time.time,
) -> OnlineResponse:
    """``read_online`` with the store's round trip awaited (a plan without aggregations:
    their state is read by the blocking client)."""
    columns, n, requests, stored = _requests(plan, entity_rows)
    rows = await store.read_async(stored) if n and stored else [[] for _ in stored]
    response = _response(plan, columns, n, requests, rows, clock)
    return _transformed(plan, response, entity_rows, n) if plan.transforms else response


def _requests(plan: ReadPlan, entity_rows) -> tuple[dict[str, list], int, list, list]:
    """The entity columns, their count, the (view, features, keys) per plan item, and
    those of them the online store answers (not the aggregation views)."""
    columns, n = entity_columns(entity_rows, plan)
    requests = []
    for item in plan.items:
        key_cols = [columns[k] for k in item.view.join_keys]
        keys = list(zip(*key_cols)) if n else []
        requests.append((item.view, item.features, keys))
    return columns, n, requests, [r for r, item in zip(requests, plan.items) if item.aggregates is None]


def _response(plan: ReadPlan, columns: dict[str, list], n: int, requests: list, rows: list,
              clock: Callable[[], float]) -> OnlineResponse:
    rows_per_view = iter(rows)
    now_us = clock_us(clock)
    names = list(plan.join_keys)
    values = [columns[k] for k in plan.join_keys]
    statuses = [[FieldStatus.PRESENT] * n for _ in plan.join_keys]
    stamps: list[list[int | None]] = [[None] * n for _ in plan.join_keys]
    dtypes: list[FeatureType | None] = [plan.key_types.get(k) for k in plan.join_keys]
    for item, request in zip(plan.items, requests):
        cols: list[list[Any]] = [[None] * n for _ in item.features]
        sts: list[list[str]] = [[FieldStatus.NOT_FOUND] * n for _ in item.features]
        ts: list[int | None] = [None] * n
        oldest = None if item.ttl_us is None else now_us - item.ttl_us
        if item.aggregates is not None:  # count 0 and nulls for an entity without events, as offline
            for j, (latest, row_values, known) in enumerate(item.aggregates.read(request[2], now_us) if n else ()):
                ts[j] = latest
                for i, value in enumerate(row_values):
                    cols[i][j] = value
                    sts[i][j] = (FieldStatus.PRESENT if value is not None else
                                 FieldStatus.NULL_VALUE if known else FieldStatus.NOT_FOUND)
        for j, row in enumerate(next(rows_per_view) if item.aggregates is None else ()):
            if row is None:
                continue
            event_us, row_values = row
            ts[j] = event_us
            if oldest is not None and event_us < oldest:
                for c in sts:
                    c[j] = FieldStatus.OUTSIDE_MAX_AGE
                continue
            for i, value in enumerate(row_values):
                cols[i][j] = value
                sts[i][j] = FieldStatus.PRESENT if value is not None else FieldStatus.NULL_VALUE
        names.extend(item.output_names)
        values.extend(cols)
        statuses.extend(sts)
        stamps.extend([ts] * len(item.features))  # one list per view, shared by its features
        dtypes.extend(item.dtypes)
    return OnlineResponse(names, values, statuses, stamps, dtypes)


def _transformed(plan: ReadPlan, response: OnlineResponse, entity_rows, n: int) -> OnlineResponse:
    """The answer with the on-demand views' outputs appended (request fields from the
    entity rows) and the columns read only as their inputs dropped."""
    index = {name: i for i, name in enumerate(response.feature_names)}
    for transform, types in plan.transforms:
        inputs: dict[str, Any] = {feature: response.values[index[column]] for feature, column in transform.inputs}
        if transform.odfv.request_sources:
            inputs.update(request_columns(transform.odfv, entity_rows, n))
        out = run_transform(transform.odfv, inputs, types, n)
        for feature, name in zip(transform.features, transform.output_names):
            values = out.column(feature).to_pylist()
            response.feature_names.append(name)
            response.values.append(values)
            response.statuses.append([FieldStatus.PRESENT if v is not None else FieldStatus.NULL_VALUE for v in values])
            response.event_timestamps.append([None] * n)
            response.dtypes.append(_declared(transform, feature))
    if plan.hidden:
        keep = [i for i, name in enumerate(response.feature_names) if name not in plan.hidden]
        return OnlineResponse(*([column[i] for i in keep] for column in (
            response.feature_names, response.values, response.statuses, response.event_timestamps, response.dtypes)))
    return response


def _declared(transform: ResolvedTransform, feature: str) -> FeatureType:
    return next(f.dtype for f in transform.odfv.schema if f.name == feature)


#: Read plans kept per reader. A server sees a handful of feature lists; the bound only
#: stops clients that send endless distinct lists from growing its memory.
PLAN_CACHE_SIZE = 256


class OnlineReader:
    """Online reads of one store: ``ReadPlan``s cached per feature list (until ``reset``,
    when definitions change; at most ``PLAN_CACHE_SIZE``), then ``read_online``.

    ``contents()`` gives the current definitions and ``aggregates(view, features)`` the
    reader of an aggregation view's values (the store builds it over its aggregation state).
    """

    def __init__(self, contents: Callable[[], RepoContents], aggregates: AggregatesFactory,
                 clock: Callable[[], float] = time.time):
        self._contents = contents
        self._aggregates = aggregates
        self.clock = clock
        self._plans: BoundedCache[Any, ReadPlan] = BoundedCache(PLAN_CACHE_SIZE)

    def reset(self) -> None:
        """Forget the plans (definitions changed)."""
        self._plans = BoundedCache(PLAN_CACHE_SIZE)

    def plan(self, features: Sequence[str] | FeatureService | str, full_feature_names: bool = False) -> ReadPlan:
        key = (features if isinstance(features, str) else
               features.name if isinstance(features, FeatureService) else tuple(features), full_feature_names)
        # The cache is taken before the definitions: definitions are swapped before the
        # cache is reset (under the definitions' lock, possibly on another thread), so a plan
        # built from definitions replaced meanwhile lands in the cache that was dropped.
        plans = self._plans
        plan = plans.get(key)
        if plan is None:
            contents = self._contents()
            resolution = resolve_request(contents, features, full_feature_names)
            transforms = tuple((t, input_types(t.odfv, contents)) for t in resolution.transforms)
            plan = ReadPlan.build(resolution.views, self._aggregates, transforms, resolution.hidden)
            plans.put(key, plan)
        return plan

    def read(
        self,
        online: OnlineStore,
        features: Sequence[str] | FeatureService | str,
        entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
        full_feature_names: bool = False,
    ) -> tuple[ReadPlan, OnlineResponse]:
        """The plan of the feature list and the newest values per entity from ``online``."""
        plan = self.plan(features, full_feature_names)
        return plan, read_online(online, plan, entity_rows, self.clock)
