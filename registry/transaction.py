"""``Transaction``: several reads and writes of one project under one write lock.

``Registry.transaction(project)`` yields one. Everything done through it commits
together or not at all, and because the transaction is ``BEGIN IMMEDIATE`` the state a
caller checks (an alias's target is not archived, a version number is free) cannot change
before its write commits, even with other processes writing the same file.

The project's revision goes up by one at commit when anything was written, as for every
other registry write, and so does the revision of each kind written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from registry.database import Connection
from registry.diff import canonical_json
from registry.errors import InUseError, RegistryError
from registry.records import ObjectSpec, StoredObject
from registry.tables import (
    LATEST,
    insert_version,
    read_revision,
    row_to_object,
    set_edges,
)

__all__ = ["Transaction", "check_not_pinned"]


class Transaction:
    """Reads and writes of one project inside one open write transaction."""

    def __init__(self, conn: Connection, project: str, now: str) -> None:
        self._conn = conn
        self.project = project
        self.now = now
        self._revision = read_revision(conn, project) + 1
        self.kinds: set[str] = set()  # the kinds written, for the per-kind revisions

    @property
    def changed(self) -> bool:
        """Whether anything was written."""
        return bool(self.kinds)

    @property
    def revision(self) -> int:
        """The revision this transaction's writes carry."""
        return self._revision

    # -- reads ----------------------------------------------------------------------

    def get(self, kind: str, name: str) -> StoredObject | None:
        """The current version of an object, or None when absent or removed."""
        row = self._conn.execute(
            LATEST.format(where="AND kind = ? AND name = ?"), (self.project, kind, name)
        ).fetchone()
        obj = None if row is None else row_to_object(row)
        return None if obj is None or obj.removed else obj

    def list(self, kind: str, prefix: str = "") -> list[StoredObject]:
        """Current objects of ``kind`` whose name starts with ``prefix``, by name."""
        rows = self._conn.execute(
            LATEST.format(where="AND removed = 0 AND kind = ? AND substr(name, 1, ?) = ?"),
            (self.project, kind, len(prefix), prefix),
        )
        return [row_to_object(row) for row in rows]

    def readers(self, kind: str, name: str, kinds: Sequence[str]) -> list[tuple[str, str]]:
        """The current objects of ``kinds`` that depend on ``(kind, name)``, sorted."""
        if not kinds:
            return []
        marks = ", ".join("?" for _ in kinds)
        rows = self._conn.execute(
            "SELECT to_kind, to_name FROM edges WHERE project = ? AND from_kind = ?"
            f" AND from_name = ? AND to_kind IN ({marks}) ORDER BY to_kind, to_name",
            (self.project, kind, name, *kinds),
        )
        return [(k, n) for k, n in rows]

    # -- writes ---------------------------------------------------------------------

    def put(self, obj: ObjectSpec) -> StoredObject:
        """Write a new version of ``obj`` unless the current one is identical."""
        text = canonical_json(obj.spec, f"spec of {obj.kind} {obj.name!r}")
        existing = self.get(obj.kind, obj.name)
        if (
            existing is not None
            and canonical_json(existing.spec) == text
            and existing.depends_on == obj.depends_on
        ):
            return existing
        return self._insert(obj, text)

    def put_numbered(
        self,
        kind: str,
        prefix: str,
        spec: dict,
        depends_on: Sequence[tuple[str, str]] = (),
    ) -> StoredObject:
        """Add object ``<prefix><n>``, n one more than any number used after ``prefix``.

        Numbers of removed objects count too, so a number is never given out twice.
        Inside the write lock, so concurrent callers get distinct consecutive numbers.
        """
        number = self.last_number(kind, prefix) + 1
        obj = ObjectSpec(kind, f"{prefix}{number}", spec, tuple(depends_on))
        text = canonical_json(obj.spec, f"spec of {kind} {obj.name!r}")
        return self._insert(obj, text)

    def last_number(self, kind: str, prefix: str) -> int:
        """The highest ``n`` of any object named ``<prefix><n>`` ever written, or 0."""
        rows = self._conn.execute(
            "SELECT DISTINCT substr(name, ?) FROM objects"
            " WHERE project = ? AND kind = ? AND substr(name, 1, ?) = ?",
            (len(prefix) + 1, self.project, kind, len(prefix), prefix),
        )
        numbers = [int(rest) for (rest,) in rows if rest.isdigit()]
        return max(numbers, default=0)

    def remove(
        self,
        kind: str,
        name: str,
        spec: dict | None = None,
        pinned_by: Sequence[str] = (),
    ) -> StoredObject:
        """Write a tombstone for one current object and drop its lineage edges.

        The tombstone keeps ``spec`` (default: the removed version's spec), so its history
        can say why it went. Raises InUseError while a current object of a ``pinned_by``
        kind depends on it, and RegistryError when it does not exist.
        """
        current = self.get(kind, name)
        if current is None:
            raise RegistryError(f"{kind} {name!r} does not exist in project {self.project!r}")
        check_not_pinned(self._conn, self.project, [(kind, name)], pinned_by)
        text = canonical_json(current.spec if spec is None else spec, f"spec of {kind} {name!r}")
        version = insert_version(
            self._conn, self.project, (kind, name), text, current.depends_on, self._revision,
            self.now, removed=True,
        )
        set_edges(self._conn, self.project, (kind, name), ())
        self.kinds.add(kind)
        return StoredObject(
            kind, name, version, json.loads(text), current.depends_on,
            datetime.fromisoformat(self.now), self._revision, True,
        )

    def _insert(self, obj: ObjectSpec, text: str) -> StoredObject:
        key = (obj.kind, obj.name)
        version = insert_version(
            self._conn, self.project, key, text, obj.depends_on, self._revision, self.now
        )
        set_edges(self._conn, self.project, key, obj.depends_on)
        self.kinds.add(obj.kind)
        return StoredObject(
            obj.kind, obj.name, version, json.loads(text), obj.depends_on,
            datetime.fromisoformat(self.now), self._revision, False,
        )


def check_not_pinned(
    conn: Connection,
    project: str,
    removed: Sequence[tuple[str, str]],
    pinned_by: Sequence[str],
) -> None:
    """Raise InUseError naming the readers when a current object of a ``pinned_by`` kind
    depends on one of ``removed`` (a model version pins its training set, say)."""
    if not pinned_by or not removed:
        return
    marks = ", ".join("?" for _ in pinned_by)
    problems = []
    for kind, name in removed:
        rows = conn.execute(
            f"SELECT to_kind, to_name FROM edges WHERE project = ? AND from_kind = ?"
            f" AND from_name = ? AND to_kind IN ({marks}) ORDER BY to_kind, to_name",
            (project, kind, name, *pinned_by),
        ).fetchall()
        if rows:
            readers = ", ".join(f"{k} {n!r}" for k, n in rows)
            problems.append(f"{kind} {name!r} (used by {readers})")
    if problems:
        raise InUseError(
            f"cannot remove {'; '.join(problems)}: what depends on it must stay reproducible; "
            "nothing was changed"
        )

