"""The SQLite file under the registry: locating it, connecting, the schema.

Several processes (API server, scheduler, CLI) share one file, so every connection
uses WAL (readers never block the writer), a long busy timeout (a writer waits for
another writer instead of failing) and ``BEGIN IMMEDIATE`` for writes (the write lock
is taken before the first read, so a read-then-write never deadlocks or upgrades).

A registry file is never empty: a new one is built under a temporary name and linked
into place with its schema written, so a 0-byte file at the path was truncated (a full
disk, a bad copy) and is refused rather than silently taken for a new registry (which
would drop every definition's history and every watermark). A file this process cannot
write (a read-only mount, no write permission on it or its folder) opens read-only:
reads work, writes raise ``RegistryError`` saying why (``ReadOnlyConnection``).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from registry.errors import RegistryError
from registry.tables import MIGRATIONS, SCHEMA, SCHEMA_VERSION

__all__ = [
    "BUSY_TIMEOUT_S",
    "ReadOnlyConnection",
    "SqliteDatabase",
    "connect",
    "enable_wal",
    "resolve_path",
    "sqlite_errors",
    "transaction",
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
            f"registry URL {text!r} is not supported: use a file path, "
            "sqlite:///path/to/registry.db or postgresql://user@host:5432/database"
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


def enable_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """``PRAGMA journal_mode=WAL`` on ``conn``; the mode it answers. Retried for up to
    ``timeout`` seconds while the file is locked: on a new file that several processes
    open at once (a Spark materialization's executors creating the online store), SQLite
    answers "database is locked" at once instead of waiting out the busy timeout, as
    waiting there could deadlock."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
    """One explicit transaction on ``conn`` (opened with ``isolation_level=None``): committed
    when the block ends, rolled back when it or the commit fails. ``BEGIN IMMEDIATE`` takes
    the file's write lock up front, so a writer waits its turn instead of failing halfway."""
    conn.execute(begin)
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SqliteDatabase:
    """The registry's SQLite file: one connection, shared by threads under a lock.

    Reads run in a deferred transaction (one snapshot; WAL readers never wait for the
    writer), writes in ``BEGIN IMMEDIATE`` (the file's write lock is taken before the
    first read, so a read-then-write never deadlocks or upgrades).
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = connect(path)
        # Opened read-only (connect() could not write the file): reads work, writes say why.
        self._read_only = self._conn.reason if isinstance(self._conn, ReadOnlyConnection) else None
        self._lock = threading.RLock()

    @property
    def location(self) -> str:
        return str(self._path)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def read_only(self) -> str | None:
        return self._read_only

    def read(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._transaction("BEGIN")

    def write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        if self._read_only is not None:
            raise RegistryError(
                f"registry {self._path} is open read-only ({self._read_only}): reading works, "
                "but this changes the registry; run it where the registry file and its folder are writable"
            )
        return self._transaction("BEGIN IMMEDIATE")

    def table_names(self, conn: sqlite3.Connection) -> set[str]:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock, sqlite_errors(self._path):
            conn = self._conn
            if conn is None:
                raise RegistryError(f"registry {self._path} is closed; open it again")
            with transaction(conn, begin):
                yield conn


class ReadOnlyConnection(sqlite3.Connection):
    """A connection to a registry file this process cannot write; ``reason`` says why."""

    reason = "the file is read-only"  # set per connection by connect()


def connect(path: Path) -> sqlite3.Connection:
    """Open ``path`` (creating it and its folder), set it up and check its schema; a
    file that cannot be written opens as a ``ReadOnlyConnection``."""
    if not path.exists():
        _create(path)
    elif path.is_file() and path.stat().st_size == 0:
        raise RegistryError(
            f"registry {path} is an empty (0-byte) file: a registry file is never empty, so it "
            "was truncated (a full disk, an interrupted copy?). Restore it from a backup; or, to "
            "start a new registry without history or watermarks, delete the file"
        )
    try:
        return _connect(path)
    except RegistryError as exc:
        if not _is_read_only_failure(exc):
            raise
        failure = exc
    conn = _connect_read_only(path)
    if conn is None:
        raise failure
    return conn


def _connect(path: Path) -> sqlite3.Connection:
    with sqlite_errors(path):
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) rather
        # than the sqlite3 module's implicit ones. check_same_thread=False: the
        # Registry serializes access with its own lock.
        conn = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            _set_up(conn, path)
            _ensure_schema(conn, path)
        except BaseException:
            conn.close()
            raise
    return conn


def _set_up(conn: sqlite3.Connection, path: Path) -> None:
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


def _create(path: Path) -> None:
    """Create a registry at ``path`` atomically: build it under a temporary name in the
    same folder, then hard-link it into place (which fails if another process created
    one meanwhile: then theirs is kept)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise RegistryError(
            f"registry {path} does not exist and cannot be created in {path.parent} ({exc}); "
            "check the path and its permissions"
        ) from exc
    try:
        conn = _connect(Path(tmp))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()  # the last connection's close folds the WAL into the file
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first
        except OSError:
            # No hard links here (some network filesystems): rename, unless it appeared.
            if not path.exists():
                os.replace(tmp, path)
    except OSError as exc:
        raise RegistryError(f"registry {path}: cannot create it ({exc}); check the folder's permissions") from exc
    finally:
        for leftover in (tmp, tmp + "-wal", tmp + "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(leftover)


def _is_read_only_failure(exc: RegistryError) -> bool:
    cause = exc.__cause__
    text = str(cause).lower() if isinstance(cause, sqlite3.Error) else ""
    return any(sign in text for sign in ("readonly", "read-only", "unable to open", "disk i/o"))


def _connect_read_only(path: Path) -> ReadOnlyConnection | None:
    """A read-only connection to ``path``, or None when even reading fails.

    WAL readers need the ``-shm`` file: a plain ``mode=ro`` works while it exists (a
    writer elsewhere has the file open) and sees that writer's commits; otherwise the
    folder cannot take one either, so the file is opened ``immutable`` (nothing can be
    changing a file on a read-only mount)."""
    uri = "file:" + urllib.parse.quote(str(path.absolute()))
    for options in ("mode=ro", "mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(f"{uri}?{options}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                   check_same_thread=False, factory=ReadOnlyConnection)
        except sqlite3.Error:
            continue
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error:
            conn.close()
            continue
        version = int(row[0]) if row else None
        if version != SCHEMA_VERSION:
            conn.close()
            raise RegistryError(
                f"registry {path} is read-only here and has schema version {version}, not this "
                f"program's {SCHEMA_VERSION}; open it once with write access to upgrade it"
            )
        conn.reason = "this process cannot write the file or its folder (a read-only mount, or permissions)"
        return conn
    return None


def _ensure_schema(conn: sqlite3.Connection, path: Path) -> None:
    # Inside BEGIN IMMEDIATE so two processes opening a new file at once do not both
    # create it. Statements run one by one because executescript() would COMMIT first.
    with transaction(conn):
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
