"""``Registry``: versioned JSON specs, lineage and small state in one database.

The database is an SQLite file by default, or PostgreSQL (``postgresql://...``) when
several machines share the registry; ``registry.database`` says what both guarantee.

Contracts kept here:
- every write runs in one transaction holding the registry's write lock, so a failure
  anywhere leaves the registry as it was and two writers from two processes run one
  after the other;
- a project's revision goes up by one per write that changed something; each kind
  also keeps the revision of the last write that changed one of its objects, so a
  reader polls ``revision(project, kinds)`` for the kinds it uses and reloads only when
  one of those changed (a saved dataset does not reload feature definitions);
- an object's current state is its highest version unless that is a tombstone.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from registry.database import Connection, Database
from registry.diff import canonical_json, check_objects, diff_objects
from registry.errors import ConflictError, RegistryError
from registry.jobs import JobLog
from registry.postgres import is_postgres_url
from registry.records import ApplyResult, Change, Edge, ObjectSpec, StoredObject
from registry.sqlite import SqliteDatabase, resolve_path
from registry.transaction import Transaction, check_not_pinned
from registry.tables import (
    COLUMNS,
    DOWNSTREAM,
    LATEST,
    UPSTREAM,
    current_objects,
    insert_version,
    read_revision,
    row_to_object,
    set_edges,
    set_revision,
)

__all__ = ["Registry"]

_DIRECTIONS = ("upstream", "downstream", "both")


class Registry:
    """A catalog of versioned objects per project, kept in one ``Database``.

    Threads may share an instance; several processes (and, on PostgreSQL, machines) may
    open the same registry at once.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._jobs = JobLog(self._read, self._write, database.table_names)

    @classmethod
    def open(cls, location: str | os.PathLike[str]) -> Registry:
        """Open (creating if needed) the registry at a path, a ``sqlite:///`` URL or a
        ``postgresql://`` URL."""
        if is_postgres_url(location):
            from registry.postgres import PostgresDatabase

            return cls(PostgresDatabase.open(os.fspath(location)))
        return cls(SqliteDatabase(resolve_path(location)))

    @property
    def path(self) -> Path | None:
        """The SQLite file; None for a PostgreSQL registry."""
        return self._db.path

    @property
    def location(self) -> str:
        """The file, or the database URL without its password."""
        return self._db.location

    @property
    def read_only(self) -> bool:
        """Whether the file was opened read-only (this process cannot write it)."""
        return self._db.read_only is not None

    @property
    def jobs(self) -> JobLog:
        """Job records and locks kept in the same database (see ``registry.jobs``)."""
        return self._jobs

    def __repr__(self) -> str:
        return f"Registry({self.location!r})"

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; later calls raise RegistryError."""
        self._db.close()

    # -- reads ----------------------------------------------------------------------

    def revision(self, project: str, kinds: str | Sequence[str] | None = None) -> int:
        """The project's revision: 0 when new, +1 for every write that changed it.

        With ``kinds`` (one kind or several), the revision of the latest write that
        changed an object of one of them (0 if none did): it moves only when those
        kinds change.
        """
        if isinstance(kinds, str):
            kinds = (kinds,)
        with self._read() as conn:
            return read_revision(conn, project, kinds)

    def get(
        self, project: str, kind: str, name: str, version: int | None = None
    ) -> StoredObject | None:
        """One version of an object; the current one (None if removed) by default."""
        with self._read() as conn:
            if version is None:
                row = conn.execute(
                    LATEST.format(where="AND kind = ? AND name = ?"),
                    (project, kind, name),
                ).fetchone()
                obj = None if row is None else row_to_object(row)
                return None if obj is None or obj.removed else obj
            row = conn.execute(
                f"SELECT {COLUMNS} FROM objects "
                "WHERE project = ? AND kind = ? AND name = ? AND version = ?",
                (project, kind, name, version),
            ).fetchone()
            return None if row is None else row_to_object(row)

    def list(self, project: str, kind: str | None = None) -> list[StoredObject]:
        """Current objects (not removed), sorted by kind then name."""
        with self._read() as conn:
            if kind is None:
                rows = conn.execute(LATEST.format(where="AND removed = 0"), (project,))
            else:
                rows = conn.execute(
                    LATEST.format(where="AND removed = 0 AND kind = ?"), (project, kind)
                )
            return [row_to_object(row) for row in rows]

    def history(self, project: str, kind: str, name: str) -> list[StoredObject]:
        """Every version of an object, oldest first, tombstones included."""
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {COLUMNS} FROM objects "
                "WHERE project = ? AND kind = ? AND name = ? ORDER BY version",
                (project, kind, name),
            )
            return [row_to_object(row) for row in rows]

    def lineage(
        self, project: str, kind: str, name: str, direction: str = "both"
    ) -> list[Edge]:
        """Edges reachable from an object, transitively, sorted.

        ``"upstream"`` follows what it depends on, ``"downstream"`` what depends on
        it, ``"both"`` is the union of the two. Only current objects have edges, but
        an edge from a removed dependency stays while its reader still names it.
        """
        if direction not in _DIRECTIONS:
            raise RegistryError(
                f"lineage direction {direction!r} is not one of {', '.join(_DIRECTIONS)}"
            )
        queries = {"upstream": [UPSTREAM], "downstream": [DOWNSTREAM]}.get(
            direction, [UPSTREAM, DOWNSTREAM]
        )
        edges: set[Edge] = set()
        with self._read() as conn:
            for query in queries:
                rows = conn.execute(query, (kind, name, project, project))
                edges.update(Edge(*row) for row in rows)
        return sorted(edges, key=lambda e: (e.from_kind, e.from_name, e.to_kind, e.to_name))

    def plan(
        self,
        project: str,
        objects: Sequence[ObjectSpec],
        kinds: Sequence[str],
        *,
        pinned_by: Sequence[str] = (),
    ) -> list[Change]:
        """What ``apply`` with the same arguments would change now; raises InUseError
        as ``apply`` would when a removal is pinned."""
        check_objects(objects, kinds)
        with self._read() as conn:
            changes = diff_objects(current_objects(conn, project, kinds), objects, kinds)
            removed = [(c.kind, c.name) for c in changes if c.action == "remove"]
            check_not_pinned(conn, project, removed, pinned_by)
            return changes

    def get_state(self, project: str, key: str) -> Any | None:
        """A small JSON value stored with ``set_state``, or None."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT value FROM state WHERE project = ? AND key = ?", (project, key)
            ).fetchone()
            return None if row is None else json.loads(row[0])

    # -- writes ---------------------------------------------------------------------

    def apply(
        self,
        project: str,
        objects: Sequence[ObjectSpec],
        kinds: Sequence[str],
        expected_revision: int | None = None,
        *,
        pinned_by: Sequence[str] = (),
    ) -> ApplyResult:
        """Make the stored objects of ``kinds`` exactly ``objects``, in one transaction.

        Added or changed objects get a new version, objects of ``kinds`` that are absent
        get a tombstone, unchanged ones are not written. Raises ConflictError when
        ``expected_revision`` is given and the project has moved on, and InUseError
        (writing nothing) when an object to remove is a dependency of a current object
        of a ``pinned_by`` kind.
        """
        _check_project(project)
        objects = list(objects)
        check_objects(objects, kinds)
        wanted = {(o.kind, o.name): o for o in objects}
        with self._write() as conn:
            current_revision = read_revision(conn, project)
            if expected_revision is not None and expected_revision != current_revision:
                raise ConflictError(
                    f"registry {self.location}: project {project!r} is at revision "
                    f"{current_revision}, not the expected {expected_revision}; another "
                    "apply ran in between, plan again and re-apply"
                )
            current = current_objects(conn, project, kinds)
            changes = diff_objects(current, objects, kinds)
            if not changes:
                return ApplyResult([], current_revision)
            removed = [(c.kind, c.name) for c in changes if c.action == "remove"]
            check_not_pinned(conn, project, removed, pinned_by)
            revision = current_revision + 1
            now = _now()
            for change in changes:
                key = (change.kind, change.name)
                if change.action == "remove":
                    old = current[key]
                    insert_version(
                        conn, project, key, old.spec_json, old.depends_on, revision, now,
                        removed=True,
                    )
                    set_edges(conn, project, key, ())
                else:
                    obj = wanted[key]
                    text = canonical_json(obj.spec, f"spec of {obj.kind} {obj.name!r}")
                    insert_version(conn, project, key, text, obj.depends_on, revision, now)
                    set_edges(conn, project, key, obj.depends_on)
            set_revision(conn, project, revision, now, [c.kind for c in changes])
        return ApplyResult(changes, revision)

    def put(self, project: str, obj: ObjectSpec) -> StoredObject:
        """Add or update one object; a new version only if its spec or deps changed."""
        _check_project(project)
        if not isinstance(obj, ObjectSpec):
            raise RegistryError(f"put takes an ObjectSpec, got {type(obj).__name__}")
        text = canonical_json(obj.spec, f"spec of {obj.kind} {obj.name!r}")
        key = (obj.kind, obj.name)
        with self._write() as conn:
            row = conn.execute(
                LATEST.format(where="AND kind = ? AND name = ?"), (project, *key)
            ).fetchone()
            existing = None if row is None else row_to_object(row)
            if (
                existing is not None
                and not existing.removed
                and canonical_json(existing.spec) == text
                and existing.depends_on == obj.depends_on
            ):
                return existing
            revision = read_revision(conn, project) + 1
            now = _now()
            version = insert_version(
                conn, project, key, text, obj.depends_on, revision, now
            )
            set_edges(conn, project, key, obj.depends_on)
            set_revision(conn, project, revision, now, [obj.kind])
        return StoredObject(
            obj.kind, obj.name, version, json.loads(text), obj.depends_on,
            datetime.fromisoformat(now), revision, False,
        )

    def put_numbered(
        self,
        project: str,
        kind: str,
        prefix: str,
        spec: dict[str, Any],
        depends_on: Sequence[tuple[str, str]] = (),
    ) -> StoredObject:
        """Add object ``<prefix><n>`` with the next free number n (from 1), race-free.

        Used for model versions (``churn/`` -> ``churn/3``): the number is allocated and
        the object inserted in one write transaction, so concurrent processes get
        distinct consecutive numbers.
        """
        with self.transaction(project) as tx:
            return tx.put_numbered(kind, prefix, spec, depends_on)

    def remove(
        self,
        project: str,
        kind: str,
        name: str,
        spec: dict[str, Any] | None = None,
        pinned_by: Sequence[str] = (),
    ) -> StoredObject:
        """Remove one object (write its tombstone); see ``Transaction.remove``."""
        with self.transaction(project) as tx:
            return tx.remove(kind, name, spec, pinned_by)

    @contextlib.contextmanager
    def transaction(self, project: str) -> Iterator[Transaction]:
        """Reads and writes of ``project`` that commit together under the write lock.

        The revision goes up by one at commit when anything was written; an exception
        rolls everything back.
        """
        _check_project(project)
        with self._write() as conn:
            tx = Transaction(conn, project, _now())
            yield tx
            if tx.changed:
                set_revision(conn, project, tx.revision, tx.now, sorted(tx.kinds))

    def set_state(self, project: str, key: str, value: Any) -> None:
        """Store a small JSON value under ``key`` (None deletes it); no revision bump."""
        _check_project(project)
        text = None if value is None else canonical_json(value, f"state {key!r}")
        with self._write() as conn:
            if text is None:
                conn.execute(
                    "DELETE FROM state WHERE project = ? AND key = ?", (project, key)
                )
            else:
                conn.execute(
                    "INSERT INTO state (project, key, value, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (project, key) DO UPDATE"
                    " SET value = excluded.value, updated_at = excluded.updated_at",
                    (project, key, text, _now()),
                )

    # -- transactions ---------------------------------------------------------------

    def _read(self) -> contextlib.AbstractContextManager[Connection]:
        return self._db.read()

    def _write(self) -> contextlib.AbstractContextManager[Connection]:
        return self._db.write()


def _check_project(project: object) -> None:
    if not isinstance(project, str) or not project:
        raise RegistryError(f"project must be a non-empty string, got {project!r}")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
