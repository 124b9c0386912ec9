"""What remote calls hand back: a lazy training-set job and saved dataset versions.

``RemoteRetrievalJob`` has ``RetrievalJob``'s reading methods (``to_arrow``, ``to_reader``,
``to_pandas``/``to_df``, ``to_polars``, ``to_parquet``) and ``save``; nothing is sent
until one of them is called, and ``to_reader`` streams the rows as the server sends them.
``RemoteSavedDataset`` is a ``SavedDataset`` whose rows are fetched from the server (which
checks their sha256, as a local read does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from featurestore.datasets import SavedDataset
from featurestore.retrieval import TableReads

if TYPE_CHECKING:
    from featurestore.remote.connection import Connection

__all__ = ["RemoteRetrievalJob", "RemoteSavedDataset"]


class RemoteRetrievalJob(TableReads):
    """A pending training set on a server; run it with ``to_arrow``/``to_polars``/``to_pandas``."""

    def __init__(self, connection: Connection, entities: pa.Table, command: dict[str, Any]):
        self._connection, self._entities, self._command = connection, entities, command

    def to_reader(self) -> pa.RecordBatchReader:
        """The rows as the server streams them; dropping the reader early stops the server's work."""
        return self._connection.exchange("get_historical_features", self._entities, **self._command)

    def to_arrow(self) -> pa.Table:
        return self.to_reader().read_all()

    def save(self, name: str) -> dict:
        """Save the training set on the server as saved dataset ``name`` (a new version); its record."""
        return self._connection.put("save_dataset", self._entities, name=name, **self._command)


@dataclass(frozen=True)
class RemoteSavedDataset(SavedDataset):
    """A saved dataset version on a server; ``to_arrow`` fetches its rows."""

    fetch: Callable[[str, int], pa.Table] | None = field(default=None, repr=False, compare=False)

    def to_arrow(self) -> pa.Table:
        return self.fetch(self.name, self.version)
