"""The online store seam: newest value per entity, written in batches, read in one trip.

Backends keep, per (view, entity key), the feature values and the event timestamp of the
row they came from. A write never replaces a value with an older one: a row is written
only when its event timestamp is >= the stored one (newer-timestamp-wins), so a value
pushed with a later timestamp survives a materialization of older data, and replaying a
batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from featurestore.types import FeatureType

__all__ = ["EVENT_TIMESTAMP", "OnlineRow", "OnlineStore", "OnlineView"]

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


class OnlineStore(Protocol):
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
