"""A primary of a real Redis Cluster killed mid-traffic: its replica is promoted, and the
online store's readers and writers carry on.

What a caller sees meanwhile (docs/scaling.md): a blocking write or read waits, retrying
against a reloaded slot map, and succeeds once the replica is promoted; a server read
(``read_async``) of a slot of the dead primary fails with StoreUnavailableError at its
deadline (HTTP 503) until then, and reads of the other slots go on answering."""

from __future__ import annotations

import asyncio
import threading
import time

import pyarrow as pa
import pytest

from featurestore.errors import StoreUnavailableError
from featurestore.online.base import EVENT_TIMESTAMP, OnlineView
from featurestore.online.entity_keys import entity_key_encoder
from featurestore.online.redis import RedisOnlineStore
from featurestore.online.redis_cluster import hash_tagged, key_slot
from featurestore.types import Int64

T0 = 1_700_000_000_000_000
VIEW = OnlineView("counts", ("driver_id",), ("n",), (Int64,))
DRIVERS = list(range(60))
KEY = entity_key_encoder(("driver_id",))


def batch(n: int) -> pa.Table:
    return pa.table({"driver_id": pa.array(DRIVERS, pa.int64()), "n": [n] * len(DRIVERS),
                     EVENT_TIMESTAMP: pa.array([T0 + n] * len(DRIVERS), pa.timestamp("us", tz="UTC"))})


def values(rows) -> set:
    return {None if r is None else r[1][0] for r in rows}


def test_readers_and_writers_survive_a_primary_failover(redis_cluster, redis_cluster_url, redis_project):
    writer_store = RedisOnlineStore(redis_cluster_url, redis_project, retry_seconds=60)
    reader = RedisOnlineStore(redis_cluster_url, redis_project, read_timeout=0.5)
    request = [(VIEW, ("n",), [(d,) for d in DRIVERS])]
    writer_store.write_batch(VIEW, batch(0))
    slots = {key_slot(writer_store._prefix + hash_tagged(KEY((d,)))) for d in DRIVERS}
    victim = writer_store._router.slots.nodes[min(slots)][1]
    assert len({writer_store._router.slots.nodes[s] for s in slots}) == 3  # the entities span every primary
    promoted = redis_cluster.replica_of(victim)
    with redis_cluster.client(victim) as c:
        assert c.execute_command("WAIT", 1, 5000) == 1  # the replica has every write so far

    written: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:  # blocking writes: they wait out the failover
        n = 1
        while not stop.is_set():
            try:
                writer_store.write_batch(VIEW, batch(n))
                written.append(n)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)
                return
            n += 1
            time.sleep(0.01)

    thread = threading.Thread(target=write)
    thread.start()
    outcomes: list[str] = []

    async def read_through_the_failover() -> None:
        await reader.read_async(request)  # a running server: it has loaded the slot map
        while len(written) < 5:
            await asyncio.sleep(0.01)
        redis_cluster.kill(victim)
        while not _promoted(redis_cluster, promoted):
            try:
                rows = (await reader.read_async(request))[0]
                outcomes.append("ok" if None not in values(rows) else "missing")
            except StoreUnavailableError:
                outcomes.append("unavailable")  # the window: a 503, never a hang past the deadline
            await asyncio.sleep(0.02)
        await asyncio.to_thread(redis_cluster.wait_healthy, 60)
        after = len(written)
        for _ in range(20):  # promoted and known to every node: every read answers again
            rows = (await reader.read_async(request))[0]
            assert None not in values(rows)
            await asyncio.sleep(0.01)
        while len(written) < after + 5:  # and the writer goes on
            assert not failures, failures
            await asyncio.sleep(0.02)
        await reader.aclose()

    try:
        asyncio.run(read_through_the_failover())
    finally:
        stop.set()
        thread.join(timeout=120)
    try:
        assert not failures, failures
        assert set(outcomes) <= {"ok", "unavailable"}  # never a wrong or missing value
        last = written[-1]
        assert values(reader.read(request)[0]) == {last}  # every acknowledged write is there, newest wins
        print(f"failover: {outcomes.count('unavailable')} of {len(outcomes)} server reads answered 503 "
              f"while the replica was promoted; {len(written)} blocking writes, none failed")
    finally:
        writer_store.close()
        reader.close()
        redis_cluster.start(victim)  # back as a replica of the promoted node
        redis_cluster.wait_healthy(60)


def _promoted(cluster, port: int) -> bool:
    try:
        return any(n["port"] == port and n["primary"] for n in cluster.nodes())
    except Exception:  # noqa: BLE001 - a node busy with the election
        return False
