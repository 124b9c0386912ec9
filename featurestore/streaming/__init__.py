"""Streaming features: windowed aggregations served online exactly as the batch side
computes them, fed by push and by Redis Streams (docs/streaming.md).

- ``events``: an aggregation view's stored events (layout, ids, payloads);
- ``aggregate``: the value as of a time, from stored events (the online side of the rule
  in ``featurestore/offline/aggregate_sql.py``);
- ``ingest``: adding events (push, stream, offline load) to the aggregation state (which
  lives with the online store: ``featurestore/online/{redis,sqlite}_events.py``);
- ``config``, ``decode``, ``resp``, ``consumer``, ``applier``, ``worker``: ``featurestore
  stream``, the consumer-group worker (loaded on first use: it needs redis).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from featurestore.streaming.aggregate import AggregateReader, aggregate
from featurestore.streaming.config import StreamSettings, StreamSpec
from featurestore.streaming.events import EVENT_ID_COLUMN, ViewLayout
from featurestore.streaming.ingest import AddResult, add_events, load_offline_events

if TYPE_CHECKING:
    from featurestore.streaming.worker import BatchReport, FlushReport, StreamObserver, StreamWorker

__all__ = [
    "EVENT_ID_COLUMN",
    "AddResult",
    "AggregateReader",
    "BatchReport",
    "FlushReport",
    "StreamObserver",
    "StreamSettings",
    "StreamSpec",
    "StreamWorker",
    "ViewLayout",
    "add_events",
    "aggregate",
    "load_offline_events",
]

_WORKER_NAMES = {"BatchReport", "FlushReport", "StreamObserver", "StreamWorker"}


def __getattr__(name: str):
    if name not in _WORKER_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("featurestore.streaming.worker"), name)
