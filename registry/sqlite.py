"""The SQLite file under the registry: locating it, connecting, the schema.

Several processes (API server, scheduler, CLI) share one file, so every connection
uses WAL (readers never block the writer), a long busy timeout (a writer waits for
another writer instead of failing) and ``BEGIN IMMEDIATE`` for writes (the write lock
is taken before the first read, so a read-then-write never deadlocks or upgrades).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from registry.errors import RegistryError
from registry.tables import MIGRATIONS, SCHEMA, SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_S",
    "connect",
    "resolve_path",
    "sqlite_errors",
]

BUSY_TIMEOUT_S = 30.0


def resolve_path(location: str | os.PathLike[str]) -> Path:
    """The file a registry location names: a path, or a ``sqlite:///`` URL.

    ``sqlite:///abs/path.db`` and SQLAlchemy's ``sqlite:////abs/path.db`` both name
    ``/abs/path.db``; ``sqlite:///./rel.db`` names a path relative to the working
    directory.
    """
    text = os.fspath(location)
    if "://" not in text:
        if not text:
            raise RegistryError("registry location is empty; give a file path")
        return Path(text).expanduser()
    scheme, _, rest = text.partition("://")
    if scheme.lower() != "sqlite":
        raise RegistryError(
            f"registry URL {text!r} is not supported: only sqlite is supported; use a "
            "file path or sqlite:///path/to/registry.db"
        )
    rest = rest.split("?", 1)[0]
    if not rest.startswith("/") or rest in ("/", "//"):
        raise RegistryError(
            f"registry URL {text!r} has no file path; use sqlite:///path/to/registry.db"
        )
    if rest.startswith("/./") or rest.startswith("/../"):
        return Path(rest[1:])
    return Path("/" + rest.lstrip("/"))


@contextlib.contextmanager
def sqlite_errors(path: Path) -> Iterator[None]:
    """Turn sqlite3 errors into RegistryError naming the file and what to check."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        msg = str(exc)
        if "locked" in msg or "busy" in msg:
            hint = (
                f"another process held the write lock for over {BUSY_TIMEOUT_S:.0f}s; "
                "retry, or look for a stuck process using it"
            )
        elif "readonly" in msg or "unable to open" in msg or "disk" in msg:
            hint = "check that the file and its folder exist and are writable"
        else:
            hint = "check the file is a registry written by this program"
        raise RegistryError(f"registry {path}: {msg}; {hint}") from exc
    except sqlite3.IntegrityError as exc:
        # Only a trigger or a hand-edited file can reject our writes; the transaction
        # is rolled back by the caller, so nothing was changed.
        raise RegistryError(
            f"registry {path} rejected a write ({exc}); nothing was changed. Check for "
            "triggers or constraints added to the file by hand"
        ) from exc
    except sqlite3.DatabaseError as exc:
        # Includes "file is not a database" (corrupt or foreign file).
        raise RegistryError(
            f"registry {path} cannot be read: {exc}; restore it from a backup or point "
            "`registry` at a new file"
        ) from exc


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` (creating it and its folder), set it up and check its schema."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RegistryError(
            f"registry {path}: cannot create folder {path.parent} ({exc}); "
            "check the path and its permissions"
        ) from exc
    with sqlite_errors(path):
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) rather
        # than the sqlite3 module's implicit ones. check_same_thread=False: the
        # Registry serializes access with its own lock.
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RegistryError(
                    f"registry {path}: cannot switch to WAL mode (got {mode!r}); put "
                    "the registry on a local filesystem"
                )
            # NORMAL is durable across application crashes in WAL mode; only an OS
            # crash can lose the last commits, never corrupt the file.
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            _ensure_schema(conn, path)
        except BaseException:
            conn.close()
            raise
    return conn


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    # Inside BEGIN IMMEDIATE so two processes opening a new file at once do not both
    # create it. Statements run one by one because executescript() would COMMIT first.
    conn.execute("BEGIN IMMEDIATE")
    try:
        tables = {
            row[0]
            for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        version = None
        if "meta" in tables:
            row = conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            version = int(row[0]) if row else None
        elif tables:
            raise RegistryError(
                f"{path} is an SQLite file but not a registry (it has tables "
                f"{sorted(tables)}); point `registry` at a new file"
            )
        if version is not None and version > SCHEMA_VERSION:
            raise RegistryError(
                f"registry {path} has schema version {version}, newer than this "
                f"program's {SCHEMA_VERSION}; upgrade the featurestore package"
            )
        if version is None:
            for statement in SCHEMA:
                conn.execute(statement)
        else:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    conn.execute(statement)
        if version != SCHEMA_VERSION:
            conn.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
