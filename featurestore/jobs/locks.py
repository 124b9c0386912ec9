"""One run of a view at a time, across processes: named locks that expire.

The protocol, kept by both backends:
- ``acquire`` takes a lock if it is free, expired, or already the caller's, for ``ttl``
  seconds; otherwise it reports the holder. Nothing waits inside a backend.
- A holder renews its lock (a ``Lease`` does it every ``ttl / 3`` seconds from a
  thread), so a long job keeps it while a crashed holder's lock lapses within ``ttl``.
- ``renew`` and ``release`` act only if the caller still holds the lock, so a holder
  that stalled past its expiry cannot extend or free a lock someone else took since.

Backends: ``RedisLocks`` (``SET NX PX`` plus compare-and-act scripts; expiry by the Redis
server's clock) when the online store is Redis, and ``RegistryLocks`` (a row in the
registry's ``locks`` table; expiry by the callers' clocks) otherwise.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Protocol

from registry import Registry
from registry.jobs import LockInfo

from featurestore.catalog import Catalog
from featurestore.errors import JobError, StoreUnavailableError
from featurestore.online.redis import mask_url

if TYPE_CHECKING:
    from featurestore.jobs.settings import JobSettings
    from featurestore.store import FeatureStore

__all__ = [
    "Lease",
    "LockBackend",
    "LockBusyError",
    "LockInfo",
    "RedisLocks",
    "RegistryLocks",
    "acquire",
    "lock_backend",
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


# KEYS[1] = lock key, ARGV[1] = owner, ARGV[2] = ttl in ms
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


class RedisLocks:
    """Locks as Redis keys ``{project}:lock:{name}`` holding the owner; Redis expires them."""

    def __init__(self, url: str, project: str, client=None):
        import redis

        self.url, self.project = mask_url(url), project  # the password never reaches a message
        self._redis = redis
        self.client = client or redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)

    def _key(self, name: str) -> str:
        return f"{self.project}:lock:{name}"

    def acquire(self, name: str, owner: str, ttl: float) -> LockInfo:
        key, ms = self._key(name), _ms(ttl)
        with self._errors():
            if self.client.set(key, owner, nx=True, px=ms) or self._renew(keys=[key], args=[owner, ms]):
                return LockInfo(name, owner, time.time() + ttl)
            holder = self.holder(name)
            if holder is None:  # expired between the two calls: try once more
                if self.client.set(key, owner, nx=True, px=ms):
                    return LockInfo(name, owner, time.time() + ttl)
                holder = self.holder(name)
            return holder or LockInfo(name, "unknown", time.time())

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        with self._errors():
            return bool(self._renew(keys=[self._key(name)], args=[owner, _ms(ttl)]))

    def release(self, name: str, owner: str) -> bool:
        with self._errors():
            return bool(self._release(keys=[self._key(name)], args=[owner]))

    def holder(self, name: str) -> LockInfo | None:
        with self._errors():
            pipe = self.client.pipeline()
            pipe.get(self._key(name))
            pipe.pttl(self._key(name))
            owner, pttl = pipe.execute()
        if owner is None or pttl is None or pttl < 0:
            return None
        return LockInfo(name, owner.decode() if isinstance(owner, bytes) else owner, time.time() + pttl / 1000)

    def close(self) -> None:
        self.client.close()

    def _errors(self):
        return _redis_errors(self._redis, self.url)

    def __repr__(self) -> str:
        return f"RedisLocks({self.url!r})"


class _redis_errors:
    def __init__(self, redis, url: str):
        self.redis, self.url = redis, url

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        if exc is not None and isinstance(exc, self.redis.RedisError):
            raise StoreUnavailableError(
                f"cannot reach Redis at {self.url} (the online store, which also holds the job locks): "
                f"{str(exc).rstrip('.')}; check that Redis is running and reachable there "
                "(online_store.connection_string in featurestore.yaml, or FEATURESTORE_REDIS_URL)"
            ) from None
        return False


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))


def lock_backend(store: FeatureStore, settings: JobSettings | None = None) -> LockBackend:
    """Redis when the online store is Redis (or ``scheduler.lock: redis``), else the registry."""
    from featurestore.jobs.settings import JobSettings

    settings = settings or JobSettings.from_config(store.config)
    online = store.config.online_store
    kind = settings.lock if settings.lock != "auto" else ("redis" if online.type == "redis" else "registry")
    if kind == "redis":
        return RedisLocks(online.connection_string or "redis://localhost:6379/0", store.project)
    return RegistryLocks(store.registry, store.project)


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
