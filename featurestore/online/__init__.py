"""The online side: the newest feature values per entity for low-latency reads, and the
recent events of aggregation views. Backends are built in ``featurestore/backends.py``."""

from __future__ import annotations

from featurestore.online.base import (
    EVENT_TIMESTAMP,
    AggregationState,
    EventLayout,
    OnlineRow,
    OnlineStore,
    OnlineView,
    StoredEvents,
    online_view,
)

__all__ = ["EVENT_TIMESTAMP", "AggregationState", "EventLayout", "OnlineRow", "OnlineStore", "OnlineView",
           "StoredEvents", "online_view"]
