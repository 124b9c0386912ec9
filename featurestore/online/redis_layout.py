"""The Redis online store's layout: the keys and fields it writes, and the Lua scripts
that write and delete them (``redis.py`` is the client that sends them).

Key layout (also in docs/online-store.md)::

    key   {project}:{entity key bytes}        one hash per (project, entity key)
    field {view}:{feature}                    the encoded value; absent = null
    field {view}:@ts                          the event time of the view's row, decimal µs

Names are identifiers (no ':'), so a view's fields are exactly those starting with
``{view}:``, and the project prefix keeps two projects on one Redis apart. Views sharing
an entity share its hash; a read of N entities x M views is one pipeline of HMGETs.

On a Redis Cluster (``redis+cluster://``) the entity key is wrapped in braces, its hash
tag: ``{project}:{{entity key}}``, so the entity's hash and its aggregation state share
a slot. Reads and writes are grouped by node, one round trip per node
(``redis_cluster.py``); each write script call names the entities of one slot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.errors import DefinitionError
from featurestore.online.base import OnlineView
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.online.redis_protocol import Scripts, pack
from featurestore.online.values import feature_decoders

__all__ = ["DELETE_SHA", "SCRIPTS", "WRITE_SHA", "ReadSpec", "check_taggable", "delete_command", "read_spec",
           "view_fields", "write_command"]

# Newer-timestamp-wins, enforced here and only here: a row replaces an entity's values of
# a view only when the stored event time is absent or <= its own (so replaying a batch, or
# a rerun after a lost connection, changes nothing). A null value deletes its field.
# KEYS: the entity hashes. ARGV: the view's @ts field, the feature count F, F field names,
# then per key: event time, a mask of F bytes ('1' value present, '0' null), F values.
_WRITE = b"""
local ts_field, f = ARGV[1], tonumber(ARGV[2])
local written = 0
for i = 1, #KEYS do
  local at = 2 + f + (i - 1) * (f + 2)
  local ts = ARGV[at + 1]
  local stored = redis.call('HGET', KEYS[i], ts_field)
  if not stored or tonumber(stored) <= tonumber(ts) then
    local mask, set, del = ARGV[at + 2], {ts_field, ts}, {}
    for j = 1, f do
      if string.byte(mask, j) == 49 then
        set[#set + 1] = ARGV[2 + j]
        set[#set + 1] = ARGV[at + 2 + j]
      else
        del[#del + 1] = ARGV[2 + j]
      end
    end
    for s = 1, #set, 7000 do redis.call('HSET', KEYS[i], unpack(set, s, math.min(s + 6999, #set))) end
    for s = 1, #del, 7000 do redis.call('HDEL', KEYS[i], unpack(del, s, math.min(s + 6999, #del))) end
    written = written + 1
  end
end
return written
"""

# KEYS: hashes of one project. ARGV[1]: the view's field prefix "{view}:".
_DELETE = b"""
local prefix, removed = ARGV[1], 0
for i = 1, #KEYS do
  if redis.call('TYPE', KEYS[i]).ok == 'hash' then
    local doomed = {}
    for _, field in ipairs(redis.call('HKEYS', KEYS[i])) do
      if string.sub(field, 1, #prefix) == prefix then doomed[#doomed + 1] = field end
    end
    for s = 1, #doomed, 7000 do
      removed = removed + redis.call('HDEL', KEYS[i], unpack(doomed, s, math.min(s + 6999, #doomed)))
    end
  end
end
return removed
"""

SCRIPTS = Scripts(_WRITE, _DELETE)
WRITE_SHA, DELETE_SHA = SCRIPTS.shas


@dataclass(frozen=True)
class ReadSpec:
    """What reading some features of a view needs, worked out once per (view, features)."""

    head: bytes  # "HMGET" in RESP, up to the key
    tail: bytes  # the view's @ts field, then the features' fields, in RESP
    decoders: tuple[Callable[[bytes], Any], ...]
    encode_key: Callable[[Sequence], bytes | None]


def read_spec(view: OnlineView, features: tuple[str, ...]) -> ReadSpec:
    """The HMGET of ``features`` of ``view`` (all but its key), their decoders and the key encoder."""
    decoders = feature_decoders(view, features)
    fields = view_fields(view, features)
    return ReadSpec(
        b"*%d\r\n$5\r\nHMGET\r\n" % (len(fields) + 2),
        pack(fields)[len(b"*%d\r\n" % len(fields)) :],
        decoders,
        entity_key_encoder(tuple(view.join_keys)),
    )


def write_command(head: list[bytes], keys: list[bytes], event_ts: list[int],
                  columns: list[list[bytes | None]]) -> bytes:
    """One call of the write script for the rows of ``keys`` (their event times and
    per feature their encoded values), packed."""
    args = [b"EVALSHA", WRITE_SHA, b"%d" % len(keys), *keys, *head]
    rows = zip(*columns) if columns else [()] * len(keys)
    all_present = b"1" * len(columns)
    for ts, row in zip(event_ts, rows):
        if None in row:
            args += (b"%d" % ts, bytes(48 if v is None else 49 for v in row), *(v or b"" for v in row))
        else:
            args += (b"%d" % ts, all_present, *row)
    return pack(args)


def delete_command(keys: Sequence[bytes], view_prefix: bytes) -> bytes:
    """One call of the delete script: the fields starting with ``view_prefix`` of ``keys``."""
    return pack([b"EVALSHA", DELETE_SHA, b"%d" % len(keys), *keys, view_prefix])


def check_taggable(view: OnlineView) -> None:
    """A hash tag is the entity key up to its first '}' byte, which 125 join keys would start with."""
    if len(view.join_keys) == ord("}"):
        raise DefinitionError(f"view {view.name!r} has 125 join keys, which Redis Cluster keys cannot hold; "
                              "use fewer join keys")


def view_fields(view: OnlineView, features: Sequence[str]) -> tuple[bytes, ...]:
    """The view's @ts field, then the given features' fields (see the module docstring)."""
    for name in (view.name, *features):
        if ":" in name or "@" in name:
            raise DefinitionError(f"name {name!r} cannot be stored in Redis: it may not contain ':' or '@'")
    view_prefix = view.name + ":"
    return ((view_prefix + "@ts").encode(), *((view_prefix + f).encode() for f in features))
