"""What only the Redis store has: its key layout, round trips, and lost connections."""

from __future__ import annotations

import socket
import struct
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pytest

from featurestore.errors import ConfigError, StoreUnavailableError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.online.redis import RedisOnlineStore
from featurestore.redaction import mask_url
from featurestore.types import Float64, Int64, String

T0 = 1_700_000_000_000_000
VIEW = OnlineView("driver_stats", ("driver_id",), ("conv_rate", "trips", "city"), (Float64, Int64, String))


def batch(n: int, ts: int = T0, start: int = 0) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({
        "driver_id": ids,
        "conv_rate": [i / 100 for i in ids],
        "trips": [i if i % 7 else None for i in ids],
        "city": [f"city-{i}" for i in ids],
        EVENT_TIMESTAMP: pa.array([ts + i for i in ids], pa.timestamp("us", tz="UTC")),
    })


def dump(client, project: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every hash of a project, keyed by entity key."""
    prefix = f"{project}:".encode()
    keys = client.scan_iter(match=prefix + b"*", count=1000, _type="hash")
    return {key[len(prefix):]: client.hgetall(key) for key in keys}


@pytest.fixture
def make_store(redis_url, redis_project):
    stores = []

    def make(suffix: str = "a", **options) -> RedisOnlineStore:
        store = RedisOnlineStore(redis_url, f"{redis_project}-{suffix}", **options)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def test_key_and_field_layout(make_store, redis_client):
    store = make_store()
    store.write_batch(VIEW, batch(1, start=7))
    key = f"{store.project}:".encode() + entity_key_encoder(("driver_id",))((7,))
    assert redis_client.hgetall(key) == {
        b"driver_stats:@ts": b"%d" % (T0 + 7),
        b"driver_stats:conv_rate": struct.pack("<d", 0.07),
        b"driver_stats:city": b"city-7",
    }  # trips is null for 7: no field at all


def test_views_of_one_entity_share_its_hash(make_store, redis_client):
    store = make_store()
    other = OnlineView("driver_quality", ("driver_id",), ("rating",), (Float64,))
    store.write_batch(VIEW, batch(1))
    store.write_batch(other, pa.table({"driver_id": [0], "rating": [4.5],
                                       EVENT_TIMESTAMP: pa.array([T0], pa.timestamp("us", tz="UTC"))}))
    [fields] = dump(redis_client, store.project).values()
    assert sorted(fields) == [b"driver_quality:@ts", b"driver_quality:rating", b"driver_stats:@ts",
                              b"driver_stats:city", b"driver_stats:conv_rate"]


def count_round_trips(store, monkeypatch) -> list:
    calls = []
    real = store._round_trip
    monkeypatch.setattr(store, "_round_trip", lambda commands: calls.append(len(commands)) or real(commands))
    return calls


def test_a_read_of_many_entities_and_views_is_one_round_trip(make_store, monkeypatch):
    store = make_store()
    other = OnlineView("other", ("customer_id",), ("x",), (Int64,))
    store.write_batch(VIEW, batch(100))
    calls = count_round_trips(store, monkeypatch)
    rows = store.read([(VIEW, ("trips", "city"), [(i,) for i in range(100)]), (other, ("x",), [(1,), (2,)])])
    assert calls == [102]
    assert rows[0][8] == (T0 + 8, (8, "city-8")) and rows[1] == [None, None]


def test_writes_are_pipelined_in_batches(make_store, monkeypatch):
    store = make_store(batch_size=10, batches_per_pipeline=3)
    calls = count_round_trips(store, monkeypatch)
    store.write_batch(VIEW, batch(95))
    assert calls == [3, 3, 3, 1]  # 10 Lua calls of <= 10 entities, 3 per round trip


def test_unreachable_at_startup_names_the_url_and_hides_the_password():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    for retries in (0, 3):
        store = RedisOnlineStore(f"redis://:s3cret@127.0.0.1:{port}/0", "p", retries=retries)
        for call in (store.health, lambda: store.read([(VIEW, ("trips",), [(1,)])]),
                     lambda: store.write_batch(VIEW, batch(3))):
            with pytest.raises(StoreUnavailableError) as info:
                call()
            message = str(info.value)
            assert f"redis://:***@127.0.0.1:{port}/0" in message and "s3cret" not in message
            assert "check that Redis is running" in message
        store.close()


def test_a_password_refused_is_reported_without_the_password(redis_url):
    parts = urlsplit(redis_url)
    if parts.password:
        pytest.skip("REDIS_URL already carries a password")
    url = urlunsplit(parts._replace(netloc=f"nobody:wrong-pw@{parts.netloc}"))
    store = RedisOnlineStore(url, "p", retries=0)
    with pytest.raises(StoreUnavailableError) as info:
        store.health()
    assert "wrong-pw" not in str(info.value) and "nobody:***@" in str(info.value)
    store.close()


def test_bad_connection_strings_and_projects():
    with pytest.raises(ConfigError, match="not a Redis URL"):
        RedisOnlineStore("http://localhost:6379", "p")
    with pytest.raises(ConfigError, match="project name"):
        RedisOnlineStore("redis://localhost:6379/0", "a:b")


def test_mask_url():
    assert mask_url("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert mask_url("rediss://:pw@host/1") == "rediss://:***@host/1"
    assert mask_url("redis://host:6379/0?password=pw&x=1") == "redis://host:6379/0?password=***&x=1"
    assert mask_url("redis://host:6379") == "redis://host:6379"
    assert mask_url("unix:///run/redis.sock?db=2") == "unix:///run/redis.sock?db=2"


def kill_connection_at(store: RedisOnlineStore, redis_client, round_trip: int, after_send: bool = False) -> None:
    """Have Redis drop ``store``'s connection (CLIENT KILL) during its round trip number
    ``round_trip``: before the commands are sent, or after (replies possibly in flight)."""
    pool, seen = store._pool, [0]
    real_get = pool.get_connection

    def kill() -> None:
        for client in redis_client.client_list():
            if client["name"] == f"featurestore:{store.project}":
                redis_client.client_kill_filter(_id=client["id"])

    def get_connection(*args, **kwargs):
        conn = real_get(*args, **kwargs)
        seen[0] += 1
        if seen[0] == round_trip:
            real_send = conn.send_packed_command

            def send(*a, **k):
                conn.send_packed_command = real_send  # only this once
                if not after_send:
                    kill()
                real_send(*a, **k)
                if after_send:
                    kill()

            conn.send_packed_command = send
        return conn

    pool.get_connection = get_connection


def test_a_rerun_after_a_lost_connection_completes_with_nothing_lost_or_doubled(make_store, redis_client):
    clean = make_store("clean")
    clean.write_batch(VIEW, batch(100))
    store = make_store("cut", batch_size=10, batches_per_pipeline=1, retries=0)
    store.write_batch(VIEW, batch(30, ts=T0 + 1000, start=50))  # newer rows, already there
    kill_connection_at(store, redis_client, round_trip=3)
    with pytest.raises(StoreUnavailableError, match="cannot reach"):
        store.write_batch(VIEW, batch(100))
    written = dump(redis_client, store.project)
    encode = entity_key_encoder(("driver_id",))
    assert all(encode((i,)) in written for i in range(20))  # the first two round trips landed
    assert not any(encode((i,)) in written for i in range(20, 50))  # the third was never run
    store.write_batch(VIEW, batch(100))  # the rerun
    expected = dump(redis_client, clean.project)
    for i in range(50, 80):  # except where newer rows were there before
        expected[encode((i,))] = dump(redis_client, store.project)[encode((i,))]
        assert expected[encode((i,))][b"driver_stats:@ts"] == b"%d" % (T0 + 1000 + i)
    assert dump(redis_client, store.project) == expected


@pytest.mark.parametrize("after_send", [False, True])
def test_a_lost_connection_is_retried_transparently(make_store, redis_client, after_send):
    clean = make_store("clean")
    clean.write_batch(VIEW, batch(100))
    store = make_store("cut", batch_size=10, batches_per_pipeline=2, retries=1)
    kill_connection_at(store, redis_client, round_trip=2, after_send=after_send)
    store.write_batch(VIEW, batch(100))
    assert dump(redis_client, store.project) == dump(redis_client, clean.project)
    assert store.read([(VIEW, ("city",), [(99,)])]) == [[(T0 + 99, ("city-99",))]]


def test_a_connection_lost_with_replies_in_flight_then_rerun(make_store, redis_client):
    clean = make_store("clean")
    clean.write_batch(VIEW, batch(100))
    store = make_store("cut", batch_size=10, batches_per_pipeline=5, retries=0)
    kill_connection_at(store, redis_client, round_trip=1, after_send=True)
    try:  # whether the replies beat the kill is up to the scheduler; the rerun fixes both
        store.write_batch(VIEW, batch(100))
    except StoreUnavailableError:
        pass
    store.write_batch(VIEW, batch(100))
    assert dump(redis_client, store.project) == dump(redis_client, clean.project)


def test_scripts_are_reloaded_when_redis_forgets_them(make_store, redis_client):
    store = make_store()
    store.write_batch(VIEW, batch(5))
    redis_client.script_flush()
    store.write_batch(VIEW, batch(5, ts=T0 + 10))
    redis_client.script_flush()
    store.delete_view(VIEW)
    assert dump(redis_client, store.project) == {}


def test_delete_view_pages_through_many_keys_and_skips_foreign_ones(make_store, redis_client):
    store, neighbour = make_store("a"), make_store("b")
    store.write_batch(VIEW, batch(2500))
    neighbour.write_batch(VIEW, batch(10))
    redis_client.set(f"{store.project}:not-ours", b"x")
    store.delete_view(VIEW)
    assert dump(redis_client, store.project) == {}
    assert redis_client.get(f"{store.project}:not-ours") == b"x"
    assert len(dump(redis_client, neighbour.project)) == 10
