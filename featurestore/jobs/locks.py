"""One run of a view at a time, across processes: named locks that expire.

The protocol, kept by both backends:
- ``acquire`` takes a lock if it is free, expired, or already the caller's, for ``ttl``
  seconds; otherwise it reports the holder. Nothing waits inside a backend.
- A holder renews its lock (a ``Lease`` does it every ``ttl / 3`` seconds from a
  thread), so a long job keeps it while a crashed holder's lock lapses within ``ttl``.
- ``renew`` and ``release`` act only if the caller still holds the lock, so a holder
  that stalled past its expiry cannot extend or free a lock someone else took since.

Backends: ``RedisLocks`` (``redis_locks.py``: ``SET NX PX`` plus compare-and-act scripts;
expiry by the Redis server's clock) when the online store is Redis, and ``RegistryLocks``
(a row in the registry's ``locks`` table; expiry by the callers' clocks) otherwise.
``featurestore/backends.py`` picks one.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Protocol

from registry import Registry
from registry.jobs import LockInfo

from featurestore.catalog import Catalog
from featurestore.errors import JobError

__all__ = [
    "Lease",
    "LockBackend",
    "LockBusyError",
    "LockInfo",
    "RegistryLocks",
    "acquire",
    "owner_id",
    "view_lock",
]


class LockBackend(Protocol):
    def acquire(self, name: str, owner: str, ttl: float) -> LockInfo:
        """Take ``name`` if free, expired or ``owner``'s; return the holder afterwards."""

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        """Extend ``owner``'s hold by ``ttl`` from now; False if it lost the lock."""

    def release(self, name: str, owner: str) -> bool:
        """Free ``name`` if ``owner`` holds it."""

    def holder(self, name: str) -> LockInfo | None:
        """The live holder, or None."""

    def close(self) -> None: ...


class LockBusyError(JobError):
    """The lock is held by another live process."""

    def __init__(self, what: str, holder: LockInfo):
        self.holder = holder
        until = datetime.fromtimestamp(holder.expires_at, timezone.utc).strftime("%H:%M:%S UTC")
        super().__init__(
            f"{what} is being run by {describe_owner(holder.owner)} (its lock lasts until {until} unless renewed); "
            "wait for that run to finish and retry. If that process crashed, its lock expires on its own"
        )


def owner_id(label: str) -> str:
    """A lock owner naming what and where: ``scheduler@host:pid:token``."""
    return f"{label}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def describe_owner(owner: str) -> str:
    label, _, where = owner.partition("@")
    host, _, rest = where.partition(":")
    pid = rest.split(":")[0]
    return f"{label} on {host} (pid {pid})" if pid else owner


def view_lock(view: str) -> str:
    """The lock every run of a view takes: scheduled, backfill and manual alike."""
    return f"materialize:{view}"


class RegistryLocks:
    """Locks as rows of the registry's ``locks`` table; ``clock`` decides expiry."""

    def __init__(self, registry: Catalog | Registry, project: str, clock: Callable[[], float] = time.time):
        self.registry, self.project, self.clock = Catalog.wrap(registry), project, clock

    def acquire(self, name: str, owner: str, ttl: float) -> LockInfo:
        return self.registry.jobs.acquire_lock(self.project, name, owner, ttl, self.clock())

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        return self.registry.jobs.renew_lock(self.project, name, owner, ttl, self.clock())

    def release(self, name: str, owner: str) -> bool:
        return self.registry.jobs.release_lock(self.project, name, owner)

    def holder(self, name: str) -> LockInfo | None:
        return self.registry.jobs.get_lock(self.project, name, self.clock())

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"RegistryLocks({str(self.registry.path)!r})"


class Lease:
    """A held lock, renewed from a daemon thread until released.

    ``lost`` turns true when a renewal finds the lock gone (the holder stalled past its
    expiry and another process took it); the work under the lease should then stop.
    """

    def __init__(self, backend: LockBackend, name: str, owner: str, ttl: float, *, renew: bool = True):
        self.backend, self.name, self.owner, self.ttl = backend, name, owner, ttl
        self.lost = False
        self._done = threading.Event()
        self._thread = None
        if renew:
            self._thread = threading.Thread(target=self._renew, name=f"lease {name}", daemon=True)
            self._thread.start()

    def _renew(self) -> None:
        while not self._done.wait(self.ttl / 3):
            try:
                if not self.backend.renew(self.name, self.owner, self.ttl):
                    self.lost = True
                    return
            except Exception:
                # A blip (Redis restart, a busy registry) is retried at the next beat;
                # if it lasts past the ttl, the lock lapses and the next renew says so.
                continue

    def release(self) -> None:
        if self._done.is_set():
            return
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if not self.lost:
            self.backend.release(self.name, self.owner)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease({self.name!r}, owner={self.owner!r})"


def acquire(
    backend: LockBackend,
    name: str,
    owner: str,
    ttl: float,
    *,
    wait: float = 0.0,
    what: str | None = None,
    poll: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    renew: bool = True,
) -> Lease:
    """Take ``name`` (waiting up to ``wait`` seconds for it), or raise LockBusyError."""
    deadline = time.monotonic() + wait
    while True:
        holder = backend.acquire(name, owner, ttl)
        if holder.owner == owner:
            return Lease(backend, name, owner, ttl, renew=renew)
        if time.monotonic() >= deadline:
            raise LockBusyError(what or f"lock {name!r}", holder)
        sleep(min(poll, max(deadline - time.monotonic(), 0.01)))
