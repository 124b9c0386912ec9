"""Where the serving log lives and what its columns are called (docs/monitoring.md).

Files: ``<offline store>/_serving_logs/<name>/date=YYYY-MM-DD/<first µs>-<pid>-<random>.parquet``,
``name`` a model (rows from ``/predict``) or a feature service (rows from
``/get-online-features``); a service whose ``LoggingConfig`` names a
``FileLoggingDestination(path=...)`` has its ``date=`` folders in that folder instead. Each file is written whole under a temporary name starting
with ``.`` and renamed (``offline/files.py``), and each writing process names its own
files, so several server workers never write the same file and a reader never sees a torn one.

Columns: the metadata below, then each entity join key, each request field, and per
feature ``<f>`` its value, ``<f>__status`` (PRESENT, NULL_VALUE, NOT_FOUND,
OUTSIDE_MAX_AGE) and ``<f>__event_timestamp``, then for model rows ``prediction`` (null
for a request the model failed), ``status`` (the request's outcome as the
``featurestore_predictions_total`` metric spells it: ``ok``, ``model_error`` or
``timeout``) and ``latency_ms`` (the request's time in the server, from its arrival to its
answer or failure).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from featurestore.names import check_name

__all__ = ["FOLDER", "LATENCY_MS", "META_SCHEMA", "OUTCOME",
           "PREDICTION", "STATUS_SUFFIX", "TIMESTAMP_SUFFIX", "TIME_TYPE", "feature_columns",
           "log_folder", "logged_features"]

#: The folder under the offline store's root.
FOLDER = "_serving_logs"
STATUS_SUFFIX = "__status"
TIMESTAMP_SUFFIX = "__event_timestamp"
PREDICTION = "prediction"
OUTCOME = "status"  # a model row's outcome: ok, model_error, timeout
LATENCY_MS = "latency_ms"
TIME_TYPE = pa.timestamp("us", tz="UTC")

#: The columns every row has, first in every file.
META_SCHEMA = pa.schema([
    ("log_time", TIME_TYPE),
    ("request_id", pa.string()),
    ("model", pa.string()),  # null for feature service rows
    ("version", pa.int64()),
    ("variant", pa.string()),  # "stable" unless a rollout routed the request elsewhere
])


def log_folder(offline_root: str | Path, name: str, destination: str = "", repo: str | Path = ".") -> Path:
    """The folder of one model's or feature service's log: ``destination`` (a service's
    ``FileLoggingDestination`` path, relative to the ``repo`` root) when given, else a
    folder under ``_serving_logs`` (``name`` follows the name rule: never a path out of it)."""
    check_name("serving log name", name)
    if destination:
        return Path(repo) / destination  # an absolute destination stays as it is
    return Path(offline_root) / FOLDER / name


def feature_columns(feature: str) -> tuple[str, str, str]:
    """The value, status and event timestamp columns of a logged feature."""
    return feature, feature + STATUS_SUFFIX, feature + TIMESTAMP_SUFFIX


def logged_features(schema: pa.Schema) -> list[str]:
    """The features a log holds (those with a status column), in column order."""
    names = set(schema.names)
    return [n[: -len(STATUS_SUFFIX)] for n in schema.names
            if n.endswith(STATUS_SUFFIX) and n[: -len(STATUS_SUFFIX)] in names]
