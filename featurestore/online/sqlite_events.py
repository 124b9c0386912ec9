"""The aggregation state in SQLite: the events table next to the SQLite online store.

::

    aggregation_events(project, view, entity_key BLOB, event_id BLOB, event_ts INTEGER,
                       payload BLOB, PRIMARY KEY (project, view, entity_key, event_id))
    INDEX (project, view, event_ts)            -- for trimming

``INSERT OR IGNORE`` makes adding idempotent by event id (first copy wins); each add
deletes the view's events at or before the horizon, so the table holds about one
longest window of events per view. Same file, WAL mode and locking as the online store.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import contextmanager

from registry.sqlite import enable_wal, transaction

from featurestore.errors import StoreUnavailableError
from featurestore.online.base import StoredEvents

__all__ = ["SqliteAggregationState"]

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS aggregation_events (
        project TEXT NOT NULL, view TEXT NOT NULL, entity_key BLOB NOT NULL, event_id BLOB NOT NULL,
        event_ts INTEGER NOT NULL, payload BLOB NOT NULL,
        PRIMARY KEY (project, view, entity_key, event_id)
    ) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS aggregation_events_ts ON aggregation_events (project, view, event_ts)",
)
_MAX_KEYS = 400


class SqliteAggregationState:
    """``AggregationState`` in a SQLite file (``":memory:"``: private to this object)."""

    def __init__(self, path: str | os.PathLike, project: str, *, timeout: float = 30.0):
        self.path = str(path)
        self.project = project
        self._timeout = timeout
        self._local = threading.local()
        self._memory = self.path == ":memory:"
        self._lock = threading.Lock()
        self._shared: sqlite3.Connection | None = None
        self._all: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
        enable_wal(conn, self._timeout)
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            conn.execute(statement)
        self._all.append(conn)
        return conn

    @contextmanager
    def _connection(self):
        try:
            if self._memory:
                with self._lock:
                    if self._shared is None:
                        self._shared = self._connect()
                    yield self._shared
                return
            conn = getattr(self._local, "conn", None)
            if conn is None:
                with self._lock:
                    conn = self._local.conn = self._connect()
            yield conn
        except sqlite3.Error as exc:
            raise StoreUnavailableError(f"SQLite aggregation state at {self.path!r} failed: {exc}") from None

    def add(self, layout, keys, times, ids, payloads, horizon_us) -> int:
        rows = [(self.project, layout.name, k, i, t, p) for k, t, i, p in zip(keys, times, ids, payloads)]
        with self._connection() as conn:
            with transaction(conn):
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO aggregation_events (project, view, entity_key, event_id, event_ts, payload) "
                    "VALUES (?, ?, ?, ?, ?, ?)", rows)
                added = conn.total_changes - before
                conn.execute("DELETE FROM aggregation_events WHERE project = ? AND view = ? AND event_ts <= ?",
                             (self.project, layout.name, horizon_us))
        return added

    def read(self, layout, keys: Sequence[bytes | None], lo_us: int, hi_us: int) -> list[StoredEvents]:
        wanted = list(dict.fromkeys(k for k in keys if k is not None))
        found: dict[bytes, list[tuple[int, bytes]]] = {}
        known: set[bytes] = set()
        with self._connection() as conn:
            conn.execute("BEGIN")  # one snapshot for every chunk
            try:
                for start in range(0, len(wanted), _MAX_KEYS):
                    chunk = wanted[start : start + _MAX_KEYS]
                    marks = ",".join("?" * len(chunk))
                    for key, ts, payload in conn.execute(
                        f"SELECT entity_key, event_ts, payload FROM aggregation_events WHERE project = ? AND view = ? "
                        f"AND entity_key IN ({marks}) AND event_ts > ? AND event_ts <= ? ORDER BY event_ts",
                        (self.project, layout.name, *chunk, lo_us, hi_us),
                    ):
                        found.setdefault(key, []).append((ts, payload))
                    missing = [k for k in chunk if k not in found]
                    if missing:
                        marks = ",".join("?" * len(missing))
                        known.update(k for (k,) in conn.execute(
                            f"SELECT DISTINCT entity_key FROM aggregation_events WHERE project = ? AND view = ? "
                            f"AND entity_key IN ({marks})", (self.project, layout.name, *missing)))
            finally:
                conn.execute("COMMIT")
        return [found.get(k) or ([] if k in known else None) if k is not None else None for k in keys]

    def delete_view(self, name: str) -> None:
        with self._connection() as conn:
            conn.execute("DELETE FROM aggregation_events WHERE project = ? AND view = ?", (self.project, name))

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._shared = None
        self._local = threading.local()
