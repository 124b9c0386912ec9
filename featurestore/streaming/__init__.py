"""Streaming features: windowed aggregations served online exactly as the batch side
computes them, fed by push and by Redis Streams (docs/streaming.md).

- ``events``: an aggregation view's stored events (layout, ids, payloads);
- ``aggregate``: the value as of a time, from stored events (the online side of the rule
  in ``featurestore/offline/aggregate_sql.py``);
- ``state`` / ``sqlite_state``: where the events live (Redis, SQLite), bounded by the
  longest window; ``ingest``: adding events (push, stream, offline load);
- ``config``, ``decode``, ``resp``, ``worker``: ``featurestore stream``, the consumer-group
  worker.
"""

from featurestore.streaming.aggregate import AggregateReader, aggregate
from featurestore.streaming.config import StreamSettings, StreamSpec
from featurestore.streaming.events import EVENT_ID_COLUMN, ViewLayout
from featurestore.streaming.ingest import AddResult, add_events, load_offline_events
from featurestore.streaming.state import AggregationState, RedisAggregationState, state_for
from featurestore.streaming.sqlite_state import SqliteAggregationState
from featurestore.streaming.worker import BatchReport, FlushReport, StreamObserver, StreamWorker

__all__ = [
    "EVENT_ID_COLUMN",
    "AddResult",
    "AggregateReader",
    "AggregationState",
    "BatchReport",
    "FlushReport",
    "RedisAggregationState",
    "SqliteAggregationState",
    "StreamObserver",
    "StreamSettings",
    "StreamSpec",
    "StreamWorker",
    "ViewLayout",
    "add_events",
    "aggregate",
    "load_offline_events",
    "state_for",
]
