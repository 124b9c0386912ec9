"""The server's Redis round trips, on its event loop and within a deadline.

The online hot path (``POST /get-online-features``, ``/predict``) reads Redis here. A read
waiting on Redis never blocks the event loop (other requests and ``/health`` go on being
answered), and a Redis that hangs (stopped, or a network that drops packets) costs each
read ``timeout`` seconds, then a StoreUnavailableError, instead of the blocking client's
socket timeout times its retries.

Why not redis.asyncio: its connection (stream reader, locks, parser layers) and an
``asyncio.timeout`` per read cost about as much as the loopback round trip itself. Here a
connection is an ``asyncio.Protocol`` feeding hiredis's reply parser, a round trip is one
``write`` and one future, and the deadline of every read in flight is kept by one timer
per client (armed for the oldest read, re-armed when it fires), not one per read.

Connections come from a free list of the running loop's; each carries one round trip at a
time (pipelined commands, replies in order). A connection Redis closed while it sat idle
(a restart, an idle timeout) is replaced once within the deadline; any other failure, an
error reply or a missed deadline discards the connection, so no reply is ever read out of
turn. Settings come from the URL as redis-py parses it (password, database, TLS, unix socket).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

import hiredis
from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from featurestore.errors import ConfigError, StoreUnavailableError
from featurestore.online.redis_protocol import REDIS_ERRORS, plain_url, setup_commands, unavailable
from featurestore.redaction import mask_url

__all__ = ["AsyncRoundTrips"]

_AUTH_ERRORS = ("NOAUTH", "WRONGPASS", "invalid password", "invalid username-password")


class _Connection(asyncio.Protocol):
    """One connection: replies parsed by hiredis as they arrive, handed to the waiting round trip."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader(replyError=ResponseError)  # error replies come back as values
        self.waiter: asyncio.Future | None = None
        self.expected = 0
        self.replies: list = []
        self.deadline = 0.0
        self.lost = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        reader, replies = self.reader, self.replies
        reader.feed(data)
        try:
            while (reply := reader.gets()) is not False:
                replies.append(reply)
        except hiredis.ProtocolError as exc:
            return self.fail(RedisConnectionError(f"Redis sent a reply that is not RESP: {exc}"))
        waiter = self.waiter
        if waiter is None:  # a reply nobody asked for: the connection is out of step
            return self.fail(RedisConnectionError("Redis sent a reply nobody asked for"))
        if len(replies) >= self.expected:
            self.waiter, self.replies = None, []
            if not waiter.done():
                waiter.set_result(replies)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(RedisConnectionError(f"Redis closed the connection ({exc or 'end of stream'})"))
        self.waiter = None

    def send(self, payload: bytes, count: int, deadline: float) -> asyncio.Future:
        self.waiter = waiter = asyncio.get_running_loop().create_future()
        self.expected, self.deadline = count, deadline
        self.transport.write(payload)
        return waiter

    def fail(self, exc: BaseException) -> None:
        """Give up on the connection: the waiting round trip raises ``exc``."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
        self.lost = True
        self.transport.abort()


class AsyncRoundTrips:
    """Round trips on the running event loop that give up after ``timeout`` seconds."""

    def __init__(self, url: str, project: str, what: str, timeout: float, *, address: tuple[str, int] | None = None):
        try:
            options = parse_url(plain_url(url))
        except ValueError as exc:
            raise ConfigError(f"online store connection string {mask_url(url)!r} is not a Redis URL ({exc})") from None
        if address is not None:  # one node of a cluster (redis_cluster_async.py)
            options = {**options, "host": address[0], "port": address[1]}
        self._options = options
        self._setup = setup_commands(options, f"featurestore:{project}")
        self.timeout = timeout
        self._what = what
        self._idle: list[_Connection] = []
        self._busy: set[_Connection] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, commands: Sequence[bytes]) -> list:
        """Send commands (each packed in RESP) in one round trip; their replies. Raises
        StoreUnavailableError when Redis fails, answers an error or misses the deadline."""
        try:
            replies = await self.send(commands, asyncio.get_running_loop().time() + self.timeout)
        except TimeoutError:
            raise StoreUnavailableError(
                f"the {self._what} did not answer within {self.timeout:g} s (online_store.read_timeout); "
                "check that Redis is running and not overloaded") from None
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self._what) from None
        for reply in replies:
            if isinstance(reply, ResponseError):
                raise unavailable(_error(reply), self._what)
        return replies

    async def send(self, commands: Sequence[bytes], deadline: float) -> list:
        """``run`` without the error mapping: error replies in place; TimeoutError past
        ``deadline`` (the loop's clock), redis-py's or socket errors when Redis fails."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (a test's, a restarted server's): its own connections
            self._idle, self._busy, self._timer, self._loop = [], set(), None, loop
        return await self._round_trip(b"".join(commands), len(commands), deadline)

    async def _round_trip(self, payload: bytes, count: int, deadline: float) -> list:
        idle = self._idle
        while True:
            reused = bool(idle)
            conn = idle.pop() if reused else await self._connect(deadline)
            if conn.lost:
                continue
            try:
                replies = await self._await(conn, conn.send(payload, count, deadline))
            except RedisConnectionError:
                if reused:
                    continue  # Redis closed it while idle: once more on another connection
                raise
            idle.append(conn)
            return replies

    async def _await(self, conn: _Connection, waiter: asyncio.Future) -> list:
        busy = self._busy
        busy.add(conn)
        if self._timer is None:
            self._timer = self._loop.call_at(conn.deadline, self._expire)
        try:
            return await waiter
        except BaseException:  # the deadline, a lost connection, a cancelled request: replies may be unread
            conn.lost = True
            conn.transport.abort()
            raise
        finally:
            busy.discard(conn)

    def _expire(self) -> None:
        """The shared deadline timer: fail the round trips past their deadline, re-arm for the next."""
        now, self._timer = self._loop.time(), None
        nearest = None
        for conn in list(self._busy):
            if conn.deadline <= now:
                conn.fail(TimeoutError())
            elif nearest is None or conn.deadline < nearest:
                nearest = conn.deadline
        if nearest is not None:
            self._timer = self._loop.call_at(nearest, self._expire)

    async def _connect(self, deadline: float) -> _Connection:
        o, loop = self._options, self._loop
        async with asyncio.timeout_at(deadline):
            if o.get("connection_class") is UnixDomainSocketConnection:
                _, conn = await loop.create_unix_connection(_Connection, o["path"])
            else:
                tls = _tls_context(o) if o.get("connection_class") is SSLConnection else None
                _, conn = await loop.create_connection(
                    _Connection, o.get("host", "localhost"), o.get("port", 6379), ssl=tls)
        replies = await self._await(conn, conn.send(b"".join(self._setup), len(self._setup), deadline))
        for reply in replies:
            if isinstance(reply, ResponseError):
                conn.fail(RedisConnectionError("setup refused"))
                raise _error(reply)
        return conn

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.transport.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def _error(reply: ResponseError) -> ResponseError:
    """An error reply as redis-py would raise it (credentials refused: AuthenticationError)."""
    message = str(reply)
    return AuthenticationError(message) if message.startswith(_AUTH_ERRORS) else reply


def _tls_context(options: dict) -> ssl.SSLContext:
    """TLS as the URL asks (``rediss://...?ssl_cert_reqs=none&ssl_ca_certs=...``)."""
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    if options.get("ssl_certfile"):
        context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
    if str(options.get("ssl_cert_reqs", "required")).lower() in ("none", str(ssl.CERT_NONE.value)):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
