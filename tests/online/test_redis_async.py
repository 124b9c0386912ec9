"""The Redis store's reads on the event loop (the server's hot path), against real Redis:
the same answers as the blocking client, one pipelined round trip, error replies, the
deadline, credentials, and connections Redis dropped."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from featurestore.errors import StoreUnavailableError
from featurestore.online.base import OnlineView
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.online.redis import RedisOnlineStore
from featurestore.types import Float64, String

from ..conftest import _start_redis, _stop
from .test_redis_store import VIEW, batch

OTHER = OnlineView("driver_quality", ("driver_id",), ("rating", "tier"), (Float64, String))


@pytest.fixture
def store(redis_url, redis_project):
    store = RedisOnlineStore(redis_url, redis_project, read_timeout=5.0)
    store.write_batch(VIEW, batch(20))
    yield store
    store.close()


def run(coroutine):
    return asyncio.run(coroutine)


def test_async_reads_answer_as_the_blocking_read_for_many_entities_and_views(store):
    import pyarrow as pa

    from featurestore.online.base import EVENT_TIMESTAMP

    store.write_batch(OTHER, pa.table({"driver_id": [3, 4], "rating": [4.5, None], "tier": ["gold", "silver"],
                                       EVENT_TIMESTAMP: pa.array([1, 2], pa.timestamp("us", tz="UTC"))}))
    requests = [(VIEW, ("trips", "conv_rate", "city"), [(i,) for i in (0, 7, 3, 99, 3, 19)]),
                (OTHER, ("tier", "rating"), [(3,), (4,), (5,)]),
                (VIEW, ["city"], [])]
    blocking = store.read(requests)
    assert run(store.read_async(requests)) == blocking
    assert blocking[0][1][1] == (None, 0.07, "city-7") and blocking[0][3] is None
    assert blocking[1] == [(1, ("gold", 4.5)), (2, ("silver", None)), None]


def test_concurrent_reads_on_one_loop_each_get_their_own_answer(store):
    async def many():
        return await asyncio.gather(*(store.read_async([(VIEW, ("city",), [(i,)])]) for i in range(20)))

    answers = run(many())
    assert [rows[0][0][1] for rows in answers] == [(f"city-{i}",) for i in range(20)]


def test_an_error_reply_is_store_unavailable_and_the_next_read_works(store, redis_client):
    key = f"{store.project}:".encode() + entity_key_encoder(("driver_id",))((500,))
    redis_client.set(key, b"not a hash")

    async def reads():
        with pytest.raises(StoreUnavailableError, match="WRONGTYPE") as info:
            await store.read_async([(VIEW, ("city",), [(1,), (500,), (2,)])])
        assert store.url in str(info.value)
        return await store.read_async([(VIEW, ("city",), [(1,), (2,)])])

    assert [row[1] for row in run(reads())[0]] == [("city-1",), ("city-2",)]


def test_a_connection_redis_dropped_while_idle_is_replaced_within_the_read(store, redis_client):
    async def reads():
        first = await store.read_async([(VIEW, ("city",), [(1,)])])
        mine = [c["id"] for c in redis_client.client_list() if c["name"] == f"featurestore:{store.project}"]
        assert mine
        for client_id in mine:
            redis_client.client_kill_filter(_id=client_id)
        await asyncio.sleep(0.05)
        again = await store.read_async([(VIEW, ("city",), [(1,)])])
        assert again == first
        await store.aclose()

    run(reads())


def test_credentials_and_database_from_the_url(redis_url, redis_client, redis_project):
    parts = urlsplit(redis_url)
    if parts.password:
        pytest.skip("REDIS_URL already carries a password")
    user = f"{redis_project}-user"
    redis_client.acl_setuser(user, enabled=True, passwords=["+right-pw"], keys=["*"], commands=["+@all"])
    try:
        good = urlunsplit(parts._replace(netloc=f"{user}:right-pw@{parts.netloc}", path="/3"))
        writer = RedisOnlineStore(good, redis_project, read_timeout=5.0)
        writer.write_batch(VIEW, batch(2))
        assert run(writer.read_async([(VIEW, ("city",), [(1,)])]))[0][0][1] == ("city-1",)
        assert run(RedisOnlineStore(redis_url, redis_project).read_async([(VIEW, ("city",), [(1,)])])) == [[None]]
        writer.client.flushdb()
        writer.close()

        bad = urlunsplit(parts._replace(netloc=f"{user}:wrong-pw@{parts.netloc}"))
        with pytest.raises(StoreUnavailableError, match="refused the credentials") as info:
            run(RedisOnlineStore(bad, redis_project).read_async([(VIEW, ("city",), [(1,)])]))
        assert "wrong-pw" not in str(info.value)
    finally:
        redis_client.acl_deluser(user)


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")
def test_a_hung_redis_fails_every_read_in_flight_at_the_deadline_then_reads_recover(tmp_path, redis_project):
    started = _start_redis(shutil.which("redis-server"), tmp_path)
    assert started is not None
    proc, url = started
    store = RedisOnlineStore(url, redis_project, read_timeout=0.3)
    store.write_batch(VIEW, batch(3))
    read = [(VIEW, ("city",), [(2,)])]

    async def scenario():
        await asyncio.gather(*(store.read_async(read) for _ in range(4)))  # four idle connections
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            began = time.monotonic()
            outcomes = await asyncio.gather(*(_later(store, read, i * 0.05) for i in range(6)),
                                            return_exceptions=True)
            elapsed = time.monotonic() - began
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert all(isinstance(o, StoreUnavailableError) for o in outcomes), outcomes
        assert "did not answer within 0.3 s" in str(outcomes[0])
        assert 0.3 <= elapsed < 0.3 + 0.25 + 2.0  # the last read started 0.25 s in; room for busy cores
        assert await store.read_async(read) == [[(store.read(read)[0][0][0], ("city-2",))]]

    try:
        run(scenario())
    finally:
        store.close()
        _stop(proc)


async def _later(store, read, delay):
    await asyncio.sleep(delay)
    return await store.read_async(read)
