"""An entity set uploaded to the Flight server: Arrow record batches, within a size limit.

The batches are read one at a time and counted, so an upload past
``flight.max_upload_bytes`` is refused after at most one batch beyond the limit, never
after the whole of it is held. An upload that is not Arrow (only metadata, no schema) and
one without the timestamp column are refused with an ``InputError`` saying what to send.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.flight as flight

from featurestore.errors import InputError

__all__ = ["read_upload", "timestamp_column"]

#: Columns pandas adds for its index (``pa.Table.from_pandas`` of a filtered frame); Feast's
#: client uploads frames that way, and an index is not an entity column.
_PANDAS_INDEX = "__index_level_"


def read_upload(reader: flight.MetadataRecordBatchReader, limit: int, what: str = "the entity upload") -> pa.Table:
    """The uploaded rows as a Table; InputError when they are not Arrow or exceed ``limit`` bytes."""
    batches, size = [], 0
    while True:
        try:
            chunk = reader.read_chunk()
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError) as exc:  # a client that sent no schema, or broken IPC
            raise _not_arrow(what, exc) from None
        size += chunk.data.nbytes if chunk.data is not None else 0
        size += chunk.app_metadata.size if chunk.app_metadata is not None else 0
        if size > limit:
            raise InputError(
                f"{what} is larger than the server's limit of {limit} bytes (flight.max_upload_bytes): send the "
                "entity set in parts of fewer rows, or raise flight.max_upload_bytes on the server")
        if chunk.data is None:
            raise _not_arrow(what, None)
        batches.append(chunk.data)
    try:
        schema = reader.schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise _not_arrow(what, exc) from None
    table = pa.Table.from_batches(batches, schema=schema)
    index = [c for c in table.column_names if c.startswith(_PANDAS_INDEX)]
    return table.drop_columns(index) if index else table


def timestamp_column(table: pa.Table, wanted: str | None, what: str = "the entity upload") -> str:
    """The entity set's timestamp column: ``wanted``, else Feast's rule (``event_timestamp``,
    else the only timestamp column); InputError naming the columns when there is none."""
    names = table.column_names
    if wanted is not None:
        if wanted not in names:
            raise InputError(f"{what} has no timestamp column {wanted!r}; its columns are {names}: add it (the "
                             "time as of which each row's features are wanted) or name yours in timestamp_field")
        return wanted
    if "event_timestamp" in names:
        return "event_timestamp"
    times = [f.name for f in table.schema if pa.types.is_timestamp(f.type)]
    if len(times) == 1:
        return times[0]
    raise InputError(
        f"{what} has no timestamp column: its columns are {names}; add an event_timestamp column (the time as of "
        "which each row's features are wanted)" if not times else
        f"{what} has several timestamp columns {times} and none is event_timestamp; rename the one to join on "
        "to event_timestamp")


def _not_arrow(what: str, exc: Exception | None) -> InputError:
    detail = f" ({str(exc).splitlines()[0]})" if exc is not None and str(exc) else ""
    return InputError(
        f"{what} is not Arrow record batches{detail}: send the entity set as an Arrow table (the schema, then "
        "record batches), e.g. FeatureStore.remote(...).get_historical_features(entity_df, ...) or "
        "pa.Table.from_pandas(df) written to the Flight stream")
