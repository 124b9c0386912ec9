"""The log columns of one answer (``/get-online-features``, or the features a
``/predict`` scored) as plain lists, built on the request thread (an online answer) or on
the writer's thread (a prediction: ``ServingLogWriter.write_later``), which turns them into
Arrow (``writer.py``); building them only copies references."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from featurestore.online.read import OnlineResponse, ReadPlan
from featurestore.serving_log.layout import (
    LATENCY_MS, OUTCOME, PREDICTION, STATUS_SUFFIX, TIME_TYPE, TIMESTAMP_SUFFIX,
)
from featurestore.transforms import request_columns

__all__ = ["log_columns", "online_log_columns"]


def log_columns(
    response: OnlineResponse,
    keys: int,
    request_fields: Mapping[str, Sequence[Any]] | None = None,
    request_types: Mapping[str, pa.DataType] | None = None,
    *,
    log_time_us: int,
    request_id: str,
    model: str | None = None,
    version: int | None = None,
    variant: str = "stable",
    prediction: Sequence[Any] | None = None,
    status: str = "ok",
    latency_ms: float | None = None,
) -> tuple[dict[str, list], dict[str, pa.DataType]]:
    """The columns and Arrow types of the rows of ``response`` (its first ``keys`` columns
    are the join keys, the others features) in the layout of ``layout.py``, with the
    request fields given and, for a model, ``prediction`` (one value or list per row), its
    ``status`` and ``latency_ms``."""
    n = len(response.values[0]) if response.values else 0
    columns: dict[str, list] = {
        "log_time": [log_time_us] * n, "request_id": [request_id] * n, "model": [model] * n,
        "version": [version] * n, "variant": [variant] * n,
    }
    types: dict[str, pa.DataType] = {"log_time": TIME_TYPE, "model": pa.string(), "version": pa.int64(),
                                     **(request_types or {})}
    for name, values, dtype in zip(response.feature_names[:keys], response.values[:keys], response.dtypes[:keys]):
        columns[name] = values
        if dtype is not None:
            types[name] = dtype.to_arrow()
    for field, values in (request_fields or {}).items():
        columns[field] = _plain(values, n)
    for i in range(keys, len(response.feature_names)):
        name = response.feature_names[i]
        columns[name] = response.values[i]
        columns[name + STATUS_SUFFIX] = response.statuses[i]
        columns[name + TIMESTAMP_SUFFIX] = response.event_timestamps[i]
        types[name + TIMESTAMP_SUFFIX] = TIME_TYPE
        if response.dtypes[i] is not None:
            types[name] = response.dtypes[i].to_arrow()
    if prediction is not None:
        columns[PREDICTION] = list(prediction)
        columns[OUTCOME] = [status] * n
        columns[LATENCY_MS] = [latency_ms] * n
        types[OUTCOME], types[LATENCY_MS] = pa.string(), pa.float64()
    return columns, types


def online_log_columns(plan: ReadPlan, response: OnlineResponse,
                       entity_rows: Mapping[str, Any] | Sequence[Mapping[str, Any]], *, log_time_us: int,
                       request_id: str) -> tuple[dict[str, list], dict[str, pa.DataType]]:
    """``log_columns`` of an online answer read by ``plan`` for ``entity_rows`` (the
    request fields its on-demand views took come from the rows)."""
    n = len(response.values[0]) if response.values else 0
    fields: dict[str, list] = {}
    types: dict[str, pa.DataType] = {}
    for transform, _ in plan.transforms:
        if transform.odfv.request_sources:
            fields.update(request_columns(transform.odfv, entity_rows, n))
            types.update({f.name: f.dtype.to_arrow() for r in transform.odfv.request_sources for f in r.schema})
    return log_columns(response, len(plan.join_keys), fields, types, log_time_us=log_time_us, request_id=request_id)


def _plain(values: Any, n: int) -> list:
    """A request field's values as a list of Python values: it may arrive as an Arrow or
    numpy array, a pandas Series, or one value for every row."""
    if isinstance(values, list):
        return values
    for method in ("to_pylist", "tolist"):
        if hasattr(values, method):
            values = getattr(values, method)()
            return values if isinstance(values, list) else [values] * n
    return list(values) if isinstance(values, (tuple, range)) else [values] * n
