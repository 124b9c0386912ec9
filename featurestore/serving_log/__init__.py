"""The serving log: what the server answered, row by row, for the monitors (docs/monitoring.md).

``layout.py`` (where files live, column names), ``writer.py`` (the background writer the
server logs through), ``reader.py`` (reading a log folder back), ``lookup.py``
(``store.get_logs``: a log by the model or feature service name), ``records.py`` (what
one logged answer holds, and how many become Arrow), ``process.py`` and ``child.py`` (a
server worker's writer, in a process of its own) and ``shadow.py`` (where that process
scores a shadow rollout's candidate on the logged rows).
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
from featurestore.serving_log.records import LogEntry, online_log_entry
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
    "LogEntry",
    "ServingLogWriter",
    "feature_columns",
    "log_folder",
    "logged_features",
    "logged_names",
    "online_log_entry",
    "read_log",
]
