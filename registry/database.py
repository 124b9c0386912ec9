"""The seam under the registry: the database its tables live in.

``Registry``, ``Transaction`` and ``JobLog`` write their SQL once, with ``?`` marks and
syntax both engines share (``ON CONFLICT ... DO UPDATE``, ``WITH RECURSIVE``,
``RETURNING``), and run it on a ``Database``:

- ``SqliteDatabase`` (``registry.sqlite``): one file in WAL mode, the default;
- ``PostgresDatabase`` (``registry.postgres``): a PostgreSQL database shared by several
  API pods, schedulers and CLIs (``registry: postgresql://...``).

What every database guarantees (the registry's contracts rest on it):

- ``read()`` runs the statements of one call in one snapshot, never blocked by a writer;
- ``write()`` runs them in one transaction that holds the registry's single write lock
  from its first statement: writers from any number of processes run one after the
  other, what a write reads cannot change before it commits, and an exception rolls
  everything back;
- the driver's errors leave as ``RegistryError`` naming the database and what to check.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Connection", "Cursor", "Database"]


class Cursor(Protocol):
    """What a statement gives back: rows to fetch or iterate, and ``rowcount``."""

    rowcount: int

    def fetchone(self) -> Sequence[Any] | None: ...

    def fetchall(self) -> list[Sequence[Any]]: ...

    def __iter__(self) -> Iterator[Sequence[Any]]: ...


class Connection(Protocol):
    """A connection inside an open transaction; SQL takes ``?`` marks."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any: ...


class Database(Protocol):
    """Where the registry's tables live (see the module docstring)."""

    @property
    def location(self) -> str:
        """What messages name: the file, or the URL without its password."""

    @property
    def path(self) -> Path | None:
        """The SQLite file; None for a database on a server."""

    @property
    def read_only(self) -> str | None:
        """Why writes are refused (this process cannot write the file), or None."""

    def read(self) -> AbstractContextManager[Connection]: ...

    def write(self) -> AbstractContextManager[Connection]: ...

    def table_names(self, conn: Connection) -> set[str]:
        """The registry's tables that exist (a registry made before some did lacks them)."""

    def close(self) -> None: ...
