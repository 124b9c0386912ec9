"""A small Redis connection for the stream worker's hot path.

Without hiredis, redis-py parses replies in Python at about 55,000 stream entries a
second: on its own, slower than the worker's target. Stream entries are flat (an id and
field/value pairs, all bulk strings), so this connection reads a whole reply, splits it
on CRLF once and picks the entries out by position: about three times faster. Anything
that does not fit that shape (a value holding CRLF, an error) goes through an ordinary
length-checked parser, so the fast path never guesses.

Connection settings come from the URL (``redis://[user:password@]host:port/db``,
``rediss://`` for TLS, ``unix:///path.sock?db=N``), parsed by redis-py. On a Redis
Cluster (``redis+cluster://``) ``locate`` names the node to connect to, asked again at
each (re)connection: the node serving the streams' slot.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Callable, Sequence

from featurestore.errors import ConfigError
from featurestore.online.redis_protocol import pack_args, plain_url, setup_commands
from featurestore.redaction import mask_url

__all__ = ["RespConnection", "RespError"]

_CHUNK = 1 << 20


class RespError(Exception):
    """An error reply from Redis (returned in place of a reply, raised by ``call``)."""


class _Incomplete(Exception):
    pass


def _parse(buf: bytes, pos: int):
    """One RESP2 value at ``pos``: (value, next position). Raises _Incomplete."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind = buf[pos]
    if kind == 36:  # $ bulk string
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        stop = end + 2 + n
        if stop + 2 > len(buf):
            raise _Incomplete
        return buf[end + 2 : stop], stop + 2
    if kind == 42:  # * array
        n = int(buf[pos + 1 : end])
        if n < 0:
            return None, end + 2
        pos = end + 2
        out = []
        for _ in range(n):
            value, pos = _parse(buf, pos)
            out.append(value)
        return out, pos
    if kind == 58:  # : integer
        return int(buf[pos + 1 : end]), end + 2
    if kind == 43:  # + status
        return buf[pos + 1 : end], end + 2
    if kind == 45:  # - error
        return RespError(buf[pos + 1 : end].decode(errors="replace")), end + 2
    raise ValueError(f"not a RESP reply (type byte {kind!r})")


def _entries_fast(buf: bytes) -> list | None:
    """An XREADGROUP reply of one stream (``*1 *2 $name *N`` then N entries ``*2 $id
    *2k`` + 2k bulk strings), as [name, [(id, [field, value, ...]), ...]]; None when the
    reply has another shape or a value holds CRLF (the token count gives that away)."""
    toks = buf.split(b"\r\n")
    if len(toks) < 6 or toks[0] != b"*1" or toks[1] != b"*2" or toks[4][:1] != b"*":
        return None
    name = toks[3]
    i, n = 5, int(toks[4][1:])
    entries = []
    append = entries.append
    for _ in range(n):
        head, fields = toks[i], toks[i + 3]
        if head != b"*2" or fields[:1] != b"*":
            return None
        k = int(fields[1:])
        start = i + 4
        append((toks[i + 2], toks[start + 1 : start + 2 * k : 2]))
        i = start + 2 * k
    # A value holding CRLF adds tokens: the positions would not end exactly at the end.
    if i != len(toks) - 1 or toks[i] != b"":
        return None
    return [name, entries]


class RespConnection:
    """One connection to Redis, opened lazily and reopened after a failure."""

    def __init__(self, url: str, *, timeout: float = 10.0, name: str = "featurestore:stream",
                 locate: Callable[[], tuple[str, int]] | None = None):
        from redis.connection import SSLConnection, UnixDomainSocketConnection, parse_url

        self._locate = locate
        try:
            self._options = parse_url(plain_url(url))
        except ValueError as exc:
            raise ConfigError(f"{mask_url(url)!r} is not a Redis URL ({exc}); use redis://host:port/db") from None
        klass = self._options.get("connection_class")
        self._unix = klass is UnixDomainSocketConnection
        self._tls = klass is SSLConnection
        self._timeout = timeout
        self._name = name
        self._sock: socket.socket | None = None
        self._buf = b""

    @classmethod
    def like(cls, client, *, name: str = "featurestore:stream") -> RespConnection:
        """A connection with the settings of a redis-py client's pool."""
        from redis.connection import SSLConnection, UnixDomainSocketConnection

        pool = client.connection_pool
        self = cls.__new__(cls)
        self._options = dict(pool.connection_kwargs)
        self._unix = pool.connection_class is UnixDomainSocketConnection or issubclass(
            pool.connection_class, UnixDomainSocketConnection)
        self._tls = issubclass(pool.connection_class, SSLConnection)
        self._timeout = self._options.get("socket_timeout") or 10.0
        self._name, self._sock, self._buf, self._locate = name, None, b"", None
        return self

    # -- connecting ------------------------------------------------------------------

    def _connect(self) -> socket.socket:
        o = self._options
        if self._unix:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            sock.connect(o["path"])
        else:
            host, port = self._locate() if self._locate is not None else (o.get("host", "localhost"),
                                                                          o.get("port", 6379))
            sock = socket.create_connection((host, port), self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        self._sock, self._buf = sock, b""
        for reply in self._round_trip(setup_commands(o, self._name)):
            if isinstance(reply, RespError):
                self.close()
                raise reply
        return sock

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._buf = None, b""

    # -- commands --------------------------------------------------------------------

    def call(self, *args):
        """Run one command; an error reply raises RespError."""
        reply = self.pipeline([pack_args(args)])[0]
        if isinstance(reply, RespError):
            raise reply
        return reply

    def pipeline(self, commands: Sequence[bytes]) -> list:
        """Send packed commands in one round trip; error replies come back as RespError."""
        if self._sock is None:
            self._connect()
        try:
            return self._round_trip(commands)
        except BaseException:
            self.close()  # a reply may be half read: never reuse the socket
            raise

    def send(self, commands: Sequence[bytes]) -> None:
        """Send packed commands without waiting; read their replies with ``receive`` (in order)."""
        if self._sock is None:
            self._connect()
        try:
            self._sock.sendall(b"".join(commands))
        except BaseException:
            self.close()
            raise

    def receive(self, n: int) -> list:
        """The next ``n`` replies; error replies come back as RespError."""
        try:
            return [self._read_one() for _ in range(n)]
        except BaseException:
            self.close()
            raise

    def read_group(self, command: bytes) -> list | None:
        """Run an XREADGROUP; its reply as redis-py would give it, parsed fast."""
        self.send([command])
        return self.receive_group()

    def receive_group(self) -> list | None:
        """The reply of an XREADGROUP sent before (an error reply raises RespError)."""
        try:
            while True:
                if self._fill() and self._readable():
                    continue  # more is waiting: parse once, at the end
                if not self._buf.endswith(b"\r\n"):
                    continue
                if self._buf[:1] == b"*" and self._buf[:2] != b"*-":
                    try:
                        fast = _entries_fast(self._buf)
                    except ValueError:
                        fast = None  # not the simple shape: the parser below decides
                    except IndexError:  # incomplete, unless a value holds CRLF: the parser below decides
                        fast = None if not self._readable(0.001) else False
                    if fast is False:
                        continue
                    if fast is not None:
                        self._buf = b""
                        return [fast]
                try:
                    value, pos = _parse(self._buf, 0)
                except _Incomplete:
                    continue
                self._buf = self._buf[pos:]
                if isinstance(value, RespError):
                    raise value
                return value
        except RespError:
            raise
        except BaseException:
            self.close()
            raise

    # -- I/O -------------------------------------------------------------------------

    def _round_trip(self, commands: Sequence[bytes]) -> list:
        self._sock.sendall(b"".join(commands))
        return [self._read_one() for _ in commands]

    def _read_one(self):
        while True:
            if self._buf:
                try:
                    value, pos = _parse(self._buf, 0)
                except _Incomplete:
                    pass
                else:
                    self._buf = self._buf[pos:]
                    return value
            self._fill()

    def _readable(self, wait: float = 0.0) -> bool:
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return True
        return bool(select.select([self._sock], [], [], wait)[0])

    def _fill(self) -> bool:
        """Read what has arrived; True when that filled the whole read (more may be waiting)."""
        chunk = self._sock.recv(_CHUNK)
        if not chunk:
            raise ConnectionError("Redis closed the connection")
        self._buf += chunk
        return len(chunk) == _CHUNK
