"""Stream entries to Arrow rows of a push source, checked and cast, one column at a time.

An entry's fields are the row's columns, as text: numbers as decimal text, booleans as
``true``/``false``/``1``/``0``, times as ISO 8601 (``2024-05-01T12:00:00.123456Z``; no
offset means UTC) or seconds since the epoch (``1714564800.123456``, read from its digits
exactly and truncated to the microsecond like every time: featurestore/clock.py). The
columns wanted are the push source's (every view's schema, the join keys, the timestamp
field); a join key no view declares is Int64. Fields nothing reads are ignored. A missing timestamp or
join key, or a value that does not convert, makes the entry *bad*: it is set aside with
the reason (the worker sends it to the dead-letter stream), and the rest go on.

When the source has a created timestamp and an entry does not carry it, the entry id's
time (when Redis added it) is used: the same on every redelivery of the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import pyarrow as pa

from featurestore.clock import decimal_seconds_us, from_micros
from featurestore.definitions import FeatureView, PushSource
from featurestore.types import FeatureType, Int64

__all__ = ["DecodedBatch", "EntryDecoder"]

_TS = pa.timestamp("us", tz="UTC")


@dataclass
class DecodedBatch:
    table: pa.Table  # the good entries' rows, with the source's columns cast
    entry_ids: list[bytes]  # of the good entries, in table order
    event_ids: list[bytes]
    bad: list[tuple[bytes, list[bytes], str]]  # (entry id, fields, reason)


class EntryDecoder:
    """Decodes entries of one stream into rows of ``source`` (fed to ``views``)."""

    def __init__(self, stream: str, source: PushSource, views: Sequence[FeatureView], id_field: str):
        self.stream = stream.encode()
        self.source = source
        self.id_field = id_field.encode()
        wanted: dict[str, FeatureType] = {}
        for view in views:
            for f in view.schema:
                wanted.setdefault(f.name, f.dtype)
        for view in views:
            for key in view.join_keys:
                wanted.setdefault(key, Int64)
        self.required = [*dict.fromkeys(k for v in views for k in v.join_keys), source.timestamp_field]
        self.created = source.created_timestamp_field
        wanted.pop(source.timestamp_field, None)
        if self.created:
            wanted.pop(self.created, None)
        self.columns = list(wanted.items())

    def decode(self, entries: Sequence[tuple[bytes, Sequence[bytes]]]) -> DecodedBatch:
        column = _columns(entries)
        bad: dict[int, str] = {}
        arrays: dict[str, pa.Array] = {}
        ts_name = self.source.timestamp_field
        for name, dtype in [(ts_name, None), *([(self.created, None)] if self.created else []), *self.columns]:
            values = column(name.encode())
            if name in self.required:
                for j, v in enumerate(values):
                    if v is None or v == b"":
                        bad.setdefault(j, f"field {name!r} is missing; every event needs it")
            if name == self.created:
                values = [v if v else _entry_time(entries[j][0]) for j, v in enumerate(values)]
            arrays[name] = self._column(name, dtype, values, bad)
        ids = []
        for j, given in enumerate(column(self.id_field)):
            ids.append(given if given else self.stream + b"/" + entries[j][0])
            try:
                ids[-1].decode()
            except UnicodeDecodeError:
                bad.setdefault(j, f"field {self.id_field.decode()!r} is not UTF-8 text")
        names = [ts_name, *([self.created] if self.created else []), *(n for n, _ in self.columns)]
        table = pa.Table.from_arrays([arrays[n] for n in names], names=names)
        if bad:
            keep = [j for j in range(len(entries)) if j not in bad]
            table = table.take(pa.array(keep, pa.int64()))
            good_entries = [entries[j][0] for j in keep]
            ids = [ids[j] for j in keep]
            failed = [(entries[j][0], list(entries[j][1]), reason) for j, reason in sorted(bad.items())]
        else:
            good_entries, failed = [e[0] for e in entries], []
        return DecodedBatch(table, good_entries, ids, failed)

    def _column(self, name: str, dtype: FeatureType | None, values: list, bad: dict[int, str]) -> pa.Array:
        """``values`` (bytes or None) as the column's Arrow type; entries whose value does not
        convert are marked bad (and read as null here)."""
        try:
            return _cast(pa.array(values, pa.binary()), dtype)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
            pass
        out = []
        for j, v in enumerate(values):  # the slow path finds the culprits
            try:
                out.append(_cast(pa.array([v], pa.binary()), dtype)[0].as_py() if v is not None else None)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError):
                kind = "a time (ISO 8601 or epoch seconds)" if dtype is None else str(dtype)
                bad.setdefault(j, f"field {name!r} is {v[:60].decode(errors='replace')!r}, not {kind}")
                out.append(None)
        return pa.array(out, _TS if dtype is None else dtype.to_arrow())


def _columns(entries: Sequence[tuple[bytes, Sequence[bytes]]]) -> Callable[[bytes], list]:
    """A function from a field name to its values (None where absent) over ``entries``.
    A producer usually sends the same fields in the same order: then a column is a slice
    at a fixed position of every entry, with no per-entry dictionary."""
    first = entries[0][1][::2] if entries else []
    if all(fields[::2] == first for _, fields in entries):
        where = {name: i for i, name in enumerate(first)}

        def column(name: bytes) -> list:
            i = where.get(name)
            if i is None:
                return [None] * len(entries)
            return [fields[2 * i + 1] for _, fields in entries]

        return column
    rows = [dict(zip(fields[::2], fields[1::2])) for _, fields in entries]
    return lambda name: [r.get(name) for r in rows]


def _cast(raw: pa.Array, dtype: FeatureType | None) -> pa.Array:
    if dtype is not None and dtype.name == "Bytes":
        return raw
    text = raw.cast(pa.string())
    if dtype is None or dtype.name == "UnixTimestamp":
        return _times(text)
    if dtype.item is not None:
        if text.null_count == len(text):
            return pa.nulls(len(text), dtype.to_arrow())
        raise ValueError("array values cannot be sent in stream entries")
    return text.cast(dtype.to_arrow())


def _times(text: pa.Array) -> pa.Array:
    try:
        return text.cast(_TS)
    except pa.ArrowInvalid:
        pass
    try:
        return text.cast(pa.timestamp("us")).cast(_TS)  # no offset: UTC
    except pa.ArrowInvalid:
        pass
    text.cast(pa.float64())  # what reads as a number (ArrowInvalid otherwise) ...
    # ... read exactly from its decimal digits: a float would round 0.1234565 s either way
    micros = [None if t is None else decimal_seconds_us(t) for t in text.to_pylist()]
    return pa.array(micros, pa.int64()).cast(_TS)


def _entry_time(entry_id: bytes) -> bytes:
    """The time Redis added an entry (its id's milliseconds), as ISO 8601 text."""
    ms = int(entry_id.split(b"-", 1)[0])
    return from_micros(ms * 1000).isoformat().encode()
