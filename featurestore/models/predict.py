"""Predictions in Python: ``store.predict_online`` and ``store.predict`` (batch scoring).

Both follow one flow: the version's features are read (online: the one online read the
server makes; batch: ``get_historical_features``, point in time), on-demand transforms run
inside that read, ``featurestore.models.inputs`` lays out the signature's columns with the
version's ``on_missing`` policy, and the version's model predicts. So a backtest scores
exactly what the model would have seen online at each row's time.

Loaded models are kept per version (a version never changes), the most recently used
``MODEL_CACHE_SIZE`` of them; a name or alias is resolved again on every call, so a moved
alias is followed at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa

from featurestore.errors import InputError, ModelError, SchemaError
from featurestore.models.inputs import InputSpec, fill_missing, input_spec, model_inputs, request_values
from featurestore.models.loaded import LoadedModel
from featurestore.models.records import ModelVersion

__all__ = ["BATCH_ROWS", "MODEL_CACHE_SIZE", "PREDICTION", "Prediction", "Predictions"]

#: Loaded models a store keeps (least recently used dropped first).
MODEL_CACHE_SIZE = 8
#: Entity rows scored per point-in-time join by ``store.predict``.
BATCH_ROWS = 100_000
#: The prediction's column name in batch output and tables.
PREDICTION = "prediction"

_PRESENT, _NULL = "PRESENT", "NULL_VALUE"


class Prediction:
    """An online prediction: the version, one prediction per entity row, and the model's
    input columns (after the ``on_missing`` policy) with the read's status of each value."""

    __slots__ = ("model", "version", "predictions", "entities", "features", "statuses")

    def __init__(self, model: str, version: int, predictions: list, entities: pa.Table, features: pa.Table,
                 statuses: dict[str, list[str]]):
        self.model, self.version, self.predictions = model, version, predictions
        self.entities = entities          # the join key columns
        self.features = features          # the model's inputs, in signature order
        self.statuses = statuses          # input name -> status per row

    def to_dict(self) -> dict[str, Any]:
        """``{"model", "version", "predictions", "features", "statuses"}`` (column-major)."""
        return {"model": self.model, "version": self.version, "predictions": list(self.predictions),
                "features": self.features.to_pydict(), "statuses": dict(self.statuses)}

    def to_arrow(self) -> pa.Table:
        """One row per entity: join keys, the inputs, then ``prediction``."""
        table = pa.Table.from_arrays([*self.entities.columns, *self.features.columns],
                                     names=[*self.entities.column_names, *self.features.column_names])
        return table.append_column(PREDICTION, _prediction_array(self.predictions))

    def to_df(self):
        """``to_arrow()`` as a pandas DataFrame."""
        return self.to_arrow().to_pandas()

    def to_polars(self):
        import polars

        return polars.from_arrow(self.to_arrow())

    def __repr__(self) -> str:
        return f"Prediction({self.model}/{self.version}, {len(self.predictions)} row(s))"


class Predictions:
    """The prediction side of a ``FeatureStore``: its loaded models and the two flows."""

    def __init__(self, store, cache_size: int = MODEL_CACHE_SIZE):
        self._store = store
        self._size = cache_size
        self._loaded: OrderedDict[tuple[str, int, bool], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def loaded(self, version: ModelVersion, trusted: bool = False) -> LoadedModel:
        """The version's model, loaded once while it stays among the recently used
        (``trusted``: a pickled model may load; kept apart from the untrusted load)."""
        key = (version.name, version.version, bool(trusted))
        with self._lock:
            model = self._loaded.get(key)
            if model is not None:
                self._loaded.move_to_end(key)
                return model
        model = self._store.models.load(version.uri, trusted=trusted)  # outside the lock: loading may take a while
        with self._lock:
            self._loaded[key] = model
            self._loaded.move_to_end(key)
            while len(self._loaded) > self._size:
                self._loaded.popitem(last=False)
        return model

    # -- online ------------------------------------------------------------------------

    def online(self, uri: str, entity_rows: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]],
               request: Mapping[str, Any] | None = None, trusted: bool = False) -> Prediction:
        version = self._store.models.get(uri)
        spec = input_spec(version)
        rows = _with_request(entity_rows, request)
        plan, response = self._store.online_reader.read(self._store.online, list(spec.features), rows,
                                                        spec.full_feature_names)
        features = model_inputs(spec, response, rows, join_keys=plan.join_keys)
        predictions = self.loaded(version, trusted).predict(features)
        keys = response.to_arrow().select(list(plan.join_keys))
        statuses = {c: response.statuses[response.feature_names.index(c)] for c in spec.feature_columns}
        for field in spec.request_fields:  # as sent (a filled default was still missing)
            sent = request_values(spec, rows, field, features.num_rows)
            statuses[field] = [_PRESENT if v is not None else _NULL for v in sent]
        return Prediction(version.name, version.version, _checked(predictions, features.num_rows, spec), keys,
                          features, statuses)

    # -- batch -------------------------------------------------------------------------

    def batches(self, uri: str, entity_df: Any, *, timestamp_field: str = "event_timestamp",
                batch_rows: int = BATCH_ROWS, progress: Callable[[str, int], None] | None = None,
                prediction_column: str = PREDICTION, trusted: bool = False) -> Iterator[pa.Table]:
        """``batch`` one chunk of ``batch_rows`` entity rows at a time (for writing as it goes);
        the version and its model are resolved and the entity set checked before the first."""
        from featurestore.retrieval import to_arrow_table

        if not isinstance(batch_rows, int) or isinstance(batch_rows, bool) or batch_rows < 1:
            raise InputError(f"batch_rows must be a positive number of rows, not {batch_rows!r}")
        version = self._store.models.get(uri)
        spec = input_spec(version)
        entities = to_arrow_table(entity_df, self._store.offline)
        keys = self._check_entities(spec, entities, timestamp_field, prediction_column)
        model = self.loaded(version, trusted)
        return self._score(spec, model, entities, keys, timestamp_field, batch_rows, progress, prediction_column)

    def batch(self, uri: str, entity_df: Any, **options: Any) -> pa.Table:
        """The entity rows with the version's point-in-time features (after its
        ``on_missing`` policy) and a prediction column."""
        return pa.concat_tables(list(self.batches(uri, entity_df, **options)))

    def _score(self, spec: InputSpec, model: LoadedModel, entities: pa.Table, keys: list[str], timestamp_field: str,
               batch_rows: int, progress, prediction_column: str) -> Iterator[pa.Table]:
        done = 0
        for start in range(0, max(entities.num_rows, 1), batch_rows):
            chunk = entities.slice(start, batch_rows)
            joined = self._store.get_historical_features(
                chunk, list(spec.features), spec.full_feature_names, timestamp_field=timestamp_field).to_arrow()
            joined = fill_missing(spec, joined, [*keys, timestamp_field])
            out = joined.select([*entities.column_names, *spec.feature_columns])
            predictions = model.predict(joined) if chunk.num_rows else []
            yield out.append_column(prediction_column, _prediction_array(_checked(predictions, chunk.num_rows, spec)))
            done += chunk.num_rows
            if progress is not None:
                progress(spec.uri, done)

    def _check_entities(self, spec: InputSpec, entities: pa.Table, timestamp_field: str,
                        prediction_column: str) -> list[str]:
        """The join keys; a SchemaError naming every column the entity set lacks."""
        plan = self._store.read_plan(list(spec.features), spec.full_feature_names)
        needed = [*plan.join_keys, timestamp_field, *spec.request_fields]
        for transform, _ in plan.transforms:
            needed += [f.name for source in transform.odfv.request_sources for f in source.schema]
        missing = [c for c in dict.fromkeys(needed) if c not in entities.column_names]
        if missing:
            raise SchemaError(
                f"the entity set has no column(s) {', '.join(map(repr, missing))}, which model {spec.uri} needs "
                f"(join keys, the timestamp column and request fields); it has {', '.join(entities.column_names)}")
        clash = [c for c in (*spec.feature_columns, prediction_column) if c in entities.column_names]
        if clash:
            raise SchemaError(f"the entity set already has column(s) {', '.join(map(repr, clash))}, which the "
                              f"scored output of {spec.uri} adds; rename or drop them")
        return list(plan.join_keys)


def _with_request(entity_rows: Any, request: Mapping[str, Any] | None) -> Any:
    """The entity rows with the request-time values beside the join keys, as the online
    read takes them (rows or columns, as given)."""
    if not request:
        return entity_rows
    if not isinstance(request, Mapping):
        raise InputError(f"request must be a dict of request field -> list of values, not {type(request).__name__}")
    if isinstance(entity_rows, Mapping):
        return {**entity_rows, **request}
    rows = list(entity_rows)
    for name, values in request.items():
        if not isinstance(values, (list, tuple)) or len(values) != len(rows):
            raise InputError(f"request field {name!r} must be a list of {len(rows)} values, one per entity row")
    return [{**row, **{name: values[j] for name, values in request.items()}} for j, row in enumerate(rows)]


def _checked(predictions: Any, n: int, spec: InputSpec) -> list:
    predictions = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    if len(predictions) != n:
        raise ModelError(f"model {spec.uri} returned {len(predictions)} predictions for {n} rows")
    return predictions


def _prediction_array(predictions: list) -> pa.Array:
    try:
        return pa.array(predictions)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ModelError(f"the model's predictions cannot form a column: {exc}") from None
