"""Everything the Redis backends share: RESP packing, Lua scripts, errors, URLs, clients.

The online store, the aggregation state, the job locks and the stream worker all talk to
Redis; this module is the one place that
- packs commands in RESP (``pack``: faster than redis-py's for many arguments),
- loads Lua scripts and reloads them when Redis forgot them (``Scripts``),
- turns redis-py and socket errors into ``StoreUnavailableError`` (``unavailable``),
- hides passwords in URLs (``mask_url``, from ``featurestore/redaction.py``),
- builds the redis-py client a process shares between those backends (``connect``),
- says what a new connection sends first (``setup_commands``: AUTH, SELECT, CLIENT SETNAME),
- tells a Redis Cluster URL (``redis+cluster://``, ``rediss+cluster://``) from a single
  server's (``is_cluster_url``, ``plain_url``).

The server's round trips on its event loop are ``redis_async.AsyncRoundTrips``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import AuthenticationError, NoScriptError, RedisError
from redis.retry import Retry

from featurestore.errors import ConfigError, StoreUnavailableError
from featurestore.redaction import mask_url

__all__ = ["REDIS_ERRORS", "Scripts", "cluster_url", "connect", "is_cluster_url", "pack", "pack_args", "plain_url",
           "redis_errors", "setup_commands", "unavailable"]

_HINT = "online_store.connection_string in featurestore.yaml (or FEATURESTORE_REDIS_URL)"


def pack(args: Sequence[bytes]) -> bytes:
    """One command in the Redis protocol (RESP), from bytes arguments."""
    return b"".join([b"*%d\r\n" % len(args), *[b"$%d\r\n%b\r\n" % (len(a), a) for a in args]])


def pack_args(args: Sequence[bytes | str | int]) -> bytes:
    """``pack`` for arguments that may also be str (UTF-8) or int (decimal)."""
    return pack([a.encode() if isinstance(a, str) else b"%d" % a if isinstance(a, int) else a for a in args])


def setup_commands(options: dict, name: str) -> list[bytes]:
    """What a hand-made connection sends first, packed: AUTH and SELECT as ``options``
    (redis-py's ``parse_url`` of the URL) ask, then CLIENT SETNAME ``name``."""
    setup = []
    if options.get("password") is not None:
        setup.append(pack_args(["AUTH", *([options["username"]] if options.get("username") else []),
                                options["password"]]))
    if options.get("db"):
        setup.append(pack_args(["SELECT", options["db"]]))
    setup.append(pack_args(["CLIENT", "SETNAME", name]))
    return setup


_CLUSTER = "+cluster://"


def is_cluster_url(url: str) -> bool:
    """Whether ``url`` names a Redis Cluster (``redis+cluster://host:port``: any node of it)."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() in ("redis+cluster", "rediss+cluster")


def plain_url(url: str) -> str:
    """``url`` with ``+cluster`` dropped from its scheme (what redis-py parses)."""
    if not is_cluster_url(url):
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme[: -len('+cluster')]}://{rest}"


def cluster_url(url: str) -> str:
    """The ``redis+cluster://`` form of a ``redis://`` or ``rediss://`` URL (``cluster: true``)."""
    if is_cluster_url(url):
        return url
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("redis", "rediss"):
        raise ConfigError(f"a Redis Cluster is reached over TCP: {mask_url(url)!r} is not a redis:// or rediss:// "
                          "URL; use redis+cluster://host:port (any node of the cluster)")
    return f"{scheme}+cluster://{rest}"


def connect(url: str, project: str, *, socket_timeout: float = 5.0, retries: int = 3) -> redis.Redis:
    """The redis-py client (and pool) of one process for ``url``; nothing connects yet.
    For a cluster URL, a ``redis.RedisCluster`` (locks, scans and other paths off the hot
    loop; the online store routes its own round trips, ``redis_cluster.py``).

    A lost connection is retried ``retries`` times with backoff (every command the
    backends send is idempotent)."""
    try:
        if is_cluster_url(url):
            from redis.cluster import RedisCluster

            return RedisCluster.from_url(
                plain_url(url),
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), max(3, retries)),
                client_name=f"featurestore:{project}",
            )
        return redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.5), max(0, retries)),
            client_name=f"featurestore:{project}",
        )
    except ValueError as exc:
        raise ConfigError(
            f"online store connection string {mask_url(url)!r} is not a Redis URL ({exc}); "
            "use redis://[:password@]host:port/db, rediss://..., unix:///path.sock or "
            "redis+cluster://host:port"
        ) from None


#: What a failing Redis raises (redis-py's errors; socket errors from a raw connection).
REDIS_ERRORS = (RedisError, OSError)


def unavailable(exc: BaseException, what: str) -> StoreUnavailableError:
    """The StoreUnavailableError for a failure of Redis (``what``: "Redis online store at
    redis://..."), naming it and what to check."""
    if isinstance(exc, AuthenticationError):
        return StoreUnavailableError(f"{what} refused the credentials ({exc}); check the user and password in "
                                     f"{_HINT}")
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError, OSError)):
        return StoreUnavailableError(f"cannot reach the {what} ({exc}); check that Redis is running and reachable "
                                     f"there, and {_HINT}")
    return StoreUnavailableError(f"{what} failed: {exc}")


@contextmanager
def redis_errors(what: str) -> Iterator[None]:
    """``unavailable`` as a block (for paths where a context manager's cost does not matter)."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise unavailable(exc, what) from None


class Scripts:
    """Lua scripts run by SHA1 (``EVALSHA``), loaded again when Redis has forgotten them
    (a restart, ``SCRIPT FLUSH``)."""

    def __init__(self, *bodies: bytes):
        self.bodies = bodies
        self.shas = tuple(hashlib.sha1(b).hexdigest().encode() for b in bodies)

    def load_commands(self) -> list[bytes]:
        """The packed ``SCRIPT LOAD`` of each script."""
        return [pack([b"SCRIPT", b"LOAD", body]) for body in self.bodies]

    def run(self, send: Callable[[Sequence[bytes]], list], commands: Sequence[bytes]) -> list:
        """``send(commands)`` (one round trip, replies returned); on ``NoScriptError``
        load the scripts and send once more."""
        try:
            return send(commands)
        except NoScriptError:
            send(self.load_commands())
            return send(commands)

    def call(self, client: redis.Redis, index: int, keys: Sequence, args: Sequence):
        """Script ``index`` through a redis-py client (for paths off the hot loop)."""
        try:
            return client.evalsha(self.shas[index], len(keys), *keys, *args)
        except NoScriptError:
            client.script_load(self.bodies[index])
            return client.evalsha(self.shas[index], len(keys), *keys, *args)
