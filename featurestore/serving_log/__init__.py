"""The serving log: what the server answered, row by row, for the monitors (docs/monitoring.md).

``layout.py`` (where files live, column names), ``writer.py`` (the background writer the
server logs through), ``reader.py`` (reading a log folder back), ``lookup.py``
(``store.get_logs``: a log by the model or feature service name), ``records.py`` (the
columns of one online answer).
"""

from featurestore.serving_log.layout import (
    LATENCY_MS,
    META_SCHEMA,
    OUTCOME,
    PREDICTION,
    STATUS_SUFFIX,
    TIMESTAMP_SUFFIX,
    feature_columns,
    log_folder,
    logged_features,
)
from featurestore.serving_log.reader import logged_names, read_log
from featurestore.serving_log.records import log_columns, online_log_columns
from featurestore.serving_log.writer import QUEUE_FULL, UNWRITABLE, ServingLogWriter

__all__ = [
    "LATENCY_MS",
    "META_SCHEMA",
    "OUTCOME",
    "PREDICTION",
    "QUEUE_FULL",
    "STATUS_SUFFIX",
    "TIMESTAMP_SUFFIX",
    "UNWRITABLE",
    "ServingLogWriter",
    "feature_columns",
    "log_columns",
    "log_folder",
    "logged_features",
    "logged_names",
    "online_log_columns",
    "read_log",
]
