"""``store.get_logs`` and ``store.serving_log_folder``: a serving log found by the name of
the model or feature service served (a feature service's ``logging_config`` may give its
own folder), read back by ``reader.py``. Functions take the ``FeatureStore``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow as pa

from featurestore.clock import parse_utc, to_micros
from featurestore.errors import NotFoundError
from featurestore.serving_log.layout import log_folder
from featurestore.serving_log.reader import logged_names, read_log

__all__ = ["get_logs", "serving_log_folder"]


def get_logs(store, name: str, start: datetime | str | None, end: datetime | str | None) -> pa.Table:
    """The log's rows with ``start <= log_time < end``; NotFoundError when ``name`` is
    neither logged nor a model or feature service."""
    start_us, end_us = (None if t is None else to_micros(t)
                        for t in (parse_utc(start, "logs start"), parse_utc(end, "logs end")))
    folder = serving_log_folder(store, name)
    services = store.contents.feature_services
    if not folder.is_dir() and name not in services:
        try:
            store.models.get_model(name)
        except NotFoundError:
            raise NotFoundError("model or feature service", name,
                                [*logged_names(store.config.offline_store), *services],
                                hint="a serving log is named after the model or feature service served") from None
    return read_log(folder, start_us, end_us)


def serving_log_folder(store, name: str) -> Path:
    """The folder of the serving log of model or feature service ``name``."""
    service = store.contents.feature_services.get(name)
    destination = service.logging.destination.path if service is not None and service.logging else ""
    return log_folder(store.config.offline_store, name, destination, store.repo_path)
