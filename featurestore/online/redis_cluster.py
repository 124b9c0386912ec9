"""Redis Cluster: key slots, the slot map, and the blocking router of the online store.

A cluster splits the keys into 16384 slots, each served by one primary (and its
replicas). A key's slot is CRC16 of its *hash tag* (the bytes between its first ``{`` and
the first ``}`` after it, when there are any) or of the whole key, mod 16384. In cluster
mode the online store wraps each entity key in braces (``hash_tagged``), so an entity's
values and its aggregation state share one slot, and each script call names keys of one
slot. A single Redis keeps the layout without braces (its data stays readable as it is).

Routing (``ClusterRouter.run``): commands are grouped by the primary that owns their
slot and sent to each node in one pipelined round trip; every node's request goes out
before any reply is read, so the nodes work at once. Replies that redirect are followed:

- ``MOVED slot host:port``: the slot lives elsewhere now (a failover, a resharding): the
  map is reloaded from ``CLUSTER SLOTS`` and the command sent there;
- ``ASK slot host:port``: the slot is migrating: this command goes there after ``ASKING``;
- ``TRYAGAIN``, ``CLUSTERDOWN``, ``MASTERDOWN``, ``LOADING``: the cluster is changing: retried
  after a backoff;
- ``NOSCRIPT``: that node never saw the scripts (a promoted replica): loaded there, re-sent;
- a node that cannot be reached (its primary died): the map is reloaded from another
  node and the commands retried with backoff for up to ``retry_seconds``, the time a
  failover takes (``cluster-node-timeout`` plus the election), then the error is raised.

Every command the store sends is idempotent (newer-wins writes, idempotent adds), so
re-sending one whose reply was lost is safe. The server's reads route the same way on
its event loop (``redis_cluster_async.py``), sharing this slot map.
"""

from __future__ import annotations

import binascii
import threading
import time
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.connection import parse_url
from redis.exceptions import AskError, ClusterDownError, MasterDownError, MovedError, NoScriptError, ResponseError
from redis.exceptions import TryAgainError
from redis.retry import Retry

from featurestore.errors import ConfigError
from featurestore.online.redis_protocol import REDIS_ERRORS, pack, plain_url, unavailable
from featurestore.redaction import mask_url

__all__ = ["ASKING", "CLUSTER_SLOTS", "SLOTS", "ClusterRouter", "SlotMap", "cluster_reply", "hash_tagged", "key_slot"]

SLOTS = 16384
Address = tuple[str, int]
ASKING = pack([b"ASKING"])
CLUSTER_SLOTS = pack([b"CLUSTER", b"SLOTS"])
# redis-py strips the first word off the errors it knows; the async client keeps it.
_WORDS = {MovedError: "MOVED", AskError: "ASK", TryAgainError: "TRYAGAIN", ClusterDownError: "CLUSTERDOWN",
          MasterDownError: "MASTERDOWN", NoScriptError: "NOSCRIPT"}
_RETRY = frozenset({"TRYAGAIN", "CLUSTERDOWN", "MASTERDOWN", "LOADING"})


def key_slot(key: bytes) -> int:
    """The slot of ``key``, by Redis's rule (crc_hqx is CRC16-XMODEM, the cluster's CRC)."""
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            key = key[start + 1 : end]
    return binascii.crc_hqx(key, 0) & (SLOTS - 1)


def hash_tagged(entity_key: bytes) -> bytes:
    """An entity key as it appears in cluster keys: in braces, so it is their hash tag.
    The tag is the entity key up to its first ``}`` byte: the same for every key of one
    entity, and never empty (an entity key starts with its join key count, 1 to 124 here)."""
    return b"{" + entity_key + b"}"


def cluster_reply(reply) -> tuple[str, int, Address | None] | None:
    """What a cluster error reply asks for: (word, slot, address) for MOVED/ASK, (word, -1,
    None) for a retry or NOSCRIPT; None for any other reply."""
    if not isinstance(reply, ResponseError):
        return None
    text = str(reply)
    word = _WORDS.get(type(reply))
    if word is not None and not text.startswith(word):
        text = f"{word} {text}"
    word, _, rest = text.partition(" ")
    if word in ("MOVED", "ASK"):
        slot, _, where = rest.partition(" ")
        host, _, port = where.rpartition(":")
        return word, int(slot), (host, int(port))
    if word in _RETRY or word == "NOSCRIPT":
        return word, -1, None
    return None


class SlotMap:
    """Which primary serves each slot, from ``CLUSTER SLOTS``; ``seeds`` are asked first
    when no node is known yet."""

    def __init__(self, seeds: Sequence[Address]):
        self.seeds = list(seeds)
        self.nodes: list[Address | None] = [None] * SLOTS
        self.known: list[Address] = []
        self.stale = True  # reload before the next routing

    def load(self, reply: list, asked: Address) -> None:
        """Take a ``CLUSTER SLOTS`` reply (``asked``: the node that gave it, for empty hosts)."""
        nodes: list[Address | None] = [None] * SLOTS
        known = []
        for entry in reply:
            start, end = int(entry[0]), int(entry[1])
            addresses = [_address(node, asked) for node in entry[2:]]  # the primary, then its replicas
            nodes[start : end + 1] = [addresses[0]] * (end - start + 1)
            known += addresses
        self.nodes, self.stale = nodes, False
        self.known = list(dict.fromkeys(known))

    def accept(self, reply, asked: Address) -> BaseException | None:
        """``load`` a ``CLUSTER SLOTS`` reply; an error reply is returned instead."""
        if isinstance(reply, BaseException):
            return reply
        self.load(reply, asked)
        return None

    def primaries(self) -> list[Address]:
        return list(dict.fromkeys(n for n in self.nodes if n is not None))

    def candidates(self) -> list[Address]:
        """Nodes to ask for the map: the primaries, then every other node seen (a replica
        may be the next primary), then the seeds."""
        return list(dict.fromkeys([*self.primaries(), *self.known, *self.seeds]))

    def moved(self, slot: int, address: Address) -> None:
        self.nodes[slot] = address
        self.stale = True  # one slot moved: others likely did too (a failover moves a range)


def _address(node: list, asked: Address) -> Address:
    """A node of a ``CLUSTER SLOTS`` entry ([host, port, id, ...]); an empty host is the asked node's."""
    host = node[0].decode() if isinstance(node[0], bytes) else str(node[0])
    return (host if host and host != "?" else asked[0], int(node[1]))


class ClusterRouter:
    """Blocking round trips to a cluster, routed by slot (see the module docstring).

    ``url``: any node (``redis+cluster://[:password@]host:port``). ``scripts``: the
    ``Scripts`` whose ``NOSCRIPT`` is answered by loading them on the node that said it.
    """

    def __init__(self, url: str, project: str, *, socket_timeout: float = 5.0, retry_seconds: float = 20.0,
                 scripts: Sequence = ()):
        try:
            options = parse_url(plain_url(url))
        except ValueError as exc:
            raise ConfigError(f"online store connection string {mask_url(url)!r} is not a Redis URL ({exc})") from None
        if options.get("db"):
            raise ConfigError(f"{mask_url(url)!r} names database {options['db']}; a Redis Cluster has only "
                              "database 0: drop the /N from the URL")
        self.url = mask_url(url)
        self.options = options
        self.slots = SlotMap([(options.get("host", "localhost"), int(options.get("port", 6379)))])
        self.retry_seconds = retry_seconds
        self._kwargs = {k: v for k, v in options.items() if k not in ("host", "port", "db")}
        self._kwargs.update(socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
                            client_name=f"featurestore:{project}", retry=Retry(NoBackoff(), 0))
        self.load_commands: list[bytes] = []
        self.add_scripts(scripts)
        self._pools: dict[Address, redis.ConnectionPool] = {}
        self._lock = threading.Lock()

    def add_scripts(self, scripts: Sequence) -> None:
        """Also load these ``Scripts`` on a node that answers ``NOSCRIPT`` (each backend
        sharing the router adds its own)."""
        for script in scripts:
            for command in script.load_commands():
                if command not in self.load_commands:
                    self.load_commands.append(command)

    # -- routing ---------------------------------------------------------------------

    def run(self, slots: Sequence[int], commands: Sequence[bytes]) -> list:
        """Send each command (packed) to the primary of its slot, one round trip per node;
        the replies in order (other error replies in place, as exceptions)."""
        replies: list = [None] * len(commands)
        todo = list(range(len(commands)))
        asking: dict[int, Address] = {}
        give_up = time.monotonic() + self.retry_seconds
        pause, rounds = 0.02, 0
        while True:
            rounds += 1
            try:
                if self.slots.stale:
                    self.refresh()
                groups: dict[Address, list[int]] = {}
                for i in todo:
                    groups.setdefault(asking.get(i) or self.node(slots[i]), []).append(i)
            except REDIS_ERRORS as exc:  # no node answered, or a slot has no node yet: a failover
                retry, failure, backoff = todo, exc, True
            else:
                retry, failure, backoff = self._round(groups, commands, replies, asking)
            if not retry:
                return replies
            if time.monotonic() >= give_up:
                if failure is not None:
                    raise failure
                raise ClusterDownError(f"the cluster at {self.url} kept redirecting for {self.retry_seconds:g} s")
            if backoff or rounds > 2:  # a node down, or redirected again and again: the cluster is changing
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
            todo = retry

    def call(self, slots: Sequence[int], commands: Sequence[bytes], what: str) -> list:
        """``run``, with a failure or an error reply raised as StoreUnavailableError naming ``what``."""
        try:
            replies = self.run(slots, commands)
        except REDIS_ERRORS as exc:
            raise unavailable(exc, what) from None
        for reply in replies:
            if isinstance(reply, Exception):
                raise unavailable(reply, what)
        return replies

    def each_primary(self, command: bytes) -> list:
        """``command`` on every primary (a PING for health), one reply each."""
        if self.slots.stale:
            self.refresh()
        replies = []
        for address in self.slots.primaries():
            replies += self.send(address, [command])
        return replies

    def locate(self, slot: int) -> Address:
        """The primary of ``slot`` by a freshly loaded map (for a connection that stays on it)."""
        self.refresh()
        return self.node(slot)

    def refresh(self) -> None:
        """Reload the slot map from the first node that answers; raise when none does."""
        failure: BaseException | None = None
        for address in self.slots.candidates():
            try:
                (reply,) = self.send(address, [CLUSTER_SLOTS])
            except REDIS_ERRORS as exc:
                failure = exc
                continue
            failure = self.slots.accept(reply, address)
            if failure is None:
                return
        raise failure or redis.ConnectionError(f"no node of the cluster at {self.url} answered")

    def send(self, address: Address, commands: Sequence[bytes]) -> list:
        """Commands to one node in one round trip; error replies in place."""
        pool = self._pool(address)
        conn = pool.get_connection()
        try:
            conn.send_packed_command([b"".join(commands)], check_health=False)
            return [_read(conn) for _ in commands]
        except BaseException:
            conn.disconnect()
            raise
        finally:
            pool.release(conn)

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.disconnect()

    # -- internals -------------------------------------------------------------------

    def _round(self, groups: dict[Address, list[int]], commands: Sequence[bytes], replies: list,
               asking: dict[int, Address]) -> tuple[list[int], BaseException | None, bool]:
        """One round trip per node: replies filled in; (indices to send again, the last
        connection failure, whether to back off first)."""
        sent = []
        retry: list[int] = []
        failure: BaseException | None = None
        for address, indices in groups.items():
            pool = self._pool(address)
            try:
                conn = pool.get_connection()
            except REDIS_ERRORS as exc:
                failure = exc
                retry += indices
                continue
            payload = b"".join([ASKING + commands[i] if i in asking else commands[i] for i in indices])
            try:
                conn.send_packed_command([payload], check_health=False)
            except REDIS_ERRORS as exc:
                conn.disconnect()
                pool.release(conn)
                failure = exc
                retry += indices
                continue
            sent.append((address, pool, conn, indices))
        redirected = dict(asking)
        asking.clear()
        loads = set()
        for address, pool, conn, indices in sent:
            try:
                for i in indices:
                    if i in redirected:
                        _read(conn)  # ASKING's OK
                    replies[i] = _read(conn)
            except REDIS_ERRORS as exc:
                conn.disconnect()
                failure = exc
                retry += indices  # idempotent: the ones already answered may run again
                continue
            finally:
                pool.release(conn)
            for i in indices:
                what = cluster_reply(replies[i])
                if what is None:
                    continue
                word, slot, to = what
                retry.append(i)
                if word == "MOVED":
                    self.slots.moved(slot, to)
                elif word == "ASK":
                    asking[i] = to
                elif word == "NOSCRIPT":
                    loads.add(address)
                else:
                    failure = replies[i]
        for address in loads:
            self.send(address, self.load_commands)
        if failure is not None:
            self.slots.stale = True
        return sorted(set(retry)), failure, failure is not None

    def node(self, slot: int) -> Address:
        node = self.slots.nodes[slot]
        if node is None:
            raise ClusterDownError(f"slot {slot} is served by no node of the cluster at {self.url}")
        return node

    def _pool(self, address: Address) -> redis.ConnectionPool:
        pool = self._pools.get(address)
        if pool is None:
            with self._lock:
                pool = self._pools.get(address)
                if pool is None:
                    pool = redis.ConnectionPool(host=address[0], port=address[1], **self._kwargs)
                    self._pools[address] = pool
        return pool


def _read(conn):
    """One reply; an error reply as a value (the connection stays in step)."""
    try:
        return conn.read_response()
    except ResponseError as exc:
        return exc
