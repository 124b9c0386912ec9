"""The SQLite online store: the zero-setup default, one file shared by several processes.

One table holds every project's values::

    online_features(project, view, entity_key BLOB, event_ts INTEGER, feature_values BLOB)
    PRIMARY KEY (project, view, entity_key)

``entity_key`` is ``entity_keys.py``'s encoding and ``feature_values`` a record
(``records.py``) of named values (``values.py``). The file is in WAL mode, so readers never wait for the writer, and every
connection waits up to ``timeout`` seconds for another process's write lock.
"""

from __future__ import annotations

import os
import sqlite3
import struct
import threading
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
from registry.sqlite import enable_wal, transaction

from featurestore.bounded import BoundedCache
from featurestore.errors import StoreUnavailableError
from featurestore.online.base import OnlineRow, OnlineView
from featurestore.online.batches import encode_batch
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.online.records import decode_record, encode_record
from featurestore.online.values import feature_decoders, undecodable

__all__ = ["SqliteOnlineStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS online_features (
    project TEXT NOT NULL,
    view TEXT NOT NULL,
    entity_key BLOB NOT NULL,
    event_ts INTEGER NOT NULL,
    feature_values BLOB NOT NULL,
    PRIMARY KEY (project, view, entity_key)
) WITHOUT ROWID
"""

# Newer-timestamp-wins, enforced here and only here: a row replaces the stored one only
# when its event time is >= the stored one, so replaying a batch changes nothing and a
# push with a later time survives a materialization of older data. Within one batch,
# rows apply in order, so the last of equal-time duplicates wins (as in Redis).
_UPSERT = """
INSERT INTO online_features (project, view, entity_key, event_ts, feature_values)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (project, view, entity_key) DO UPDATE
SET event_ts = excluded.event_ts, feature_values = excluded.feature_values
WHERE excluded.event_ts >= online_features.event_ts
"""

_MAX_KEYS_PER_QUERY = 500  # under SQLite's bound-parameter limit, with room for the others


class SqliteOnlineStore:
    """The online store in one SQLite file (or ``":memory:"``, private to this object).

    Thread-safe: each thread gets its own connection. ``timeout`` is how long a write
    waits for another process's lock before StoreUnavailableError; ``batch_size`` rows
    are written per transaction.
    """

    def __init__(self, path: str | os.PathLike, project: str, *, timeout: float = 30.0, batch_size: int = 10_000):
        self.path = str(path)
        self.project = project
        self.location = f"sqlite:{self.path if self.path == ':memory:' else os.path.abspath(self.path)}"
        self._timeout = timeout
        self._batch_size = max(1, batch_size)
        self._memory = self.path == ":memory:"
        # ":memory:" is one connection shared by all threads, behind a lock.
        self._lock = threading.Lock() if self._memory else nullcontext()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # Keyed by the features a request names (any subset, in any order): bounded.
        self._decoders: BoundedCache[tuple[OnlineView, tuple[str, ...]], tuple] = BoundedCache(1024)

    # -- the protocol -------------------------------------------------------------------

    def write_batch(self, view: OnlineView, table: pa.Table) -> int:
        names = [f.encode() for f in view.features]
        project, name = self.project, view.name
        # Checks the whole batch before a row is written; then one transaction per slice.
        batches = encode_batch(view, table, rows=self._batch_size)
        with self._connection() as conn:
            for batch in batches:
                rows = zip(*batch.values) if batch.values else [()] * len(batch.entity_keys)
                params = [
                    (project, name, key, ts, encode_record(names, values))
                    for key, ts, values in zip(batch.entity_keys, batch.event_ts, rows)
                ]
                with transaction(conn):  # the write lock taken now, not halfway through
                    conn.executemany(_UPSERT, params)
        return table.num_rows

    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]
    ) -> list[list[OnlineRow]]:
        plans = []
        for view, features, keys in requests:
            if type(features) is not tuple:
                features = tuple(features)
            decoders = self._decoders.get((view, features)) or self._plan(view, features)
            encode = entity_key_encoder(tuple(view.join_keys))
            plans.append((view, features, decoders, [encode(k) for k in keys]))
        with self._connection() as conn:
            many = len(plans) > 1 or any(len(p[3]) > _MAX_KEYS_PER_QUERY for p in plans)
            if many:
                conn.execute("BEGIN")  # one snapshot for all views
            try:
                found = [self._select(conn, view.name, entity_keys) for view, _, _, entity_keys in plans]
            finally:
                if many:
                    conn.execute("COMMIT")
        out = []
        for (view, features, decoders, entity_keys), stored in zip(plans, found):
            rows: list[OnlineRow] = []
            try:
                for entity_key in entity_keys:
                    hit = stored.get(entity_key)
                    if hit is None:
                        rows.append(None)
                        continue
                    values = decode_record(hit[1])
                    rows.append((hit[0], tuple(
                        d(v) if (v := values.get(f)) is not None else None for f, d in zip(features, decoders)
                    )))
            except (ValueError, IndexError, struct.error) as exc:  # UnicodeDecodeError is a ValueError
                raise undecodable(view, exc) from None
            out.append(rows)
        return out

    def delete_view(self, view: OnlineView) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM online_features WHERE project = ? AND view = ?", (self.project, view.name))

    def health(self) -> None:
        with self._connection() as conn:
            conn.execute("SELECT 1 FROM online_features LIMIT 1").fetchall()

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections = self._connections, []
            self._local = threading.local()
        for conn in connections:
            conn.close()

    def __repr__(self) -> str:
        return f"SqliteOnlineStore({self.path!r}, project={self.project!r})"

    # -- internals ----------------------------------------------------------------------

    def _plan(self, view: OnlineView, features: tuple[str, ...]) -> tuple:
        return self._decoders.put((view, features), feature_decoders(view, features))

    def _select(self, conn: sqlite3.Connection, view: str, entity_keys: list) -> dict[bytes, tuple[int, bytes]]:
        wanted = list(dict.fromkeys(k for k in entity_keys if k is not None))
        stored = {}
        for start in range(0, len(wanted), _MAX_KEYS_PER_QUERY):
            chunk = wanted[start : start + _MAX_KEYS_PER_QUERY]
            marks = ",".join("?" * len(chunk))
            query = (
                "SELECT entity_key, event_ts, feature_values FROM online_features "
                f"WHERE project = ? AND view = ? AND entity_key IN ({marks})"
            )
            for key, ts, blob in conn.execute(query, (self.project, view, *chunk)):
                stored[key] = (ts, blob)
        return stored

    def _connection(self) -> _Using:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return _Using(self, conn)

    def _open(self) -> sqlite3.Connection:
        with self._connections_lock:
            if self._memory and self._connections:
                return self._connections[0]
            try:
                if not self._memory:
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                # Autocommit mode (isolation_level=None): transactions are explicit above.
                conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
                enable_wal(conn, self._timeout)
                # NORMAL is durable across application crashes in WAL mode; a power loss may
                # drop the last commits, which a rerun of the materialization restores.
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(_SCHEMA)
            except (sqlite3.Error, OSError) as exc:
                raise self._unavailable(exc) from None
            self._connections.append(conn)
            return conn

    def _unavailable(self, exc: BaseException) -> StoreUnavailableError:
        hint = "check that the path is writable and on a local disk (WAL needs one)"
        if "locked" in str(exc) or "busy" in str(exc):
            hint = f"another process held the write lock for over {self._timeout:g} s; retry, or find the stuck writer"
        return StoreUnavailableError(f"SQLite online store at {self.path} failed: {exc}; {hint}")


class _Using:
    """Runs a block on a connection, under the store's lock; maps sqlite3 errors."""

    __slots__ = ("store", "conn")

    def __init__(self, store: SqliteOnlineStore, conn: sqlite3.Connection):
        self.store, self.conn = store, conn

    def __enter__(self) -> sqlite3.Connection:
        self.store._lock.__enter__()
        return self.conn

    def __exit__(self, kind, exc, tb) -> None:
        self.store._lock.__exit__(kind, exc, tb)
        if isinstance(exc, sqlite3.Error):
            raise self.store._unavailable(exc) from None
