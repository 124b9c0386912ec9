"""The Redis online store and aggregation state on a real Redis Cluster (3 primaries, 1
replica each): one entity in one slot, one round trip per node, redirects followed.

The behaviour tests of the online store (tests/online/test_contract.py) and of the
aggregation state (tests/streaming/test_state.py) run on the cluster too; these pin what
is particular to it."""

from __future__ import annotations

import asyncio
from collections import Counter

import pyarrow as pa
import pytest
import redis

from featurestore.config import load_config
from featurestore.errors import ConfigError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.online.redis import RedisOnlineStore
from featurestore.online.redis_async import AsyncRoundTrips
from featurestore.online.redis_cluster import SLOTS, ClusterRouter, hash_tagged, key_slot
from featurestore.online.redis_events import RedisAggregationState
from featurestore.online.redis_protocol import cluster_url, is_cluster_url, plain_url
from featurestore.streaming.events import ViewLayout
from featurestore.types import Float64, Int64, String

T0 = 1_700_000_000_000_000
VIEW = OnlineView("driver_stats", ("driver_id",), ("conv_rate", "trips", "city"), (Float64, Int64, String))
KEY = entity_key_encoder(("driver_id",))


def rows(drivers, ts: int = T0) -> pa.Table:
    n = len(drivers)
    return pa.table({"driver_id": pa.array(drivers, pa.int64()), "conv_rate": [0.5 + d for d in drivers],
                     "trips": list(drivers), "city": [f"c{d}" for d in drivers],
                     EVENT_TIMESTAMP: pa.array([ts] * n, pa.timestamp("us", tz="UTC"))})


@pytest.fixture
def store(redis_cluster_url, redis_project):
    s = RedisOnlineStore(redis_cluster_url, redis_project)
    yield s
    s.close()


def primaries(cluster) -> dict[int, redis.Redis]:
    return {port: cluster.client(port) for port in cluster.primaries()}


def stats(clients: dict[int, redis.Redis], command: str) -> dict[int, int]:
    """Calls of ``command`` per node so far (INFO commandstats: no MONITOR needed)."""
    return {port: c.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0) for port, c in clients.items()}


def moved(clients: dict[int, redis.Redis]) -> int:
    return sum(c.info("errorstats").get("errorstat_MOVED", {}).get("count", 0) for c in clients.values())


def owner(clients: dict[int, redis.Redis], slot: int) -> int:
    """The port of the primary serving ``slot``, by its own CLUSTER NODES line."""
    for port, client in clients.items():
        me = next(line.split() for line in client.execute_command("CLUSTER", "NODES").decode().splitlines()
                  if "myself" in line)
        for part in me[8:]:
            start, _, end = part.partition("-")
            if start.isdigit() and int(start) <= slot <= int(end or start):
                return port
    raise AssertionError(f"no primary serves slot {slot}")


def test_hash_tags_follow_the_cluster_rule():
    assert key_slot(b"foo") == 12182 and key_slot(b"{user1000}.following") == key_slot(b"{user1000}.followers")
    assert key_slot(b"foo{}{bar}") == key_slot(b"foo{}{bar}")  # an empty tag: the whole key
    assert key_slot(b"{}x") != key_slot(b"{}y")
    odd = KEY(("a}b",))  # a '}' inside an entity key cuts the tag, the same way for each of its keys
    assert key_slot(b"p:" + hash_tagged(odd)) == key_slot(b"p@agg:v:z:" + hash_tagged(odd))
    assert all(0 <= key_slot(b"%d" % i) < SLOTS for i in range(100))


def test_one_entitys_values_and_aggregation_state_live_in_one_slot(store, redis_cluster, redis_cluster_url,
                                                                     redis_project):
    store.write_batch(VIEW, rows([7]))
    other = OnlineView("driver_extra", ("driver_id",), ("x",), (Int64,))
    store.write_batch(other, pa.table({"driver_id": [7], "x": [1], EVENT_TIMESTAMP: pa.array(
        [T0], pa.timestamp("us", tz="UTC"))}))
    state = RedisAggregationState(store.client, redis_project, router=store._router)
    layout = _layout()
    state.add(layout, [KEY((7,))], [T0], [b"e1"], [b"payload"], T0 - 10**9)
    clients = primaries(redis_cluster)
    keys = [k for c in clients.values() for k in c.keys(f"{redis_project}*")]
    assert len(keys) == 3  # the entity's hash (both views share it), its zset and its event hash
    slots = {key_slot(k) for k in keys}
    assert len(slots) == 1
    (slot,) = slots
    assert {int(c.execute_command("CLUSTER", "KEYSLOT", k)) for c in clients.values() for k in keys} == {slot}
    node = owner(clients, slot)
    assert all(clients[node].exists(k) for k in keys)
    assert state.read(layout, [KEY((7,)), KEY((8,))], T0 - 1, T0) == [[(T0, b"payload")], None]


def _layout():
    from datetime import timedelta

    from featurestore import Aggregation, Entity, FeatureView, Field, FileSource

    view = FeatureView(name="trips", entities=[Entity(name="driver", join_keys=["driver_id"])],
                       schema=[Field("driver_id", Int64), Field("fare", Float64)], source=FileSource(path="t.parquet"),
                       aggregations=[Aggregation("fare", "sum", timedelta(hours=1))])
    return ViewLayout.of(view)


def test_a_read_of_many_entities_is_one_round_trip_per_node(store, redis_cluster, monkeypatch):
    drivers = list(range(100))
    store.write_batch(VIEW, rows(drivers))
    clients = primaries(redis_cluster)
    expected = Counter(owner(clients, key_slot(store._prefix + hash_tagged(KEY((d,))))) for d in drivers)
    assert len(expected) == 3  # 100 entities spread over every primary

    sends: list[int] = []
    real = redis.connection.Connection.send_packed_command

    def counting(conn, *args, **kwargs):
        sends.append(conn.port)
        return real(conn, *args, **kwargs)

    before, moved_before = stats(clients, "hmget"), moved(clients)
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    got = store.read([(VIEW, VIEW.features, [(d,) for d in drivers])])[0]
    monkeypatch.undo()
    after = stats(clients, "hmget")
    assert [r[1] for r in got] == [(0.5 + d, d, f"c{d}") for d in drivers]
    assert {p: after[p] - before[p] for p in clients} == dict(expected)  # each HMGET went to its slot's node
    assert moved(clients) == moved_before  # none had to be redirected
    assert Counter(sends) == {p: 1 for p in expected}  # one round trip per node

    async_sends: list[int] = []
    real_async = AsyncRoundTrips.send

    async def counting_async(trips, commands, deadline):
        async_sends.append(trips._options["port"])
        return await real_async(trips, commands, deadline)

    monkeypatch.setattr(AsyncRoundTrips, "send", counting_async)

    async def read_twice():
        first = await store.read_async([(VIEW, VIEW.features, [(d,) for d in drivers])])
        async_sends.clear()  # the first read loaded the slot map; count the second
        second = await store.read_async([(VIEW, VIEW.features, [(d,) for d in drivers])])
        await store.aclose()
        return first, second

    first, second = asyncio.run(read_twice())
    assert first == second == [got]
    assert Counter(async_sends) == {p: 1 for p in expected}


def test_a_write_batch_is_one_round_trip_per_node_with_one_script_call_per_slot(store, redis_cluster, monkeypatch):
    drivers = list(range(300))
    clients = primaries(redis_cluster)
    slots = {key_slot(store._prefix + hash_tagged(KEY((d,)))) for d in drivers}
    per_node = Counter(owner(clients, s) for s in slots)
    sends: list[int] = []
    real = redis.connection.Connection.send_packed_command

    def counting(conn, *args, **kwargs):
        sends.append(conn.port)
        return real(conn, *args, **kwargs)

    store.write_batch(VIEW, rows(drivers))  # connects to every node and loads the scripts there
    before = stats(clients, "evalsha")
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command", counting)
    assert store.write_batch(VIEW, rows(drivers, ts=T0 + 1)) == 300
    monkeypatch.undo()
    after = stats(clients, "evalsha")
    assert {p: after[p] - before[p] for p in clients} == dict(per_node)
    assert Counter(sends) == {p: 1 for p in per_node}
    assert [r[1][0] for r in store.read([(VIEW, ("trips",), [(d,) for d in drivers])])[0]] == drivers


def test_a_stale_slot_map_is_corrected_by_moved_replies(store, redis_cluster):
    store.write_batch(VIEW, rows(list(range(50))))
    router = store._router
    wrong = router.slots.primaries()[0]
    router.slots.nodes = [wrong] * SLOTS  # as if every slot had moved away since the map was loaded
    router.slots.stale = False
    got = store.read([(VIEW, ("trips",), [(d,) for d in range(50)])])[0]
    assert [r[1][0] for r in got] == list(range(50))
    assert len(router.slots.primaries()) == 3  # reloaded from CLUSTER SLOTS

    router.slots.nodes = [wrong] * SLOTS
    router.slots.stale = False

    async def read():
        try:
            return await store.read_async([(VIEW, ("trips",), [(d,) for d in range(50)])])
        finally:
            await store.aclose()

    assert asyncio.run(read())[0] == got


def test_a_migrating_slot_is_followed_with_ask(store, redis_cluster, redis_project):
    """A real slot migration half done: keys not yet moved answer at the source, the others
    by ASK at the target; reads and writes see one consistent store throughout."""
    clients = primaries(redis_cluster)
    ids = {port: c.execute_command("CLUSTER", "MYID").decode() for port, c in clients.items()}
    key = lambda d: store._prefix + hash_tagged(KEY((d,)))  # noqa: E731
    slot = key_slot(key(1))
    same_slot = [d for d in range(2, 200_000) if key_slot(key(d)) == slot][:1]
    assert same_slot, "no second driver in the same slot"
    second = same_slot[0]
    store.write_batch(VIEW, rows([1]))
    source = owner(clients, slot)
    target = next(p for p in clients if p != source)
    src, dst = clients[source], clients[target]
    dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
    src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target])
    try:
        asks_before = sum(c.info("errorstats").get("errorstat_ASK", {}).get("count", 0) for c in clients.values())
        store.write_batch(VIEW, rows([second]))  # a new key of a migrating slot goes to the target
        pipe = dst.pipeline(transaction=False)
        pipe.execute_command("ASKING")
        pipe.exists(key(second))
        assert pipe.execute()[1] == 1
        got = store.read([(VIEW, ("trips",), [(1,), (second,)])])[0]
        assert [r[1][0] for r in got] == [1, second]
        asks = sum(c.info("errorstats").get("errorstat_ASK", {}).get("count", 0) for c in clients.values())
        assert asks > asks_before
    finally:
        while left := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000):  # other tests' keys too
            src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "REPLACE", "KEYS", *left)
        for c in clients.values():
            c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target])
    redis_cluster.wait_healthy()
    got = store.read([(VIEW, ("trips",), [(1,), (second,)])])[0]  # MOVED now: the map follows
    assert [r[1][0] for r in got] == [1, second]


def test_scripts_forgotten_by_every_node_are_loaded_again(store, redis_cluster):
    store.write_batch(VIEW, rows([1, 2, 3]))
    for c in primaries(redis_cluster).values():
        c.script_flush()
    store.write_batch(VIEW, rows([1, 2, 3], ts=T0 + 1))
    assert [r[0] for r in store.read([(VIEW, ("trips",), [(1,), (2,), (3,)])])[0]] == [T0 + 1] * 3


def test_health_pings_every_primary(store, redis_cluster):
    store.health()

    async def ping():
        try:
            await store.health_async()
        finally:
            await store.aclose()

    asyncio.run(ping())
    assert store.location.startswith("redis+cluster://")


def test_cluster_urls_and_config(tmp_path):
    assert is_cluster_url("redis+cluster://h:1") and is_cluster_url("rediss+cluster://h:1")
    assert not is_cluster_url("redis://h:1/0")
    assert plain_url("rediss+cluster://:pw@h:1") == "rediss://:pw@h:1"
    assert cluster_url("redis://h:7000") == "redis+cluster://h:7000"
    with pytest.raises(ConfigError, match="redis\\+cluster://"):
        cluster_url("unix:///tmp/redis.sock")
    with pytest.raises(ConfigError, match="database 0"):
        ClusterRouter("redis+cluster://h:7000/2", "p")
    (tmp_path / "featurestore.yaml").write_text(
        "project: p\nonline_store:\n  type: redis\n  cluster: true\n  connection_string: redis://:pw@h:7000\n")
    config = load_config(tmp_path, env={})
    assert config.online_store.connection_string == "redis+cluster://:pw@h:7000"
    assert "pw" not in repr(config.online_store)
    (tmp_path / "featurestore.yaml").write_text(
        "project: p\nonline_store:\n  type: redis\n  cluster: 'yes'\n  connection_string: redis://h:7000\n")
    with pytest.raises(ConfigError, match="online_store.cluster must be true or false"):
        load_config(tmp_path, env={})


def test_feasts_redis_cluster_setting_reaches_the_cluster(tmp_path, redis_cluster, redis_project):
    from featurestore.backends import open_online_store

    node = plain_url(redis_cluster.url).partition("://")[2]  # Feast's connection_string: host:port
    (tmp_path / "feature_store.yaml").write_text(f"project: {redis_project}\nprovider: local\nonline_store:\n"
                                                 f"  type: redis\n  redis_type: redis_cluster\n"
                                                 f"  connection_string: {node}\n")
    config = load_config(tmp_path, env={})
    store = open_online_store(config.online_store, config.project)
    try:
        store.write_batch(VIEW, rows([1, 2, 3, 4, 5, 6]))
        got = store.read([(VIEW, ["trips"], [(2,), (6,), (9,)])])[0]
        assert [r and r[1] for r in got] == [(2,), (6,), None]
        assert store.location.startswith("redis+cluster://")
    finally:
        store.close()
    keys = [k for c in primaries(redis_cluster).values() for k in c.keys(f"{redis_project}*")]
    assert len({key_slot(k) for k in keys}) > 1  # spread over the cluster's slots, not one server
