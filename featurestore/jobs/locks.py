"""One run of a view at a time, across processes: named locks that expire.

The protocol, kept by both backends:
- ``acquire`` takes a lock if it is free, expired, or already the caller's, for ``ttl``
  seconds; otherwise it reports the holder. Nothing waits inside a backend.
- A holder renews its lock (a ``Lease`` does it every ``ttl / 3`` seconds from a
  thread), so a long job keeps it while a crashed holder's lock lapses within ``ttl``.
- ``renew`` and ``release`` act only if the caller still holds the lock, so a holder
  that stalled past its expiry cannot extend or free a lock someone else took since.
- A holder known to be dead (its owner names this host and a pid that no longer exists:
  it crashed or was killed) does not keep its lock until the ttl: ``acquire`` takes the
  lock over at once with ``take_over``, a compare-and-swap on that owner, so of several
  processes noticing the same death only one wins. A holder on another host is never
  judged dead (its pid means nothing here); its lock lapses with the ttl. Hostnames must
  therefore be unique among the processes sharing a registry or Redis (containers get
  their own by default).

Backends: ``RedisLocks`` (``redis_locks.py``: ``SET NX PX`` plus compare-and-act scripts;
expiry by the Redis server's clock) when the online store is Redis, and ``RegistryLocks``
(a row in the registry's ``locks`` table; expiry by the callers' clocks) otherwise.
``featurestore/backends.py`` picks one.
"""

from __future__ import annotations

import logging
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
    "describe_owner",
    "holder_is_dead",
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

    def take_over(self, name: str, holder: str, owner: str, ttl: float) -> bool:
        """Give ``name`` to ``owner`` for ``ttl`` if ``holder`` still holds it; else False."""

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
            "wait for that run to finish and retry. (A holder that died on this host is taken over at once; "
            "one on another host keeps the lock until it expires)"
        )


log = logging.getLogger("featurestore.jobs")


def owner_id(label: str) -> str:
    """A lock owner naming what and where: ``scheduler@host:pid:token``."""
    return f"{label}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def describe_owner(owner: str) -> str:
    label, _, where = owner.partition("@")
    host, _, rest = where.partition(":")
    pid = rest.split(":")[0]
    return f"{label} on {host} (pid {pid})" if pid else owner


def holder_is_dead(owner: str) -> bool:
    """Whether ``owner`` (``label@host:pid:token``) names a process of this host that no
    longer exists. False whenever that cannot be known: another host, no pid, a pid that
    exists (even if reused by another program: the lock then lapses with its ttl)."""
    label, _, where = owner.partition("@")
    host, _, rest = where.partition(":")
    pid = rest.split(":")[0]
    if not label or host != socket.gethostname() or not pid.isdigit() or int(pid) <= 0:
        return False
    try:
        os.kill(int(pid), 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # it exists (another user's), or the check is not possible here
    return False


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

    def take_over(self, name: str, holder: str, owner: str, ttl: float) -> bool:
        return self.registry.jobs.take_over_lock(self.project, name, holder, owner, ttl, self.clock())

    def holder(self, name: str) -> LockInfo | None:
        return self.registry.jobs.get_lock(self.project, name, self.clock())

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"RegistryLocks({self.registry.location!r})"


class Lease:
    """A held lock, renewed from a daemon thread until released.

    ``lost`` turns true when a renewal finds the lock gone (the holder stalled past its
    expiry and another process took it); the work under the lease should then stop.
    ``taken_from`` is the dead holder whose lock this lease took over, if any.
    """

    def __init__(self, backend: LockBackend, name: str, owner: str, ttl: float, *, renew: bool = True,
                 taken_from: str | None = None):
        self.backend, self.name, self.owner, self.ttl = backend, name, owner, ttl
        self.taken_from = taken_from
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
    """Take ``name`` (waiting up to ``wait`` seconds for it), or raise LockBusyError.

    A lock whose holder is known to be dead (``holder_is_dead``) is taken over at once."""
    deadline = time.monotonic() + wait
    while True:
        holder = backend.acquire(name, owner, ttl)
        if holder.owner == owner:
            return Lease(backend, name, owner, ttl, renew=renew)
        if holder_is_dead(holder.owner) and backend.take_over(name, holder.owner, owner, ttl):
            log.warning("took over lock %r from %s, which died while holding it", name,
                        describe_owner(holder.owner))
            return Lease(backend, name, owner, ttl, renew=renew, taken_from=holder.owner)
        if time.monotonic() >= deadline:
            raise LockBusyError(what or f"lock {name!r}", holder)
        sleep(min(poll, max(deadline - time.monotonic(), 0.01)))
