"""``Catalog``: the feature store's one door to the registry, where its errors are mapped.

The registry library raises its own ``registry.RegistryError`` (a corrupt or locked
file, a closed connection) and ``registry.ConflictError``. Every reader and writer in
featurestore, monitoring and serving goes through a ``Catalog`` (``store.registry``), so
those become ``featurestore.errors.RegistryError`` / ``ConflictError`` here, once: a 503
with a JSON body over HTTP, one ``error: ...`` line in the CLI, never a traceback.

The methods are the registry's own (``registry.store.Registry``, and ``.jobs`` for
``registry.jobs.JobLog``), with the same arguments and answers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import registry as _registry
from registry import ApplyResult, Change, Edge, ObjectSpec, Registry, StoredObject
from registry.jobs import JobLog, JobRecord, JobSummary, LockInfo

from featurestore.errors import ConflictError, InUseError, RegistryError

__all__ = ["Catalog", "JobCatalog", "registry_errors"]


@contextlib.contextmanager
def registry_errors() -> Iterator[None]:
    """Raise the registry library's errors as the feature store's (same message)."""
    try:
        yield
    except _registry.InUseError as exc:
        raise InUseError(str(exc)) from exc
    except _registry.ConflictError as exc:
        raise ConflictError(str(exc)) from exc
    except _registry.RegistryError as exc:
        raise RegistryError(str(exc)) from exc


class Catalog:
    """A ``registry.Registry`` whose every call raises only FeatureStoreErrors."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._jobs = JobCatalog(registry.jobs)

    @classmethod
    def open(cls, location: str | os.PathLike[str]) -> Catalog:
        """Open (creating if needed) the registry at a path, a ``sqlite:///`` or a
        ``postgresql://`` URL."""
        with registry_errors():
            return cls(Registry.open(location))

    @classmethod
    def wrap(cls, registry: Registry | Catalog) -> Catalog:
        """``registry`` as a Catalog (itself when it already is one)."""
        return registry if isinstance(registry, Catalog) else cls(registry)

    @property
    def path(self) -> Path | None:
        """The SQLite file; None for a PostgreSQL registry."""
        return self._registry.path

    @property
    def location(self) -> str:
        """The file, or the database URL without its password."""
        return self._registry.location

    @property
    def jobs(self) -> JobCatalog:
        """Job records and locks kept in the same database."""
        return self._jobs

    def __repr__(self) -> str:
        return f"Catalog({self._registry.location!r})"

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with registry_errors():
            self._registry.close()

    # -- reads ----------------------------------------------------------------------

    def revision(self, project: str, kinds: str | Sequence[str] | None = None) -> int:
        with registry_errors():
            return self._registry.revision(project, kinds)

    def get(self, project: str, kind: str, name: str, version: int | None = None) -> StoredObject | None:
        with registry_errors():
            return self._registry.get(project, kind, name, version)

    def list(self, project: str, kind: str | None = None) -> list[StoredObject]:
        with registry_errors():
            return self._registry.list(project, kind)

    def history(self, project: str, kind: str, name: str) -> list[StoredObject]:
        with registry_errors():
            return self._registry.history(project, kind, name)

    def lineage(self, project: str, kind: str, name: str, direction: str = "both") -> list[Edge]:
        with registry_errors():
            return self._registry.lineage(project, kind, name, direction)

    def plan(
        self, project: str, objects: Sequence[ObjectSpec], kinds: Sequence[str], *, pinned_by: Sequence[str] = ()
    ) -> list[Change]:
        with registry_errors():
            return self._registry.plan(project, objects, kinds, pinned_by=pinned_by)

    def get_state(self, project: str, key: str) -> Any | None:
        with registry_errors():
            return self._registry.get_state(project, key)

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
        with registry_errors():
            return self._registry.apply(project, objects, kinds, expected_revision, pinned_by=pinned_by)

    def put(self, project: str, obj: ObjectSpec) -> StoredObject:
        with registry_errors():
            return self._registry.put(project, obj)

    def put_numbered(
        self, project: str, kind: str, prefix: str, spec: dict[str, Any], depends_on: Sequence[tuple[str, str]] = ()
    ) -> StoredObject:
        with registry_errors():
            return self._registry.put_numbered(project, kind, prefix, spec, depends_on)

    def remove(
        self, project: str, kind: str, name: str, spec: dict[str, Any] | None = None, pinned_by: Sequence[str] = ()
    ) -> StoredObject:
        with registry_errors():
            return self._registry.remove(project, kind, name, spec, pinned_by)

    @contextlib.contextmanager
    def transaction(self, project: str) -> Iterator[_registry.Transaction]:
        """Reads and writes that commit together (``registry.Transaction``); errors raised
        inside the block by the registry are mapped too."""
        with registry_errors(), self._registry.transaction(project) as tx:
            yield tx

    def set_state(self, project: str, key: str, value: Any) -> None:
        with registry_errors():
            self._registry.set_state(project, key, value)


class JobCatalog:
    """A ``registry.jobs.JobLog`` whose every call raises only FeatureStoreErrors."""

    def __init__(self, jobs: JobLog) -> None:
        self._jobs = jobs

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
        with registry_errors():
            return self._jobs.start(project, target, trigger, window_start, window_end, owner,
                                    batch=batch, attempt=attempt)

    def finish(
        self, project: str, job_id: int, status: str, *, rows: int | None = None, error: str | None = None
    ) -> JobRecord:
        with registry_errors():
            return self._jobs.finish(project, job_id, status, rows=rows, error=error)

    def interrupt_running(self, project: str, target: str, error: str) -> list[JobRecord]:
        with registry_errors():
            return self._jobs.interrupt_running(project, target, error)

    def get(self, project: str, job_id: int) -> JobRecord | None:
        with registry_errors():
            return self._jobs.get(project, job_id)

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
        with registry_errors():
            return self._jobs.list(project, target=target, statuses=statuses, trigger=trigger, batch=batch,
                                   limit=limit)

    def windows(self, project: str, target: str, status: str = "succeeded") -> list[tuple[datetime | None, datetime]]:
        with registry_errors():
            return self._jobs.windows(project, target, status)

    def summary(self, project: str, bounds: Sequence[float] = ()) -> list[JobSummary]:
        with registry_errors():
            return self._jobs.summary(project, bounds)

    def acquire_lock(self, project: str, name: str, owner: str, ttl: float, now: float) -> LockInfo:
        with registry_errors():
            return self._jobs.acquire_lock(project, name, owner, ttl, now)

    def take_over_lock(self, project: str, name: str, holder: str, owner: str, ttl: float, now: float) -> bool:
        with registry_errors():
            return self._jobs.take_over_lock(project, name, holder, owner, ttl, now)

    def renew_lock(self, project: str, name: str, owner: str, ttl: float, now: float) -> bool:
        with registry_errors():
            return self._jobs.renew_lock(project, name, owner, ttl, now)

    def release_lock(self, project: str, name: str, owner: str) -> bool:
        with registry_errors():
            return self._jobs.release_lock(project, name, owner)

    def get_lock(self, project: str, name: str, now: float) -> LockInfo | None:
        with registry_errors():
            return self._jobs.get_lock(project, name, now)
