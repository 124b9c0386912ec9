"""Online answers as Arrow on the wire, and back: ``OnlineResponse`` and ``Prediction``.

The server sends one table per answer and the client rebuilds the very object a local
store returns. An online answer's table holds each feature's values, then per feature its
statuses (``__status__<name>``) and event times in microseconds (``__ts__<name>``); the
schema's metadata lists the feature names and their types. A prediction's table is
``Prediction.to_arrow()`` (join keys, inputs, ``prediction``) with the model, version,
column split and statuses in the metadata.
"""

from __future__ import annotations

import json

import pyarrow as pa

from featurestore.models.predict import PREDICTION, Prediction
from featurestore.online.read import OnlineResponse
from featurestore.types import parse_type

__all__ = ["online_from_arrow", "online_to_arrow", "prediction_from_arrow", "prediction_to_arrow"]

_STATUS, _TS = "__status__", "__ts__"
_META = b"featurestore"


def online_to_arrow(response: OnlineResponse) -> pa.Table:
    table = response.to_arrow()
    for name, statuses, times in zip(response.feature_names, response.statuses, response.event_timestamps):
        table = table.append_column(f"{_STATUS}{name}", pa.array(statuses, pa.string()))
        table = table.append_column(f"{_TS}{name}", pa.array(times, pa.int64()))
    meta = {"features": response.feature_names, "dtypes": [None if t is None else str(t) for t in response.dtypes]}
    return table.replace_schema_metadata({_META: json.dumps(meta).encode()})


def online_from_arrow(table: pa.Table) -> OnlineResponse:
    meta = json.loads(table.schema.metadata[_META])
    names = meta["features"]
    dtypes = [None if t is None else parse_type(t) for t in meta["dtypes"]]
    values = [_values(table.column(i), dtype) for i, dtype in enumerate(dtypes)]
    statuses = [table.column(f"{_STATUS}{n}").to_pylist() for n in names]
    times = [table.column(f"{_TS}{n}").to_pylist() for n in names]
    return OnlineResponse(names, values, statuses, times, dtypes)


def _values(column: pa.ChunkedArray, dtype) -> list:
    values = column.to_pylist()
    name = getattr(dtype, "name", None)
    if name == "Map":  # Arrow gives a map as (key, value) pairs; the store's answer is a dict
        return [None if v is None else dict(v) for v in values]
    if name == "Json":
        return [None if v is None else json.loads(v) for v in values]
    return values


def prediction_to_arrow(prediction: Prediction) -> pa.Table:
    meta = {"model": prediction.model, "version": prediction.version,
            "entities": prediction.entities.column_names, "features": prediction.features.column_names,
            "statuses": prediction.statuses}
    return prediction.to_arrow().replace_schema_metadata({_META: json.dumps(meta, default=str).encode()})


def prediction_from_arrow(table: pa.Table) -> Prediction:
    meta = json.loads(table.schema.metadata[_META])
    plain = table.replace_schema_metadata(None)
    return Prediction(meta["model"], meta["version"], plain.column(PREDICTION).to_pylist(),
                      plain.select(meta["entities"]), plain.select(meta["features"]), meta["statuses"])
