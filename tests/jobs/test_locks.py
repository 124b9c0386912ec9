"""The lock protocol on both backends: the registry (an SQLite file, a PostgreSQL schema)
and a real Redis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from featurestore.jobs.locks import LockBusyError, RegistryLocks, acquire, describe_owner, owner_id
from featurestore.jobs.redis_locks import RedisLocks
from registry import Registry

from .conftest import Clock


@pytest.fixture(params=["registry", "postgresql-registry", "redis", "redis-cluster"])
def backend(request, tmp_path):
    if request.param.endswith("registry"):
        location = tmp_path / "registry.db" if request.param == "registry" else request.getfixturevalue(
            "postgres_registry_url")
        reg = Registry.open(location)
        yield RegistryLocks(reg, "p")
        reg.close()
    else:
        url = request.getfixturevalue("redis_cluster_url" if request.param == "redis-cluster" else "redis_url")
        locks = RedisLocks(url, request.getfixturevalue("redis_project"))
        yield locks
        locks.close()


def test_one_holder_at_a_time(backend):
    a, b = owner_id("a"), owner_id("b")
    assert backend.acquire("v", a, 30).owner == a
    assert backend.acquire("v", b, 30).owner == a
    assert backend.holder("v").owner == a
    assert backend.acquire("v", a, 30).owner == a  # the holder may take it again
    assert backend.acquire("w", b, 30).owner == b  # other names are independent
    assert not backend.release("v", b) and not backend.renew("v", b, 30)
    assert backend.renew("v", a, 30)
    assert backend.release("v", a)
    assert backend.holder("v") is None
    assert backend.acquire("v", b, 30).owner == b


def test_acquire_raises_lock_busy_naming_the_holder(backend):
    holder = owner_id("scheduler")
    backend.acquire("materialize:v", holder, 30)
    with pytest.raises(LockBusyError, match=r"feature view 'v' is being run by scheduler on .* \(pid \d+\)") as info:
        acquire(backend, "materialize:v", owner_id("materialize"), 30, what="feature view 'v'")
    assert info.value.holder.owner == holder


def test_acquire_waits_for_a_release(backend):
    first = acquire(backend, "v", owner_id("a"), 30, renew=False)
    released = []

    def sleep(seconds):  # the waiting side's sleep: release on its first wait
        if not released:
            first.release()
            released.append(seconds)

    with acquire(backend, "v", owner_id("b"), 30, wait=60, sleep=sleep, renew=False) as second:
        assert backend.holder("v").owner == second.owner
    assert released and backend.holder("v") is None


def test_registry_lock_of_a_dead_holder_expires(tmp_path):
    clock = Clock(1000.0)
    with Registry.open(tmp_path / "registry.db") as reg:
        locks = RegistryLocks(reg, "p", clock)
        locks.acquire("v", "dead", 60)
        clock.advance(59.9)
        assert locks.acquire("v", "new", 60).owner == "dead"
        clock.advance(0.1)
        assert locks.holder("v") is None
        assert locks.acquire("v", "new", 60).owner == "new"
        assert not locks.release("v", "dead")


def test_redis_lock_of_a_killed_process_expires(redis_url, redis_project):
    # A real holder process, killed without a chance to release: Redis expires its key.
    script = textwrap.dedent(f"""
        import sys, time
        from featurestore.jobs.redis_locks import RedisLocks
        locks = RedisLocks({redis_url!r}, {redis_project!r})
        assert locks.acquire("v", "doomed", 0.5).owner == "doomed"
        print("held", flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
    finally:
        proc.kill()
        proc.wait()
    locks = RedisLocks(redis_url, redis_project)
    try:
        deadline = time.monotonic() + 30
        while locks.acquire("v", "next", 30).owner != "next":
            assert time.monotonic() < deadline, "the dead holder's lock never expired"
            time.sleep(0.05)
    finally:
        locks.close()


class CountingLocks:
    """A backend that reports each renewal, so heartbeat tests wait on events, not time."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []
        self.changed = threading.Condition()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def renew(self, name, owner, ttl):
        ok = self.inner.renew(name, owner, ttl)
        with self.changed:
            self.results.append(ok)
            self.changed.notify_all()
        return ok

    def next_renewal(self) -> bool:
        """Wait for a renewal that starts after this call; its result."""
        with self.changed:
            seen = len(self.results)
            assert self.changed.wait_for(lambda: len(self.results) > seen + 1, timeout=30)
            return self.results[-1]


def test_a_lease_heartbeat_keeps_the_lock_past_its_ttl_and_notices_a_loss(tmp_path):
    clock = Clock(1000.0)
    with Registry.open(tmp_path / "registry.db") as reg:
        locks = CountingLocks(RegistryLocks(reg, "p", clock))
        lease = acquire(locks, "v", "me", ttl=0.3)  # renews every 0.1 s of real time
        for _ in range(3):
            clock.advance(0.2)  # each step alone is inside the ttl, the sum is not
            assert locks.next_renewal() is True
            assert locks.acquire("v", "other", 0.3).owner == "me"
        clock.advance(10)  # a stall longer than the ttl: the next renewal finds it expired
        lease._thread.join(timeout=30)
        assert lease.lost and locks.results[-1] is False
        assert locks.acquire("v", "other", 0.3).owner == "other"
        lease.release()  # does not free the new holder's lock
        assert locks.holder("v").owner == "other"


def test_owners_name_what_and_where():
    assert describe_owner(owner_id("backfill")).startswith("backfill on ")
