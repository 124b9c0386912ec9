"""Training sets: ``get_historical_features`` turns an entity set into a point-in-time join.

The entity set comes in any common shape and leaves as Arrow; the join itself is the
offline engine's (see ``offline/duckdb.py`` for the rule and how it is made fast). A
``RetrievalJob`` is lazy: nothing runs until a ``to_*`` method or ``save`` asks for rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

from registry import ObjectSpec

from featurestore.errors import InputError
from featurestore.offline.base import OfflineEngine, ViewRequest
from featurestore.offline.files import write_parquet_atomic
from featurestore.refs import ResolvedTransform, ResolvedView
from featurestore.transforms import request_columns, run_transform
from featurestore.types import FeatureType

if TYPE_CHECKING:
    import pandas
    import polars

__all__ = ["RetrievalJob", "TableReads", "to_arrow_table"]


def to_arrow_table(data: Any, engine: OfflineEngine) -> pa.Table:
    """An entity set as Arrow: a pyarrow Table, polars or pandas DataFrame, Parquet path or SQL."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatchReader):
        return data.read_all()
    module = type(data).__module__.split(".")[0]
    if module == "polars":
        return data.to_arrow()
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, Path) or (isinstance(data, str) and data.strip().lower().endswith(".parquet")):
        path = Path(data)
        if not path.exists():
            raise InputError(f"entity set file {str(path)!r} does not exist")
        return pq.read_table(path)
    if isinstance(data, str):
        return engine.query(data)
    raise InputError(
        f"entity_df of type {type(data).__name__} is not supported; pass a pyarrow Table, a polars "
        "or pandas DataFrame, a Parquet file path or a SQL query"
    )


class TableReads:
    """The reading methods every training-set job has, given its ``to_arrow`` (a local job,
    and ``featurestore.remote``'s job on a server)."""

    def to_arrow(self) -> pa.Table:
        raise NotImplementedError

    def to_polars(self) -> "polars.DataFrame":
        import polars

        return polars.from_arrow(self.to_arrow())

    def to_pandas(self) -> "pandas.DataFrame":
        return self.to_arrow().to_pandas()

    def to_df(self, validation_reference: Any = None, timeout: int | None = None) -> "pandas.DataFrame":
        """Feast's name for ``to_pandas()``. Feast's data-quality validation is not here."""
        if validation_reference is not None:
            raise InputError("validation_reference is not supported (no data-quality validation here); "
                             "call to_df() without it and check the frame yourself")
        return self.to_pandas()

    def to_parquet(self, path: str | Path) -> Path:
        """Write the training set to ``path`` atomically; returns the path."""
        return write_parquet_atomic(self.to_arrow(), Path(path))


class RetrievalJob(TableReads):
    """A pending training-set query; run it with ``to_arrow``/``to_polars``/``to_pandas``."""

    def __init__(
        self,
        engine: OfflineEngine,
        entities: pa.Table,
        timestamp_column: str,
        views: Sequence[ResolvedView],
        requests: Sequence[ViewRequest],
        known_at_timestamp: bool,
        saver: Any = None,
        transforms: Sequence[tuple[ResolvedTransform, dict[str, FeatureType]]] = (),
        hidden: frozenset[str] = frozenset(),
    ):
        self._engine = engine
        self._entities = entities
        self._timestamp_column = timestamp_column
        self._views = list(views)
        self._requests = list(requests)
        self._known_at_timestamp = known_at_timestamp
        self._saver = saver
        self._transforms = list(transforms)
        self._hidden = hidden

    @property
    def feature_refs(self) -> list[str]:
        outputs = [(v.view.name, f, o) for v in self._views for f, o in zip(v.features, v.output_names)]
        refs = [f"{name}:{f}" for name, f, out in outputs if out not in self._hidden]
        return refs + [f"{t.odfv.name}:{f}" for t, _ in self._transforms for f in t.features]

    def to_reader(self) -> pa.RecordBatchReader:
        reader = self._engine.point_in_time_join(
            self._entities, self._timestamp_column, self._requests,
            known_at_timestamp=self._known_at_timestamp,
        )
        if not self._transforms:
            return reader
        return self._with_transforms(reader.read_all()).to_reader()

    def _with_transforms(self, table: pa.Table) -> pa.Table:
        """The joined rows with the on-demand views' outputs appended and their hidden
        inputs dropped; request fields come from the entity table's columns."""
        n = table.num_rows
        for transform, types in self._transforms:
            inputs: dict[str, Any] = {feature: table.column(column) for feature, column in transform.inputs}
            given = {name: self._entities.column(name) for name in self._entities.column_names}
            inputs.update(request_columns(transform.odfv, given, n) if transform.odfv.request_sources else {})
            out = run_transform(transform.odfv, inputs, types, n)
            for feature, name in zip(transform.features, transform.output_names):
                table = table.append_column(name, out.column(feature))
        return table.drop_columns([c for c in table.column_names if c in self._hidden])

    def to_arrow(self) -> pa.Table:
        return self.to_reader().read_all()

    def save(self, name: str) -> dict:
        """Store the training set in the offline store and record it in the registry."""
        if self._saver is None:
            raise InputError("this job was not created by a FeatureStore and cannot be saved")
        return self._saver(name, self)

    def fingerprint(self) -> str:
        """A stable hash of the entity set (its columns and rows)."""
        digest = hashlib.sha256()
        sink = _HashSink(digest)
        with pa.ipc.new_stream(sink, self._entities.schema) as writer:
            writer.write_table(self._entities)
        return digest.hexdigest()


class _HashSink:
    def __init__(self, digest):
        self.digest = digest
        self.closed = False

    def write(self, data) -> int:
        self.digest.update(data)
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def dataset_spec(
    job: RetrievalJob, name: str, path: Path, rows: int, view_versions: dict[str, int], sha256: str
) -> ObjectSpec:
    """The registry record of a saved training set (kind ``saved_dataset``, featurestore/datasets.py)."""
    spec = {
        "path": str(path),
        "sha256": sha256,
        "features": job.feature_refs,
        "feature_view_versions": view_versions,
        "entity_fingerprint": job.fingerprint(),
        "entity_rows": job._entities.num_rows,
        "rows": rows,
        "timestamp_column": job._timestamp_column,
        "known_at_timestamp": job._known_at_timestamp,
        "created_at": datetime.now(timezone.utc).isoformat(),
    }
    deps = tuple(("feature_view", v) for v in view_versions)
    return ObjectSpec("saved_dataset", name, spec, deps)
