"""Materialization from the executors: each executor writes its share of the latest rows
into the online store, batch by batch, and only the row counts come back to the driver.

``mapInArrow`` hands every partition's rows to a Python worker as a stream of Arrow
batches (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows each); the worker opens the
online store once (``open_online``: the store ``featurestore.yaml`` names, opened again
in that process), shapes each batch as the driver would (``LatestShape``: keys and
features conformed to their registered types) and writes it with the store's own
``write_batch``, newer-timestamp-wins, while Spark computes the next one. A rerun after a
failed task writes the same rows again and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from featurestore.errors import StoreUnavailableError
from featurestore.offline.base import ViewRequest

__all__ = ["write_from_executors"]


def write_from_executors(frame, shape: Callable[[pa.RecordBatch], pa.RecordBatch], open_online: Callable,
                         target, batch_rows: int, view: ViewRequest) -> int:
    """Write ``frame`` (the latest rows, shaped by ``shape``) into the online store from
    the executors; the number of rows written."""
    from pyspark.sql import functions as F

    def write(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        store = None
        try:
            for batch in batches:
                if batch.num_rows == 0:
                    continue
                if store is None:  # a partition without rows opens nothing
                    store = open_online()
                for start in range(0, batch.num_rows, batch_rows):
                    part = shape(batch.slice(start, batch_rows))
                    written = store.write_batch(target, pa.Table.from_batches([part]))
                    yield pa.RecordBatch.from_pydict({"rows": pa.array([written], pa.int64())})
        finally:
            if store is not None:
                store.close()

    counted = frame.mapInArrow(write, "rows long")
    try:
        total = counted.agg(F.sum("rows")).collect()[0][0]
    except Exception as exc:
        if type(exc).__module__.startswith(("pyspark", "py4j")):
            raise StoreUnavailableError(
                f"view {view.name!r}: writing the latest rows from the Spark executors failed: {_reason(exc)}; "
                "check that every executor reaches the online store and has featurestore installed",
                store="the online store") from None
        raise
    return int(total or 0)


def _reason(exc: BaseException) -> str:
    """One line for what failed: the executor's own exception when a Python worker threw
    (the last line of its traceback; the first only says that a worker threw), else the
    first line of Spark's message."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()] or [type(exc).__name__]
    if type(exc).__name__ == "PythonException":
        return lines[-1]
    return lines[0]
