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
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.datasets import SavedDataset
from featurestore.errors import InputError
from featurestore.offline.files import write_parquet_atomic

if TYPE_CHECKING:
    import pandas
    import polars

    from featurestore.remote.connection import Connection

__all__ = ["RemoteRetrievalJob", "RemoteSavedDataset"]


class RemoteRetrievalJob:
    """A pending training set on a server; run it with ``to_arrow``/``to_polars``/``to_pandas``."""

    def __init__(self, connection: Connection, entities: pa.Table, command: dict[str, Any]):
        self._connection, self._entities, self._command = connection, entities, command

    def to_reader(self) -> pa.RecordBatchReader:
        """The rows as the server streams them (stop reading, and the server stops its work)."""
        return self._connection.exchange("get_historical_features", self._entities, **self._command)

    def to_arrow(self) -> pa.Table:
        return self.to_reader().read_all()

    def to_polars(self) -> "polars.DataFrame":
        import polars

        return polars.from_arrow(self.to_arrow())

    def to_pandas(self) -> "pandas.DataFrame":
        return self.to_arrow().to_pandas()

    def to_df(self, validation_reference: Any = None, timeout: int | None = None) -> "pandas.DataFrame":
        """Feast's name for ``to_pandas()``."""
        if validation_reference is not None:
            raise InputError("validation_reference is not supported (no data-quality validation here); "
                             "call to_df() without it and check the frame yourself")
        return self.to_pandas()

    def to_parquet(self, path: str | Path) -> Path:
        """Write the training set to ``path`` (on this machine) atomically; returns the path."""
        return write_parquet_atomic(self.to_arrow(), Path(path))

    def save(self, name: str) -> dict:
        """Save the training set on the server as saved dataset ``name`` (a new version); its record."""
        return self._connection.put("save_dataset", self._entities, name=name, **self._command)


@dataclass(frozen=True)
class RemoteSavedDataset(SavedDataset):
    """A saved dataset version on a server; ``to_arrow`` fetches its rows."""

    fetch: Callable[[str, int], pa.Table] | None = field(default=None, repr=False, compare=False)

    def to_arrow(self) -> pa.Table:
        return self.fetch(self.name, self.version)

    def _verified_bytes(self) -> bytes:  # the server checked them; here they are the rows it sent
        sink = pa.BufferOutputStream()
        pq.write_table(self.to_arrow(), sink)
        return sink.getvalue().to_pybytes()
