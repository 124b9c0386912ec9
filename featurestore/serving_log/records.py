"""The log columns of one online answer (``/get-online-features``, or the features a
``/predict`` scored), built on the request thread as plain lists: the background writer
turns them into Arrow (``writer.py``), so the request pays only for copying references."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from featurestore.online.read import OnlineResponse, ReadPlan
from featurestore.serving_log.layout import PREDICTION, STATUS_SUFFIX, TIME_TYPE, TIMESTAMP_SUFFIX
from featurestore.transforms import request_columns

__all__ = ["online_log_columns"]


def online_log_columns(
    plan: ReadPlan,
    response: OnlineResponse,
    entity_rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    log_time_us: int,
    request_id: str,
    model: str | None = None,
    version: int | None = None,
    variant: str = "stable",
    prediction: Sequence[Any] | None = None,
    prediction_type: pa.DataType | None = None,
    names: Mapping[str, str] | None = None,
) -> tuple[dict[str, list], dict[str, pa.DataType]]:
    """The columns and Arrow types of the rows of ``response`` (read by ``plan`` for
    ``entity_rows``), in the layout of ``layout.py``. ``names`` renames features (a
    model's signature inputs); ``prediction`` is one value (or list) per row."""
    keys = len(plan.join_keys)
    n = len(response.values[0]) if response.values else 0
    columns: dict[str, list] = {
        "log_time": [log_time_us] * n, "request_id": [request_id] * n, "model": [model] * n,
        "version": [version] * n, "variant": [variant] * n,
    }
    types: dict[str, pa.DataType] = {"log_time": TIME_TYPE, "model": pa.string(), "version": pa.int64()}
    for name, values, dtype in zip(response.feature_names[:keys], response.values[:keys], response.dtypes[:keys]):
        columns[name] = values
        if dtype is not None:
            types[name] = dtype.to_arrow()
    for transform, _ in plan.transforms:
        if transform.odfv.request_sources:
            for field, values in request_columns(transform.odfv, entity_rows, n).items():
                columns[field] = values if isinstance(values, list) else pa.array(values).to_pylist()
            types.update({f.name: f.dtype.to_arrow() for r in transform.odfv.request_sources for f in r.schema})
    renamed = names or {}
    for i in range(keys, len(response.feature_names)):
        name = renamed.get(response.feature_names[i], response.feature_names[i])
        columns[name] = response.values[i]
        columns[name + STATUS_SUFFIX] = response.statuses[i]
        columns[name + TIMESTAMP_SUFFIX] = response.event_timestamps[i]
        types[name + TIMESTAMP_SUFFIX] = TIME_TYPE
        if response.dtypes[i] is not None:
            types[name] = response.dtypes[i].to_arrow()
    if prediction is not None:
        columns[PREDICTION] = list(prediction)
        if prediction_type is not None:
            types[PREDICTION] = prediction_type
    return columns, types
