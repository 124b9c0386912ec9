"""The aggregation state in Redis: where aggregation views keep their events online.

A lookup at T must equal the batch answer at T for any window ending at T, so the state
is the events themselves (values at microsecond times; no pre-aggregated tile can answer
an arbitrary window edge exactly), kept only while they can be in a window:

    key  {project}@agg:{view}:z:{entity key}   ZSET  member: event id, score: event µs
    key  {project}@agg:{view}:e:{entity key}   HASH  field: event id, value: payload

(entity keys and payloads as in ``events.py``; ``@`` never occurs in a project name, so
these keys cannot collide with the online store's ``{project}:{entity key}`` hashes, and
``SCAN MATCH {project}@agg:{view}:*`` finds exactly one view's state.)

- **Idempotent by event id.** An event is added with ``HSETNX`` (first copy wins) and only
  then ``ZADD``-ed: a redelivered or replayed event changes nothing.
- **Bounded by the longest window.** A writer passes its horizon, ``now - longest
  window``; events at or before it can be in no window ending at ``now`` or later, so a
  writer drops them before sending (they are *late*) and each write trims the entity's
  older events. Keys also expire ``longest window`` after their newest event has left
  the window, so entities that stop receiving events do not linger.
- **Atomic per call.** One Lua script call adds, trims and re-arms the expiry of up to
  ``batch_size`` entities; a lookup reads the window's ids and payloads of many entities
  in one script call, so it never sees an event without its payload.

Lookups are exact for times at or after the writers' clock (older events are trimmed):
the online store answers "now"; training sets come from the offline store.

On a Redis Cluster the entity key is wrapped in braces, the keys' hash tag
(``{project}@agg:{view}:z:{{entity key}}``): an entity's zset and hash share a slot with
its online hash, and each script call names the entities of one slot, sent through the
process's ``ClusterRouter`` (one round trip per node).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import redis

from featurestore.errors import ConfigError
from featurestore.online.base import StoredEvents
from featurestore.online.redis_cluster import ClusterRouter, hash_tagged, key_slot
from featurestore.online.redis_protocol import (REDIS_ERRORS, Scripts, connect, is_cluster_url, pack, redis_errors,
                                                 unavailable)

__all__ = ["SCRIPTS", "RedisAggregationState"]

# KEYS: per entity its zset and its hash. ARGV[1]: horizon µs, ARGV[2]: grace ms, then per
# entity: the event count n and n triples (event µs, id, payload).
_ADD = b"""
local horizon, grace = tonumber(ARGV[1]), tonumber(ARGV[2])
local at, added = 3, 0
for i = 1, #KEYS, 2 do
  local z, h = KEYS[i], KEYS[i + 1]
  local n = tonumber(ARGV[at])
  at = at + 1
  for j = 1, n do
    if redis.call('HSETNX', h, ARGV[at + 1], ARGV[at + 2]) == 1 then
      redis.call('ZADD', z, ARGV[at], ARGV[at + 1])
      added = added + 1
    end
    at = at + 3
  end
  local old = redis.call('ZRANGEBYSCORE', z, '-inf', horizon)
  if #old > 0 then
    for s = 1, #old, 5000 do redis.call('HDEL', h, unpack(old, s, math.min(s + 4999, #old))) end
    redis.call('ZREMRANGEBYSCORE', z, '-inf', horizon)
  end
  local newest = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
  if #newest == 0 then
    redis.call('DEL', z, h)
  else
    local ttl = math.floor((tonumber(newest[2]) - horizon) / 1000) + grace
    redis.call('PEXPIRE', z, ttl)
    redis.call('PEXPIRE', h, ttl)
  end
end
return added
"""

# KEYS: per entity its zset and its hash. ARGV: "(lo", "hi". Per entity: {} when the zset
# does not exist, else {1, µs, payload, µs, payload, ...}.
_READ = b"""
local out = {}
for i = 1, #KEYS, 2 do
  local found = redis.call('ZRANGEBYSCORE', KEYS[i], ARGV[1], ARGV[2], 'WITHSCORES')
  local item = {}
  if #found > 0 then
    local ids = {}
    for j = 1, #found, 2 do ids[#ids + 1] = found[j] end
    item[1] = 1
    for s = 1, #ids, 5000 do
      local payloads = redis.call('HMGET', KEYS[i + 1], unpack(ids, s, math.min(s + 4999, #ids)))
      for j = 1, #payloads do
        if payloads[j] then
          item[#item + 1] = found[2 * (s + j - 1)]
          item[#item + 1] = payloads[j]
        end
      end
    end
  elseif redis.call('EXISTS', KEYS[i]) == 1 then
    item[1] = 1
  end
  out[#out + 1] = item
end
return out
"""

#: The Lua scripts (the stream worker loads them on its own connection).
SCRIPTS = Scripts(_ADD, _READ)
_ADD_SHA, _READ_SHA = SCRIPTS.shas


class RedisAggregationState:
    """The state in Redis (layout in the module docstring).

    ``run(commands)`` sends packed commands in one round trip and returns their replies,
    raising ``NoScriptError`` (redis-py's) when Redis has forgotten a script; by default
    it is a pooled redis-py connection of ``client``. ``batch_size`` entities go into one
    script call. The client is shared (featurestore/backends.py): its owner closes it.
    ``router``: on a Redis Cluster, the process's ``ClusterRouter`` (keys hash-tagged, calls
    routed by slot).
    """

    def __init__(self, client: redis.Redis, project: str, *, batch_size: int = 500,
                 run: Callable[[list[bytes]], list] | None = None, router: ClusterRouter | None = None):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", project):
            raise ConfigError(f"project name {project!r} may only hold letters, digits, '_', '-' and '.'")
        self.client = client
        self.project = project
        self._prefix = project.encode() + b"@agg:"
        self._batch = max(1, batch_size)
        self._run_packed = run or self._pooled
        self._what = f"Redis aggregation state of project {project!r}"
        self._owns_client = False
        self.router = router
        if router is not None:
            router.add_scripts([SCRIPTS])

    @classmethod
    def from_url(cls, url: str, project: str, **options) -> RedisAggregationState:
        """A state with a client (and on a cluster, a router) of its own, closed with it."""
        router = ClusterRouter(url, project) if is_cluster_url(url) else None
        state = cls(connect(url, project), project, router=router, **options)
        state._owns_client = True
        return state

    def keys(self, view: str, entity_key: bytes) -> tuple[bytes, bytes]:
        base = self._prefix + view.encode()
        if self.router is not None:
            entity_key = hash_tagged(entity_key)
        return base + b":z:" + entity_key, base + b":e:" + entity_key

    # -- the protocol -------------------------------------------------------------------

    def add(self, layout, keys, times, ids, payloads, horizon_us) -> int:
        if self.router is not None:
            slots, commands = self._add_calls(layout, keys, times, ids, payloads, horizon_us)
            return sum(self.router.call(slots, commands, self._what)) if commands else 0
        commands = self.add_commands(layout, keys, times, ids, payloads, horizon_us)
        return sum(self._run(commands)) if commands else 0

    def add_commands(self, layout, keys, times, ids, payloads, horizon_us) -> list[bytes]:
        """The packed script calls of ``add`` (each replies with the events it added), for a
        caller that pipelines them itself (the stream worker; a single Redis only)."""
        return self._add_calls(layout, keys, times, ids, payloads, horizon_us)[1]

    def _add_calls(self, layout, keys, times, ids, payloads, horizon_us) -> tuple[list[int], list[bytes]]:
        """The script calls of ``add`` and, on a cluster, each one's slot (its entities' slot)."""
        groups: dict[bytes, list[int]] = {}
        for i, key in enumerate(keys):
            group = groups.get(key)
            if group is None:
                groups[key] = [i]
            else:
                group.append(i)
        view = self._prefix + layout.name.encode()
        zhead, ehead = view + b":z:", view + b":e:"
        tail = pack([b"%d" % horizon_us, b"%d" % (layout.longest_us // 1000)])[4:]  # without "*2\r\n"
        if self.router is None:
            per_slot = [(-1, list(groups.items()))]
        else:
            by_slot: dict[int, list] = {}
            for key, rows in groups.items():
                tagged = hash_tagged(key)
                by_slot.setdefault(key_slot(tagged), []).append((tagged, rows))
            per_slot = list(by_slot.items())
        slots, commands = [], []
        for slot, entities in per_slot:
            for start in range(0, len(entities), self._batch):
                slots.append(slot)
                commands.append(_add_call(zhead, ehead, tail, entities[start : start + self._batch], times, ids,
                                          payloads))
        return slots, commands

    def read(self, layout, keys, lo_us, hi_us) -> list[StoredEvents]:
        present = [k for k in keys if k is not None]
        window = [b"(%d" % lo_us, b"%d" % hi_us]
        found: dict[bytes, list] = {}
        if present and self.router is None:
            found = dict(zip(present, self._run([self._read_call(layout, present, window)])[0]))
        elif present:  # one script call per slot, one round trip per node
            by_slot: dict[int, list[bytes]] = {}
            for key in dict.fromkeys(present):
                by_slot.setdefault(key_slot(hash_tagged(key)), []).append(key)
            calls = [self._read_call(layout, ks, window) for ks in by_slot.values()]
            replies = self.router.call(list(by_slot), calls, self._what)
            for ks, reply in zip(by_slot.values(), replies):
                found.update(zip(ks, reply))
        out: list[StoredEvents] = []
        for key in keys:
            item = found.get(key) if key is not None else None
            if not item:
                out.append(None)
                continue
            out.append([(int(item[j]), item[j + 1]) for j in range(1, len(item), 2)])
        return out

    def _read_call(self, layout, keys: list[bytes], window: list[bytes]) -> bytes:
        key_args = []
        for key in keys:
            key_args += self.keys(layout.name, key)
        return pack([b"EVALSHA", _READ_SHA, b"%d" % len(key_args), *key_args, *window])

    def delete_view(self, name: str) -> None:
        pattern = re.sub(rb"([*?\[\]\\])", rb"\\\1", self._prefix + name.encode() + b":") + b"*"
        with redis_errors(self._what):
            for batch in _chunks(self.client.scan_iter(match=pattern, count=1000), 1000):
                self.client.delete(*batch)

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
            if self.router is not None:
                self.router.close()

    # -- transport ----------------------------------------------------------------------

    def _run(self, commands: list[bytes]) -> list:
        try:
            return SCRIPTS.run(self._run_packed, commands)
        except REDIS_ERRORS as exc:
            raise unavailable(exc, self._what) from None

    def _pooled(self, commands: list[bytes]) -> list:
        pool = self.client.connection_pool
        conn = pool.get_connection()
        try:
            conn.send_packed_command([b"".join(commands)], check_health=False)
            replies = [conn.read_response() for _ in commands]
        except BaseException:
            conn.disconnect()  # replies may be left unread on the socket
            raise
        finally:
            pool.release(conn)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies


def _add_call(zhead: bytes, ehead: bytes, tail: bytes, chunk: list, times, ids, payloads) -> bytes:
    """One packed call of the add script for ``chunk``: (entity key, its row indices) pairs."""
    parts = []
    n_args = 0
    for key, _ in chunk:  # KEYS: zset and hash of each entity
        z, e = zhead + key, ehead + key
        parts.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(z), z, len(e), e))
    parts.append(tail)
    for _, rows in chunk:
        count = b"%d" % len(rows)
        parts.append(b"$%d\r\n%b\r\n" % (len(count), count))
        for i in rows:
            ts, event_id, payload = b"%d" % times[i], ids[i], payloads[i]
            parts.append(b"$%d\r\n%b\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
                len(ts), ts, len(event_id), event_id, len(payload), payload))
        n_args += 1 + 3 * len(rows)
    n_keys = b"%d" % (2 * len(chunk))
    head = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%b\r\n$%d\r\n%b\r\n" % (
        3 + 2 * len(chunk) + 2 + n_args, _ADD_SHA, len(n_keys), n_keys)
    return head + b"".join(parts)


def _chunks(iterable, size):
    chunk = []
    for item in iterable:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
