"""The registry's tables: their schema and the row-level SQL over them.

Rows hold specs as canonical JSON text (``registry.diff.canonical_json``) and
timestamps as ISO-8601 UTC text. ``registry.store`` builds transactions from these.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from registry.database import Connection
from registry.diff import Current, spec_hash
from registry.records import StoredObject

__all__ = [
    "COLUMNS",
    "DOWNSTREAM",
    "JOB_SCHEMA",
    "LATEST",
    "MIGRATIONS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "UPSTREAM",
    "current_objects",
    "insert_version",
    "read_revision",
    "row_to_object",
    "set_edges",
    "set_revision",
]

# Stored in meta.schema_version. A migration to version N adds the statements that
# turn N-1 into N (MIGRATIONS[N]); registry.sqlite and registry.postgres run them inside
# the write lock that checks the version, so concurrent openers migrate once. The
# statements are SQLite's; PostgreSQL registries start at version 2, so migrations
# after it must be written in SQL both accept (registry.postgres maps the column types).
SCHEMA_VERSION = 2

# Job records and locks (registry.jobs). Kept apart so a registry written before they
# existed gets them on first use: every statement is idempotent.
JOB_SCHEMA = (
    # One row per run: what ran (target), why (trigger), over which window, and how it
    # ended. A backfill's runs share a batch; a retried run has attempt > 1.
    """CREATE TABLE IF NOT EXISTS jobs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        project      TEXT NOT NULL,
        target       TEXT NOT NULL,
        trigger      TEXT NOT NULL,
        window_start TEXT,
        window_end   TEXT NOT NULL,
        status       TEXT NOT NULL,
        started_at   TEXT NOT NULL,
        ended_at     TEXT,
        seconds      REAL,
        rows         INTEGER,
        error        TEXT,
        attempt      INTEGER NOT NULL,
        batch        TEXT,
        owner        TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_by_target ON jobs (project, target, status)",
    "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (project, status)",
    # A lock is held by owner until expires_at (epoch seconds); an expired row is free.
    """CREATE TABLE IF NOT EXISTS locks (
        project     TEXT NOT NULL,
        name        TEXT NOT NULL,
        owner       TEXT NOT NULL,
        acquired_at TEXT NOT NULL,
        expires_at  REAL NOT NULL,
        PRIMARY KEY (project, name)
    )""",
)

# Per kind, the project revision of the last write that changed an object of that kind,
# so a reader polls only the kinds it uses: a saved dataset or a model version must not
# make every server reload the feature definitions. (Schema version 2.)
_KIND_REVISIONS = """CREATE TABLE IF NOT EXISTS kind_revisions (
    project  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (project, kind)
)"""

MIGRATIONS: dict[int, tuple[str, ...]] = {
    # Version 1 had only the project revision; each object version records the revision
    # that wrote it, so the per-kind revisions are the latest of those.
    2: (
        _KIND_REVISIONS,
        "INSERT OR REPLACE INTO kind_revisions (project, kind, revision)"
        " SELECT project, kind, MAX(revision) FROM objects GROUP BY project, kind",
    ),
}

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    # The project revision: +1 per write that changed an object; apply's conflict check.
    """CREATE TABLE IF NOT EXISTS projects (
        project    TEXT PRIMARY KEY,
        revision   INTEGER NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    _KIND_REVISIONS,
    # Every version of every object. The highest version of a (project, kind, name)
    # is its current state, unless that version is a tombstone (removed = 1).
    """CREATE TABLE IF NOT EXISTS objects (
        project    TEXT NOT NULL,
        kind       TEXT NOT NULL,
        name       TEXT NOT NULL,
        version    INTEGER NOT NULL,
        spec       TEXT NOT NULL,
        spec_hash  TEXT NOT NULL,
        depends_on TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revision   INTEGER NOT NULL,
        removed    INTEGER NOT NULL,
        PRIMARY KEY (project, kind, name, version)
    )""",
    # Lineage of current objects only, in the direction data flows (from = the
    # dependency, to = its reader). A reader's rows are replaced when it gets a new
    # version and deleted when it is removed.
    """CREATE TABLE IF NOT EXISTS edges (
        project   TEXT NOT NULL,
        from_kind TEXT NOT NULL,
        from_name TEXT NOT NULL,
        to_kind   TEXT NOT NULL,
        to_name   TEXT NOT NULL,
        PRIMARY KEY (project, to_kind, to_name, from_kind, from_name)
    )""",
    "CREATE INDEX IF NOT EXISTS edges_by_from ON edges (project, from_kind, from_name)",
    """CREATE TABLE IF NOT EXISTS state (
        project    TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (project, key)
    )""",
    *JOB_SCHEMA,
)

COLUMNS = "kind, name, version, spec, spec_hash, depends_on, created_at, revision, removed"

# The highest version of each (kind, name): its current state or its tombstone; add
# "AND removed = 0" to {where} for current objects only.
LATEST = f"""
SELECT {COLUMNS}
FROM objects o
WHERE project = ? {{where}}
  AND version = (SELECT MAX(version) FROM objects i
                 WHERE i.project = o.project AND i.kind = o.kind AND i.name = o.name)
ORDER BY kind, name
"""

# Recursive walks over the edges; UNION (not UNION ALL) stops at cycles.
UPSTREAM = """
WITH RECURSIVE node(kind, name) AS (
    SELECT ?, ?
    UNION
    SELECT e.from_kind, e.from_name FROM edges e JOIN node
      ON e.project = ? AND e.to_kind = node.kind AND e.to_name = node.name
)
SELECT e.from_kind, e.from_name, e.to_kind, e.to_name FROM edges e JOIN node
  ON e.project = ? AND e.to_kind = node.kind AND e.to_name = node.name
"""
DOWNSTREAM = """
WITH RECURSIVE node(kind, name) AS (
    SELECT ?, ?
    UNION
    SELECT e.to_kind, e.to_name FROM edges e JOIN node
      ON e.project = ? AND e.from_kind = node.kind AND e.from_name = node.name
)
SELECT e.from_kind, e.from_name, e.to_kind, e.to_name FROM edges e JOIN node
  ON e.project = ? AND e.from_kind = node.kind AND e.from_name = node.name
"""


def read_revision(
    conn: Connection, project: str, kinds: Sequence[str] | None = None
) -> int:
    """The project's revision, or the latest that changed one of ``kinds``; 0 if none."""
    if kinds is not None and not kinds:
        return 0  # (PostgreSQL refuses an empty IN ())
    if kinds is None:
        row = conn.execute(
            "SELECT revision FROM projects WHERE project = ?", (project,)
        ).fetchone()
    else:
        marks = ", ".join("?" for _ in kinds)
        row = conn.execute(
            "SELECT MAX(revision) FROM kind_revisions"
            f" WHERE project = ? AND kind IN ({marks})",
            (project, *kinds),
        ).fetchone()
    return 0 if row is None or row[0] is None else int(row[0])


def set_revision(
    conn: Connection,
    project: str,
    revision: int,
    now: str,
    kinds: Sequence[str],
) -> None:
    """Record the project's new revision, and that it changed objects of ``kinds``."""
    conn.execute(
        "INSERT INTO projects (project, revision, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (project) DO UPDATE"
        " SET revision = excluded.revision, updated_at = excluded.updated_at",
        (project, revision, now),
    )
    conn.executemany(
        "INSERT INTO kind_revisions (project, kind, revision) VALUES (?, ?, ?)"
        " ON CONFLICT (project, kind) DO UPDATE SET revision = excluded.revision",
        [(project, kind, revision) for kind in sorted(set(kinds))],
    )


def current_objects(
    conn: Connection, project: str, kinds: Sequence[str]
) -> dict[tuple[str, str], Current]:
    """Current (not removed) objects of ``kinds``."""
    if not kinds:
        return {}
    marks = ", ".join("?" for _ in kinds)
    rows = conn.execute(
        LATEST.format(where=f"AND removed = 0 AND kind IN ({marks})"), (project, *kinds)
    )
    return {(row[0], row[1]): Current(row[3], row[4], _deps(row[5])) for row in rows}


def insert_version(
    conn: Connection,
    project: str,
    key: tuple[str, str],
    spec_json: str,
    depends_on: tuple[tuple[str, str], ...],
    revision: int,
    now: str,
    removed: bool = False,
) -> int:
    """Write the next version of ``key``; return its number."""
    (latest,) = conn.execute(
        "SELECT COALESCE(MAX(version), 0) FROM objects"
        " WHERE project = ? AND kind = ? AND name = ?",
        (project, *key),
    ).fetchone()
    version = int(latest) + 1
    conn.execute(
        f"INSERT INTO objects ({COLUMNS}, project) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            *key, version, spec_json, spec_hash(spec_json),
            json.dumps([list(p) for p in depends_on]), now, revision, int(removed),
            project,
        ),
    )
    return version


def set_edges(
    conn: Connection,
    project: str,
    key: tuple[str, str],
    depends_on: tuple[tuple[str, str], ...],
) -> None:
    """Replace the edges into ``key`` (its dependencies) with ``depends_on``."""
    conn.execute(
        "DELETE FROM edges WHERE project = ? AND to_kind = ? AND to_name = ?",
        (project, *key),
    )
    conn.executemany(
        "INSERT INTO edges (project, from_kind, from_name, to_kind, to_name)"
        " VALUES (?, ?, ?, ?, ?)",
        [(project, dep_kind, dep_name, *key) for dep_kind, dep_name in depends_on],
    )


def _deps(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((kind, name) for kind, name in json.loads(text))


def row_to_object(row: Sequence[Any]) -> StoredObject:
    """A row selected as COLUMNS, as a StoredObject."""
    kind, name, version, spec, _hash, deps, created_at, revision, removed = row
    return StoredObject(
        kind, name, int(version), json.loads(spec), _deps(deps),
        datetime.fromisoformat(created_at), int(revision), bool(removed),
    )
