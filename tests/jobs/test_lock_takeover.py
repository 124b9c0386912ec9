"""A lock whose holder died on this host is taken over at once, on both backends, and the
dead run's record says its process died; a holder that may be alive keeps its lock."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from featurestore.jobs.locks import LockBusyError, acquire, holder_is_dead, owner_id, view_lock

from .conftest import NOW, VIEW, make_repo, open_store
from .test_locks import backend  # noqa: F401 - the fixture: each test runs on both backends

LONG_TTL = "scheduler:\n  lock_ttl: 600s\n  lock_wait: 0\n"

# Materializes VIEW in a store on argv[1], halting (marker file touched) after the first
# batch is written, while it holds the view's lock and its job record says running.
HALTING_MATERIALIZE = textwrap.dedent("""
    import sys, time
    from datetime import datetime
    from featurestore import FeatureStore
    from featurestore.config import load_config
    from featurestore.offline.duckdb import DuckDBEngine

    repo, marker, end = sys.argv[1:4]
    env = {"FEATURESTORE_REDIS_URL": sys.argv[4]} if len(sys.argv) > 4 else {}
    config = load_config(repo, env=env)

    class Halt:
        def __init__(self, engine):
            self.engine = engine

        def __getattr__(self, name):
            return getattr(self.engine, name)

        def latest_rows(self, view, start, end, batch_rows=100_000):
            rows = self.engine.latest_rows(view, start, end, batch_rows).read_all()

            def halting():
                yield from rows.slice(0, 2).to_batches()
                open(marker, "w").close()
                time.sleep(600)

            return halting()

    store = FeatureStore(config=config, offline=Halt(DuckDBEngine(str(config.offline_store))))
    store.materialize(None, datetime.fromisoformat(end), ["driver_hourly_stats"])
""")


def _env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_a_rerun_takes_over_the_lock_of_a_killed_run_at_once(tmp_path, online, request):
    env = {"FEATURESTORE_REDIS_URL": request.getfixturevalue("redis_url")} if online == "redis" else {}
    repo = make_repo(tmp_path / "repo", scheduler_yaml=LONG_TTL)
    with open_store(repo, env) as store:
        store.apply()
        marker = tmp_path / "halted"
        proc = subprocess.Popen([sys.executable, "-c", HALTING_MATERIALIZE, str(repo), str(marker),
                                 NOW.isoformat(), *env.values()], env=_env())
        try:
            deadline = time.monotonic() + 120
            while not marker.exists():
                assert proc.poll() is None, f"the run exited early with {proc.returncode}"
                assert time.monotonic() < deadline, "the run never got there"
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        holder = store.locks.holder(view_lock(VIEW))
        assert holder is not None and f":{proc.pid}:" in holder.owner  # held for 10 more minutes
        [running] = store.registry.jobs.list(store.project, statuses=["running"])

        began = time.monotonic()
        [result] = store.materialize(None, NOW, [VIEW])  # lock_wait 0: no waiting either
        assert time.monotonic() - began < 30 and result.rows == 5
        dead = store.registry.jobs.get(store.project, running.id)
        assert dead.status == "interrupted"
        assert f"pid {proc.pid}" in dead.error and "died" in dead.error
        assert store.locks.holder(view_lock(VIEW)) is None  # released by the rerun


def test_acquire_takes_over_a_dead_holders_lock_and_says_so(backend, caplog):
    dead = f"backfill@{socket.gethostname()}:{_dead_pid()}:cafe0000"
    backend.acquire("v", dead, 600)
    me = owner_id("materialize")
    with caplog.at_level("WARNING", logger="featurestore.jobs"):
        lease = acquire(backend, "v", me, 600, renew=False)
    assert lease.taken_from == dead and backend.holder("v").owner == me
    assert "died" in caplog.text and "backfill on" in caplog.text
    lease.release()
    assert backend.holder("v") is None


def test_a_holder_that_may_be_alive_keeps_its_lock(backend):
    alive = owner_id("scheduler")  # this very process
    elsewhere = f"scheduler@{socket.gethostname()}-other:{_dead_pid()}:cafe0000"
    for holder in (alive, elsewhere, "scheduler", "unknown"):
        assert not holder_is_dead(holder)
        backend.acquire("v", holder, 600)
        with pytest.raises(LockBusyError):
            acquire(backend, "v", owner_id("materialize"), 600, renew=False)
        assert backend.release("v", holder)


def test_take_over_swaps_only_the_named_holder(backend):
    first, second = owner_id("a"), owner_id("b")
    backend.acquire("v", first, 600)
    assert not backend.take_over("v", second, owner_id("c"), 600)  # not the holder: no change
    assert backend.holder("v").owner == first
    assert backend.take_over("v", first, second, 600)
    assert not backend.take_over("v", first, owner_id("c"), 600)  # someone else won already
    assert backend.holder("v").owner == second
