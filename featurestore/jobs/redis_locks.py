"""Job locks in Redis: keys ``{project}:lock:{name}`` holding the owner, expired by Redis.

A module of its own so that importing ``featurestore.jobs`` does not load redis;
``featurestore/backends.py`` builds it when the online store is Redis.
"""

from __future__ import annotations

import time

import redis

from registry.jobs import LockInfo

from featurestore.online.redis_protocol import Scripts, connect, redis_errors
from featurestore.redaction import mask_url

__all__ = ["RedisLocks"]

# KEYS[1] = lock key, ARGV[1] = owner, ARGV[2] = ttl in ms: act only for the holder.
_RENEW = b"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = b"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# KEYS[1] = lock key, ARGV[1] = dead holder, ARGV[2] = new owner, ARGV[3] = ttl in ms: a
# compare-and-swap, so of several processes taking over one dead holder's lock one wins.
_TAKE_OVER = (b"if redis.call('get', KEYS[1]) == ARGV[1] then "
              b"redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0")
_SCRIPTS = Scripts(_RENEW, _RELEASE, _TAKE_OVER)
_RENEW_SCRIPT, _RELEASE_SCRIPT, _TAKE_OVER_SCRIPT = 0, 1, 2


class RedisLocks:
    """``LockBackend`` in Redis. ``client``: a redis-py client to share (its owner closes
    it); without one the locks make and close their own."""

    def __init__(self, url: str, project: str, client: redis.Redis | None = None):
        self.url, self.project = mask_url(url), project  # the password never reaches a message
        self._owns_client = client is None
        self.client = client or connect(url, project, socket_timeout=10)
        self._what = f"Redis at {self.url} (the online store, which also holds the job locks)"

    def _key(self, name: str) -> str:
        return f"{self.project}:lock:{name}"

    def acquire(self, name: str, owner: str, ttl: float) -> LockInfo:
        key, ms = self._key(name), _ms(ttl)
        with redis_errors(self._what):
            if self.client.set(key, owner, nx=True, px=ms) or _SCRIPTS.call(self.client, _RENEW_SCRIPT, [key],
                                                                             [owner, ms]):
                return LockInfo(name, owner, time.time() + ttl)
            holder = self.holder(name)
            if holder is None:  # expired between the two calls: try once more
                if self.client.set(key, owner, nx=True, px=ms):
                    return LockInfo(name, owner, time.time() + ttl)
                holder = self.holder(name)
            return holder or LockInfo(name, "unknown", time.time())

    def renew(self, name: str, owner: str, ttl: float) -> bool:
        with redis_errors(self._what):
            return bool(_SCRIPTS.call(self.client, _RENEW_SCRIPT, [self._key(name)], [owner, _ms(ttl)]))

    def release(self, name: str, owner: str) -> bool:
        with redis_errors(self._what):
            return bool(_SCRIPTS.call(self.client, _RELEASE_SCRIPT, [self._key(name)], [owner]))

    def take_over(self, name: str, holder: str, owner: str, ttl: float) -> bool:
        with redis_errors(self._what):
            return bool(_SCRIPTS.call(self.client, _TAKE_OVER_SCRIPT, [self._key(name)], [holder, owner, _ms(ttl)]))

    def holder(self, name: str) -> LockInfo | None:
        with redis_errors(self._what):
            pipe = self.client.pipeline()
            pipe.get(self._key(name))
            pipe.pttl(self._key(name))
            owner, pttl = pipe.execute()
        if owner is None or pttl is None or pttl < 0:
            return None
        return LockInfo(name, owner.decode() if isinstance(owner, bytes) else owner, time.time() + pttl / 1000)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def __repr__(self) -> str:
        return f"RedisLocks({self.url!r})"


def _ms(ttl: float) -> int:
    return max(1, int(ttl * 1000))
