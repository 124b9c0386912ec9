"""Job records and locks, kept in the registry's database beside the catalog.

The registry knows nothing of what a job does: a record names a ``target`` (the feature
store uses a view's name), a ``trigger`` (why it ran), a time window and an outcome. A
lock is a named row held by an owner until it expires. ``Registry.jobs`` gives the
``JobLog`` of a registry; every method is one transaction.

Statuses: ``running`` until the run ends as ``succeeded``, ``failed`` or ``interrupted``
(stopped on purpose, or found still running after its owner's lock expired).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone

from registry.database import Connection
from registry.errors import RegistryError
from registry.tables import JOB_SCHEMA

__all__ = ["STATUSES", "JobLog", "JobRecord", "JobSummary", "LockInfo"]

STATUSES = ("running", "succeeded", "failed", "interrupted")

_COLUMNS = ("id, target, trigger, window_start, window_end, status, started_at, ended_at, seconds, rows,"
            " error, attempt, batch, owner")


@dataclass(frozen=True)
class JobRecord:
    """One run. ``window_start`` None means "from the beginning"; times are UTC."""

    id: int
    target: str
    trigger: str
    window_start: datetime | None
    window_end: datetime
    status: str
    started_at: datetime
    ended_at: datetime | None
    seconds: float | None
    rows: int | None
    error: str | None
    attempt: int
    batch: str | None
    owner: str

    def to_dict(self) -> dict:
        iso = lambda t: None if t is None else t.isoformat()  # noqa: E731
        return {
            "id": self.id, "target": self.target, "trigger": self.trigger,
            "window_start": iso(self.window_start), "window_end": iso(self.window_end),
            "status": self.status, "started_at": iso(self.started_at), "ended_at": iso(self.ended_at),
            "seconds": self.seconds, "rows": self.rows, "error": self.error, "attempt": self.attempt,
            "batch": self.batch, "owner": self.owner,
        }


@dataclass(frozen=True)
class LockInfo:
    """Who holds a lock and until when (epoch seconds, by the clock that took it)."""

    name: str
    owner: str
    expires_at: float
    acquired_at: datetime | None = None


@dataclass(frozen=True)
class JobSummary:
    """Finished runs of one (target, trigger): counts by status, totals, and for each
    upper bound in ``bounds`` how many runs took at most that many seconds."""

    target: str
    trigger: str
    runs: dict[str, int]
    rows: int
    seconds: float
    buckets: tuple[int, ...]
    last_success: datetime | None


class JobLog:
    """Job records and locks of one registry (see the module docstring)."""

    def __init__(self, read: Callable[[], AbstractContextManager[Connection]],
                 write: Callable[[], AbstractContextManager[Connection]],
                 table_names: Callable[[Connection], set[str]]) -> None:
        # The registry's own connections (a read snapshot, a write transaction), passed in
        # rather than the Registry itself: registry.store builds a JobLog, not the reverse.
        self._connect_read, self._connect_write = read, write
        self._table_names = table_names
        self._ready = False
        self._ready_lock = threading.Lock()

    # -- records --------------------------------------------------------------------

    def start(
        self,
        project: str,
        target: str,
        trigger: str,
        window_start: datetime | None,
        window_end: datetime,
        owner: str,
        *,
        batch: str | None = None,
        attempt: int = 1,
    ) -> JobRecord:
        """Record a run that is starting now; returns it with its id."""
        _check(project, target, trigger)
        now = _now()
        with self._write() as conn:
            # RETURNING (not lastrowid, which PostgreSQL's driver lacks); fetchall ends the
            # statement before COMMIT.
            [(job_id,)] = conn.execute(
                "INSERT INTO jobs (project, target, trigger, window_start, window_end, status, started_at,"
                " attempt, batch, owner) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?) RETURNING id",
                (project, target, trigger, _iso(window_start), _iso(window_end), _iso(now), attempt, batch, owner),
            ).fetchall()
        return JobRecord(job_id, target, trigger, _utc(window_start), _utc(window_end), "running", now,
                         None, None, None, None, attempt, batch, owner)

    def finish(
        self, project: str, job_id: int, status: str, *, rows: int | None = None, error: str | None = None
    ) -> JobRecord:
        """Record how a run ended. The last word wins: a run marked interrupted by
        another process that then finishes after all is recorded as it really ended."""
        if status not in STATUSES or status == "running":
            raise RegistryError(f"a finished job's status must be succeeded, failed or interrupted, not {status!r}")
        now = _now()
        with self._write() as conn:
            row = conn.execute("SELECT started_at FROM jobs WHERE project = ? AND id = ?", (project, job_id)).fetchone()
            if row is None:
                raise RegistryError(f"no job {job_id} in project {project!r}")
            seconds = (now - datetime.fromisoformat(row[0])).total_seconds()
            conn.execute(
                "UPDATE jobs SET status = ?, ended_at = ?, seconds = ?, rows = ?, error = ?"
                " WHERE project = ? AND id = ?",
                (status, _iso(now), seconds, rows, error, project, job_id),
            )
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _record(row)

    def interrupt_running(self, project: str, target: str, error: str) -> list[JobRecord]:
        """Mark every run of ``target`` still ``running`` as interrupted; returns them.

        Call it only while holding the lock that every run of ``target`` takes: then no
        live run can be among them, so each one's process died or lost its lock.
        """
        now = _now()
        with self._write() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE project = ? AND target = ? AND status = 'running'",
                (project, target),
            ).fetchall()
            for row in rows:
                seconds = (now - datetime.fromisoformat(row[6])).total_seconds()
                conn.execute(
                    "UPDATE jobs SET status = 'interrupted', ended_at = ?, seconds = ?, error = ? WHERE id = ?",
                    (_iso(now), seconds, error, row[0]),
                )
        return [_record(r) for r in rows]

    def get(self, project: str, job_id: int) -> JobRecord | None:
        with self._read() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM jobs WHERE project = ? AND id = ?", (project, job_id)).fetchone()
        return None if row is None else _record(row)

    def list(
        self,
        project: str,
        *,
        target: str | None = None,
        statuses: Sequence[str] | None = None,
        trigger: str | None = None,
        batch: str | None = None,
        limit: int | None = 100,
    ) -> list[JobRecord]:
        """Runs, newest first, filtered by any of target, statuses, trigger and batch."""
        where, args = ["project = ?"], [project]
        for column, value in (("target", target), ("trigger", trigger), ("batch", batch)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args.extend(statuses)
        sql = f"SELECT {_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._read() as conn:
            return [_record(row) for row in conn.execute(sql, args)]

    def windows(self, project: str, target: str, status: str = "succeeded") -> list[tuple[datetime | None, datetime]]:
        """The (start, end) windows of ``target``'s runs with ``status``, sorted."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT DISTINCT window_start, window_end FROM jobs WHERE project = ? AND target = ? AND status = ?",
                (project, target, status),
            ).fetchall()
        windows = [(_parse(s), _parse(e)) for s, e in rows]
        return sorted(windows, key=lambda w: (w[0] is not None, w[0] or w[1], w[1]))

    def summary(self, project: str, bounds: Sequence[float] = ()) -> list[JobSummary]:
        """Per (target, trigger) totals over finished runs, for metrics."""
        bucket_sql = "".join(f", SUM(CASE WHEN seconds <= {float(b)!r} THEN 1 ELSE 0 END)" for b in bounds)
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT target, trigger, status, COUNT(*), COALESCE(SUM(rows), 0), COALESCE(SUM(seconds), 0),"
                f" MAX(CASE WHEN status = 'succeeded' THEN ended_at END){bucket_sql}"
                " FROM jobs WHERE project = ? AND status != 'running' GROUP BY target, trigger, status"
                " ORDER BY target, trigger, status",
                (project,),
            ).fetchall()
        merged: dict[tuple[str, str], dict] = {}
        for target, trigger, status, count, rows_sum, seconds_sum, last, *buckets in rows:
            entry = merged.setdefault((target, trigger), {"runs": {}, "rows": 0, "seconds": 0.0,
                                                          "buckets": [0] * len(bounds), "last": None})
            entry["runs"][status] = int(count)
            entry["rows"] += int(rows_sum)
            entry["seconds"] += float(seconds_sum)
            entry["buckets"] = [a + int(b or 0) for a, b in zip(entry["buckets"], buckets)]
            if last is not None:
                entry["last"] = datetime.fromisoformat(last)
        return [JobSummary(t, g, e["runs"], e["rows"], e["seconds"], tuple(e["buckets"]), e["last"])
                for (t, g), e in merged.items()]

    # -- locks ----------------------------------------------------------------------

    def acquire_lock(self, project: str, name: str, owner: str, ttl: float, now: float) -> LockInfo:
        """Take ``name`` for ``owner`` until ``now + ttl`` if it is free, expired or
        already ``owner``'s. Returns the holder afterwards: compare its owner to yours."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT owner, expires_at, acquired_at FROM locks WHERE project = ? AND name = ?", (project, name)
            ).fetchone()
            if row is not None and row[0] != owner and row[1] > now:
                return LockInfo(name, row[0], row[1], datetime.fromisoformat(row[2]))
            acquired = _now() if row is None or row[0] != owner else datetime.fromisoformat(row[2])
            conn.execute(
                "INSERT INTO locks (project, name, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (project, name) DO UPDATE SET owner = excluded.owner,"
                " acquired_at = excluded.acquired_at, expires_at = excluded.expires_at",
                (project, name, owner, _iso(acquired), now + ttl),
            )
        return LockInfo(name, owner, now + ttl, acquired)

    def take_over_lock(self, project: str, name: str, holder: str, owner: str, ttl: float, now: float) -> bool:
        """Give ``name`` to ``owner`` until ``now + ttl`` if ``holder`` still holds it (expired
        or not): a compare-and-swap on the owner, for a holder known to be dead. False when
        the lock changed hands (or was freed) since ``holder`` was read."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE locks SET owner = ?, acquired_at = ?, expires_at = ? WHERE project = ? AND name = ? AND owner = ?",
                (owner, _iso(_now()), now + ttl, project, name, holder),
            )
            return cursor.rowcount == 1

    def renew_lock(self, project: str, name: str, owner: str, ttl: float, now: float) -> bool:
        """Extend ``owner``'s hold to ``now + ttl``; False if it no longer holds it."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE locks SET expires_at = ? WHERE project = ? AND name = ? AND owner = ? AND expires_at > ?",
                (now + ttl, project, name, owner, now),
            )
            return cursor.rowcount == 1

    def release_lock(self, project: str, name: str, owner: str) -> bool:
        """Let go of ``name`` if ``owner`` holds it; True when it did."""
        with self._write() as conn:
            cursor = conn.execute(
                "DELETE FROM locks WHERE project = ? AND name = ? AND owner = ?", (project, name, owner)
            )
            return cursor.rowcount == 1

    def get_lock(self, project: str, name: str, now: float) -> LockInfo | None:
        """The live holder of ``name``, or None when it is free or expired."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT owner, expires_at, acquired_at FROM locks WHERE project = ? AND name = ? AND expires_at > ?",
                (project, name, now),
            ).fetchone()
        return None if row is None else LockInfo(name, row[0], row[1], datetime.fromisoformat(row[2]))

    # -- plumbing -------------------------------------------------------------------

    def _ensure_tables(self) -> None:
        # Registries created before these tables existed get them here, once.
        if self._ready:
            return
        with self._ready_lock:
            if not self._ready:
                # Read first: a registry opened read-only that has the tables needs no write.
                with self._connect_read() as conn:
                    have = self._table_names(conn)
                if not {"jobs", "locks"} <= have:
                    with self._connect_write() as conn:
                        for statement in JOB_SCHEMA:
                            conn.execute(statement)
                self._ready = True

    def _read(self):
        self._ensure_tables()
        return self._connect_read()

    def _write(self):
        self._ensure_tables()
        return self._connect_write()


def _check(project: object, target: object, trigger: object) -> None:
    for what, value in (("project", project), ("job target", target), ("job trigger", trigger)):
        if not isinstance(value, str) or not value:
            raise RegistryError(f"{what} must be a non-empty string, got {value!r}")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise RegistryError(f"job windows must be datetimes, got {type(value).__name__}")
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    # Fixed width (always microseconds) so stored times also sort as text.
    value = _utc(value)
    return None if value is None else value.isoformat(timespec="microseconds")


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _record(row) -> JobRecord:
    (job_id, target, trigger, start, end, status, started, ended, seconds, rows, error, attempt, batch,
     owner) = row
    return JobRecord(int(job_id), target, trigger, _parse(start), _parse(end), status, _parse(started),
                     _parse(ended), seconds, rows, error, int(attempt), batch, owner)
