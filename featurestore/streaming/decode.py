"""Stream entries to Arrow rows of a push source, checked and cast, one column at a time.

An entry's fields are the row's columns, as text: numbers as decimal text, booleans as
``true``/``false``/``1``/``0``, times as ISO 8601 (``2024-05-01T12:00:00.123456Z``; no
offset means UTC) or seconds since the epoch (``1714564800.123456``, read from its digits
exactly and truncated to the microsecond like every time: featurestore/clock.py). The
columns wanted are the push source's (every view's schema, the join keys, the timestamp
field); a join key no view declares is Int64. Fields nothing reads are ignored. A missing timestamp or
join key, a value that does not convert, an event or created time outside the store's
range (featurestore/clock.py: ``TimeRange``) or another time outside the years 1..9999
makes the entry *bad*: it is set aside with the reason (the worker sends it to the
dead-letter stream), and the rest go on.

Whatever an entry holds, ``decode`` does not raise: an error nothing here foresaw is
pinned on the entries that cause it (each entry decoded alone), which go to the dead
letters with the error as the reason. One entry must never stop the worker, because an
entry that stops it stays pending and stops every worker that reads it again.

When the source has a created timestamp and an entry does not carry it, the entry id's
time (when Redis added it) is used: the same on every redelivery of the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import pyarrow as pa

from featurestore.clock import TimeRange, decimal_seconds_us, from_micros, spelling_problem
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

    def __init__(self, stream: str, source: PushSource, views: Sequence[FeatureView], id_field: str,
                 times: TimeRange | None = None):
        self.stream = stream.encode()
        self.times = times or TimeRange()
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
        """The good entries as rows, the bad ones with their reasons; never raises."""
        try:
            return self._decode(entries)
        except Exception as exc:  # noqa: BLE001 - see the module doc: find the entries, go on
            if len(entries) == 1:
                reason = f"entry could not be decoded ({type(exc).__name__}: {str(exc)[:200]})"
                return DecodedBatch(self._empty(), [], [], [(entries[0][0], _fields(entries[0][1]), reason)])
        parts = [self.decode([entry]) for entry in entries]
        return DecodedBatch(
            pa.concat_tables([p.table for p in parts], promote_options="permissive"),
            [i for p in parts for i in p.entry_ids],
            [i for p in parts for i in p.event_ids],
            [b for p in parts for b in p.bad],
        )

    def _empty(self) -> pa.Table:
        names = [self.source.timestamp_field, *([self.created] if self.created else []), *(n for n, _ in self.columns)]
        types = [_TS, *([_TS] if self.created else []), *(t.to_arrow() for _, t in self.columns)]
        return pa.Table.from_arrays([pa.array([], t) for t in types], names=names)

    def _decode(self, entries: Sequence[tuple[bytes, Sequence[bytes]]]) -> DecodedBatch:
        column = _columns(entries)
        bounds = self.times.bounds_us()
        bad: dict[int, str] = {}
        arrays: dict[str, pa.Array] = {}
        ts_name = self.source.timestamp_field
        for name, dtype in [(ts_name, None), *([(self.created, None)] if self.created else []), *self.columns]:
            values = column(name.encode())
            if name in self.required:
                for j, v in enumerate(values):
                    if v is None or v == b"":
                        bad.setdefault(j, f"field {name!r} is missing; every event needs it")
            given = None
            if name == self.created:
                # A created time the entry lacks is Redis's own (the entry id's): not input to check.
                given = [bool(v) for v in values]
                values = [v if v else _entry_time(entries[j][0]) for j, v in enumerate(values)]
            arrays[name] = self._column(name, dtype, values, bad)
            if dtype is None or dtype.name == "UnixTimestamp":  # (entries carry no arrays: see _cast)
                self._check_times(name, arrays[name], dtype is None, bounds, bad, given)
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
        arrow_type = _TS if dtype is None else dtype.to_arrow()
        null = pa.nulls(1, arrow_type)
        pieces = []
        for j, v in enumerate(values):  # the slow path finds the culprits
            try:  # one-value arrays, never Python objects: a time in year 10000 has none
                pieces.append(_cast(pa.array([v], pa.binary()), dtype).cast(arrow_type) if v is not None else null)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, ValueError, OverflowError):
                kind = "a time (ISO 8601 or epoch seconds)" if dtype is None else str(dtype)
                bad.setdefault(j, f"field {name!r} is {v[:60].decode(errors='replace')!r}, not {kind}")
                pieces.append(null)
        return pa.concat_arrays(pieces) if pieces else pa.array([], arrow_type)

    def _check_times(self, name: str, times: pa.Array, event: bool, bounds: tuple[int, int],
                     bad: dict[int, str], given: list[bool] | None = None) -> None:
        """Mark bad the entries whose time in ``name`` is out of range: an event or created
        time (``event``) outside ``self.times``, any other outside the years 1..9999. Only
        the entries ``given`` says carried the field, when it is given."""
        for j, us in enumerate(times.cast(pa.int64()).to_pylist()):
            if us is None or j in bad or (given is not None and not given[j]):
                continue
            reason = self.times.problem(us, bounds) if event else spelling_problem(us)
            if reason is not None:
                bad[j] = f"field {name!r} is {reason}"


def _fields(fields) -> list[bytes]:
    """An entry's fields as a list of bytes, whatever they were (for its dead letter)."""
    try:
        return [f if isinstance(f, bytes) else str(f).encode() for f in fields]
    except TypeError:
        return []


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
