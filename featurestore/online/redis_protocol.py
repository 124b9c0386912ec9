"""Everything the Redis backends share: RESP packing, Lua scripts, errors, URLs, clients.

The online store, the aggregation state, the job locks and the stream worker all talk to
Redis; this module is the one place that
- packs commands in RESP (``pack``: faster than redis-py's for many arguments),
- loads Lua scripts and reloads them when Redis forgot them (``Scripts``),
- turns redis-py and socket errors into ``StoreUnavailableError`` (``unavailable``),
- hides passwords in URLs (``mask_url``, from ``featurestore/redaction.py``),
- builds the redis-py client a process shares between those backends (``connect``),
- makes the server's round trips on its event loop, within a deadline (``AsyncRoundTrips``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import redis
import redis.asyncio
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import AuthenticationError, NoScriptError, RedisError
from redis.retry import Retry

from featurestore.errors import ConfigError, StoreUnavailableError
from featurestore.redaction import mask_url

__all__ = ["REDIS_ERRORS", "AsyncRoundTrips", "Scripts", "connect", "pack", "pack_args", "redis_errors", "unavailable"]

_HINT = "online_store.connection_string in featurestore.yaml (or FEATURESTORE_REDIS_URL)"


def pack(args: Sequence[bytes]) -> bytes:
    """One command in the Redis protocol (RESP), from bytes arguments."""
    return b"".join([b"*%d\r\n" % len(args), *[b"$%d\r\n%b\r\n" % (len(a), a) for a in args]])


def pack_args(args: Sequence[bytes | str | int]) -> bytes:
    """``pack`` for arguments that may also be str (UTF-8) or int (decimal)."""
    return pack([a.encode() if isinstance(a, str) else b"%d" % a if isinstance(a, int) else a for a in args])


def connect(url: str, project: str, *, socket_timeout: float = 5.0, retries: int = 3) -> redis.Redis:
    """The redis-py client (and pool) of one process for ``url``; nothing connects yet.

    A lost connection is retried ``retries`` times with backoff (every command the
    backends send is idempotent)."""
    try:
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
            "use redis://[:password@]host:port/db, rediss://... or unix:///path.sock"
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


class AsyncRoundTrips:
    """Round trips on the running event loop that give up after ``timeout`` seconds.

    The server's online reads go through here: a read waiting on Redis never blocks the
    event loop (other requests and ``/health`` go on being answered), and a Redis that
    hangs (stopped, or a network that drops packets) costs each read ``timeout`` seconds,
    then a StoreUnavailableError, instead of the blocking client's socket timeout times
    its retries. Connections are redis-py's asyncio ones (AUTH, TLS, unix sockets, the
    database from the URL), kept in a free list of this loop's: redis-py's asyncio pool
    costs more per request than the round trip. No retries within the deadline except
    once on an idle connection Redis has closed meanwhile (a restart, an idle timeout).
    """

    def __init__(self, url: str, project: str, what: str, timeout: float):
        try:
            pool = redis.asyncio.ConnectionPool.from_url(
                url, socket_connect_timeout=timeout, client_name=f"featurestore:{project}")
        except ValueError as exc:
            raise ConfigError(f"online store connection string {mask_url(url)!r} is not a Redis URL ({exc})") from None
        self._connection_class, self._kwargs = pool.connection_class, pool.connection_kwargs
        self.timeout = timeout
        self._what = what
        self._idle: list = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, commands: Sequence[bytes]) -> list:
        """Send commands (each packed in RESP) in one round trip; their replies. Raises
        StoreUnavailableError when Redis fails or does not answer within the deadline."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a test's, a restarted server's): its own connections
            self._idle, self._loop = [], loop
        try:
            async with asyncio.timeout(self.timeout):
                return await self._round_trip(b"".join(commands), len(commands))
        except TimeoutError:
            raise StoreUnavailableError(
                f"the {self._what} did not answer within {self.timeout:g} s (online_store.read_timeout); "
                "check that Redis is running and not overloaded") from None
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self._what) from None

    async def _round_trip(self, payload: bytes, count: int) -> list:
        while True:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else self._connection_class(**self._kwargs)
            try:
                if not reused:
                    await conn.connect()
                await conn.send_packed_command([payload], check_health=False)
                replies = [await conn.read_response() for _ in range(count)]
            except (redis.ConnectionError, OSError):
                await conn.disconnect(nowait=True)
                if reused:
                    continue  # Redis closed it while idle: once more on a new connection
                raise
            except BaseException:  # cancelled by the deadline, or an error reply: replies may be unread
                await conn.disconnect(nowait=True)
                raise
            self._idle.append(conn)
            return replies

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)
