"""The online seams: the online store (newest value per entity, written in batches, read
in one trip) and, beside it, the aggregation state (the recent events of aggregation views).

Backends keep, per (view, entity key), the feature values and the event timestamp of the
row they came from. A write never replaces a value with an older one: a row is written
only when its event timestamp is >= the stored one (newer-timestamp-wins), so a value
pushed with a later timestamp survives a materialization of older data, and replaying a
batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import pyarrow as pa

from featurestore.types import FeatureType

__all__ = ["EVENT_TIMESTAMP", "AggregationState", "AsyncReads", "EventLayout", "OnlineRow", "OnlineStore", "OnlineView",
           "StoredEvents", "online_view"]

#: The column of a written batch that holds each row's event time (timestamp[us, UTC]).
EVENT_TIMESTAMP = "event_timestamp"

#: One stored entity of one view: (event time in microseconds since the epoch, UTC;
#: values in the order of ``OnlineView.features``, None for null). None: not found.
OnlineRow = tuple[int, tuple] | None


@dataclass(frozen=True)
class OnlineView:
    """What a backend needs to know of a view to encode and decode its values."""

    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    dtypes: tuple[FeatureType, ...]


def online_view(view) -> OnlineView:
    """The OnlineView of a FeatureView: its keys, features and their types."""
    features = view.features
    return OnlineView(view.name, view.join_keys, tuple(f.name for f in features), tuple(f.dtype for f in features))


class OnlineStore(Protocol):
    #: Where the values live (``sqlite:/abs/path/online.db``, ``redis://host:6379/0`` without
    #: its password): materialization keeps a watermark per view *and location*, so a view
    #: switched to another store is materialized there from scratch.
    location: str

    def write_batch(self, view: OnlineView, table: pa.Table) -> int:
        """Write rows with columns ``view.join_keys``, ``view.features`` and
        ``EVENT_TIMESTAMP``; keep each entity's newest row. Returns rows in the batch."""

    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]
    ) -> list[list[OnlineRow]]:
        """For each (view, feature names, entity keys) request, one OnlineRow per key (values
        of the named features, in that order). All requests in one round trip."""

    def delete_view(self, view: OnlineView) -> None:
        """Remove every value of the view."""

    def health(self) -> None:
        """Return when the store is reachable; raise StoreUnavailableError naming it."""

    def close(self) -> None: ...


@runtime_checkable
class AsyncReads(Protocol):
    """What an online store across a network offers a server as well: its read and ping
    on the running event loop, bounded by a deadline (``online_store.read_timeout``), so
    waiting on the store never holds up other requests. An embedded store (SQLite) need
    not offer it: the server calls its ``read`` inline."""

    async def read_async(
        self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]
    ) -> list[list[OnlineRow]]:
        """``OnlineStore.read``; StoreUnavailableError past the deadline."""

    async def health_async(self) -> None:
        """``OnlineStore.health``; StoreUnavailableError past the deadline."""

    async def aclose(self) -> None:
        """Close the running loop's connections."""


class EventLayout(Protocol):
    """What a state needs of an aggregation view (``featurestore.streaming.events.ViewLayout``)."""

    name: str
    longest_us: int  # the longest window in microseconds: how long an event can count


#: Per entity key: None when the state has nothing for it, else its (event µs, payload)
#: pairs in the window, oldest first.
StoredEvents = list[tuple[int, bytes]] | None


class AggregationState(Protocol):
    """Where aggregation views keep their events online (layout and rules in
    ``redis_events.py``; backends: Redis, SQLite, next to the online store)."""

    def add(self, layout: EventLayout, keys: Sequence[bytes], times: Sequence[int], ids: Sequence[bytes],
            payloads: Sequence[bytes], horizon_us: int) -> int:
        """Add events (none at or before ``horizon_us``; rows aligned) unless their id is
        known; trim the touched entities to after ``horizon_us``. Returns events added."""

    def read(self, layout: EventLayout, keys: Sequence[bytes | None], lo_us: int, hi_us: int) -> list[StoredEvents]:
        """Per entity key, its events with ``lo_us < event µs <= hi_us``."""

    def delete_view(self, name: str) -> None:
        """Remove all of a view's events."""

    def close(self) -> None: ...
