"""The Redis online store: the client that sends the reads and writes of ``redis_layout.py``
(one hash per entity, newer-timestamp-wins enforced by a Lua script) to one server or a
Redis Cluster, in one round trip per node.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence

import pyarrow as pa
import redis

from featurestore.bounded import BoundedCache
from featurestore.errors import ConfigError
from featurestore.online.base import OnlineRow, OnlineView
from featurestore.online.batches import encode_batch
from featurestore.online.redis_async import AsyncRoundTrips
from featurestore.online.redis_cluster import ClusterRouter, hash_tagged, key_slot
from featurestore.online.redis_cluster_async import AsyncClusterRoundTrips
from featurestore.online.redis_layout import (SCRIPTS, ReadSpec, check_taggable, delete_command, read_spec, view_fields,
                                              write_command)
from featurestore.online.redis_protocol import REDIS_ERRORS, connect, is_cluster_url, pack, unavailable
from featurestore.online.values import undecodable
from featurestore.redaction import mask_url

__all__ = ["RedisOnlineStore"]

_PROJECT = re.compile(r"[A-Za-z0-9_.-]+")
_PING = b"*1\r\n$4\r\nPING\r\n"


class RedisOnlineStore:
    """The online store in Redis: one server, or a Redis Cluster (``redis+cluster://``).

    ``batch_size`` entities go into one atomic Lua call and ``batches_per_pipeline`` calls
    into one round trip. ``socket_timeout`` bounds each network wait; a lost connection is
    retried ``retries`` times (safe: reads and writes are idempotent), then raises
    StoreUnavailableError. Nothing connects until the first call. ``client``: a redis-py
    client to share (featurestore/backends.py passes the process's one; its owner closes it).

    ``read_async`` and ``health_async`` are the server's: on its event loop, within
    ``read_timeout`` seconds (``AsyncRoundTrips``).

    On a cluster: ``router``, the process's ``ClusterRouter`` to share (else one of its
    own); a node that fails is retried for up to ``retry_seconds`` by the blocking calls
    and until ``read_timeout`` by the server's reads (see docs/scaling.md).
    """

    def __init__(
        self,
        connection_string: str,
        project: str,
        *,
        batch_size: int = 1000,
        batches_per_pipeline: int = 5,
        socket_timeout: float = 5.0,
        retries: int = 3,
        read_timeout: float = 0.25,
        client: redis.Redis | None = None,
        router: ClusterRouter | None = None,
        retry_seconds: float = 20.0,
    ):
        if not _PROJECT.fullmatch(project):
            raise ConfigError(f"project name {project!r} may only hold letters, digits, '_', '-' and '.'")
        self.url = mask_url(connection_string)
        self.location = self.url
        self._what = f"Redis online store at {self.url}"
        self.project = project
        self._prefix = project.encode() + b":"
        self._batch_size = max(1, batch_size)
        self._per_pipeline = max(1, batches_per_pipeline)
        self._retries = max(0, retries)
        self._owns_client = client is None
        self.client = client or connect(connection_string, project, socket_timeout=socket_timeout,
                                        retries=self._retries)
        self._router: ClusterRouter | None = None
        if is_cluster_url(connection_string):
            self._owns_router = router is None
            self._router = router or ClusterRouter(connection_string, project, socket_timeout=socket_timeout,
                                                   retry_seconds=retry_seconds)
            self._router.add_scripts([SCRIPTS])
            self._cluster_async = AsyncClusterRoundTrips(self._router, connection_string, project, self._what,
                                                         read_timeout)
        else:
            self._pool = self.client.connection_pool
            self._async = AsyncRoundTrips(connection_string, project, self._what, read_timeout)
        # Keyed by the features a request names (any subset, in any order): bounded.
        self._specs: BoundedCache[tuple[OnlineView, tuple[str, ...]], ReadSpec] = BoundedCache(1024)

    # -- the protocol -------------------------------------------------------------------

    def write_batch(self, view: OnlineView, table: pa.Table) -> int:
        fields = view_fields(view, view.features)
        head = [fields[0], b"%d" % len(view.features), *fields[1:]]
        size = self._batch_size
        if self._router is not None:
            check_taggable(view)
        # Checks the whole batch before a byte is sent; then one round trip per slice (per
        # node of a cluster).
        prefix = self._prefix
        for batch in encode_batch(view, table, rows=size * self._per_pipeline):
            columns = batch.values
            if self._router is None:
                self._run([
                    write_command(head, [prefix + k for k in batch.entity_keys[start : start + size]],
                                        batch.event_ts[start : start + size],
                                        [column[start : start + size] for column in columns])
                    for start in range(0, len(batch.entity_keys), size)
                ])
                continue
            by_slot: dict[int, list[int]] = {}
            keys = [prefix + hash_tagged(k) for k in batch.entity_keys]
            for i, key in enumerate(keys):
                by_slot.setdefault(key_slot(key), []).append(i)
            slots, commands = [], []
            for slot, rows in by_slot.items():
                for start in range(0, len(rows), size):
                    part = rows[start : start + size]
                    commands.append(write_command(head, [keys[i] for i in part],
                                                        [batch.event_ts[i] for i in part],
                                                        [[column[i] for i in part] for column in columns]))
                    slots.append(slot)
            self._router.call(slots, commands, self._what)
        return table.num_rows

    def read(
        self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]
    ) -> list[list[OnlineRow]]:
        commands, plans, slots = self._read_commands(requests)
        if not commands:
            return self._read_rows(plans, ())
        if self._router is not None:
            return self._read_rows(plans, self._router.call(slots, commands, self._what))
        return self._read_rows(plans, self._run(commands))

    async def read_async(
        self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]
    ) -> list[list[OnlineRow]]:
        """``read`` on the running event loop, within ``read_timeout``."""
        commands, plans, slots = self._read_commands(requests)
        if not commands:
            return self._read_rows(plans, ())
        if self._router is not None:
            return self._read_rows(plans, await self._cluster_async.run(slots, commands))
        return self._read_rows(plans, await self._async.run(commands))

    def _read_commands(self, requests: Sequence[tuple[OnlineView, Sequence[str], Sequence[tuple]]]) -> tuple:
        """The HMGETs of a read, packed; on a cluster each one's slot too (else no slots)."""
        commands, plans, slots = [], [], []
        tagged = self._router is not None
        prefix = self._prefix + b"{" if tagged else self._prefix
        for view, features, keys in requests:
            if type(features) is not tuple:
                features = tuple(features)
            spec = self._specs.get((view, features)) or self._spec(view, features)
            head, tail, encode = spec.head, spec.tail, spec.encode_key
            present = []
            for key in keys:
                entity_key = encode(key)
                if entity_key is None:
                    present.append(False)
                    continue
                present.append(True)
                if tagged:  # {project}:{{entity key}}: the hash tag decides the slot
                    hashed = b"%b%b}" % (prefix, entity_key)
                    slots.append(key_slot(hashed))
                    commands.append(b"%b$%d\r\n%b\r\n%b" % (head, len(hashed), hashed, tail))
                else:  # HMGET {prefix}{entity key} {view}:@ts {view}:{feature}...
                    size = len(prefix) + len(entity_key)
                    commands.append(b"%b$%d\r\n%b%b\r\n%b" % (head, size, prefix, entity_key, tail))
            plans.append((view, spec.decoders, present))
        return commands, plans, slots

    @staticmethod
    def _read_rows(plans: list, replies) -> list[list[OnlineRow]]:
        replies = iter(replies)
        out = []
        for view, decoders, present in plans:
            rows: list[OnlineRow] = []
            try:
                for found in present:
                    reply = next(replies) if found else None
                    if reply is None or reply[0] is None:
                        rows.append(None)
                        continue
                    values = [d(v) if v is not None else None for d, v in zip(decoders, reply[1:])]
                    rows.append((int(reply[0]), tuple(values)))
            except (ValueError, IndexError, struct.error) as exc:  # UnicodeDecodeError is a ValueError
                raise undecodable(view, exc) from None
            out.append(rows)
        return out

    def delete_view(self, view: OnlineView) -> None:
        view_fields(view, ())  # checks the name
        prefix = view.name.encode() + b":"
        pattern = re.sub(rb"([*?\[\]\\])", rb"\\\1", self._prefix) + b"*"
        if self._router is not None:
            return self._cluster_delete(pattern, prefix)
        cursor = b"0"
        while True:
            cursor, keys = self._run([pack([b"SCAN", cursor, b"MATCH", pattern, b"COUNT", b"1000"])])[0]
            if keys:
                self._run([delete_command(keys, prefix)])
            if cursor == b"0":
                return

    def health(self) -> None:
        if self._router is not None:
            try:
                self._router.each_primary(_PING)
            except REDIS_ERRORS as exc:
                raise unavailable(exc, self._what) from None
            return
        self._run([_PING])

    async def health_async(self) -> None:
        if self._router is not None:
            return await self._cluster_async.each_primary(_PING)
        await self._async.run([_PING])

    async def aclose(self) -> None:
        """Close the event loop's connections (the server's shutdown)."""
        await (self._cluster_async if self._router is not None else self._async).aclose()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
        if self._router is not None and self._owns_router:
            self._router.close()

    def __repr__(self) -> str:
        return f"RedisOnlineStore({self.url!r}, project={self.project!r})"

    # -- internals ----------------------------------------------------------------------

    def _spec(self, view: OnlineView, features: Sequence[str]) -> ReadSpec:
        features = tuple(features)
        return self._specs.put((view, features), read_spec(view, features))

    def _cluster_delete(self, pattern: bytes, prefix: bytes) -> None:
        """``delete_view`` on a cluster: SCAN each primary, one script call per slot."""
        router = self._router
        try:
            router.refresh()
            for address in router.slots.primaries():
                cursor = b"0"
                while True:
                    cursor, keys = router.send(address, [pack([b"SCAN", cursor, b"MATCH", pattern,
                                                               b"COUNT", b"1000"])])[0]
                    by_slot: dict[int, list[bytes]] = {}
                    for key in keys:
                        by_slot.setdefault(key_slot(key), []).append(key)
                    if by_slot:
                        self._router.call(list(by_slot), [
                            delete_command(ks, prefix) for ks in by_slot.values()],
                            self._what)
                    if cursor == b"0":
                        break
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self._what) from None

    def _run(self, commands: Sequence[bytes]) -> list:
        """Send commands (each packed in RESP) in one round trip and return their replies. Retries a lost
        connection; reloads the Lua scripts once if Redis forgot them (e.g. after a
        restart). Every error becomes StoreUnavailableError naming the URL."""
        try:
            return SCRIPTS.run(self._round_trip, commands)
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self._what) from None

    def _round_trip(self, commands: Sequence[bytes]) -> list:
        # Straight on a pooled connection: redis-py's Pipeline object costs about as much
        # as the round trip itself for a one-entity read.
        attempt = 0
        while True:
            conn = self._pool.get_connection()  # connecting retries by itself (the Retry policy)
            try:
                conn.send_packed_command([b"".join(commands)], check_health=False)
                return [conn.read_response() for _ in commands]
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                conn.disconnect()  # a stale pooled connection, or the server went away
                attempt += 1
                if attempt > self._retries:
                    raise
            except BaseException:
                conn.disconnect()  # replies may be left unread on the socket
                raise
            finally:
                self._pool.release(conn)

