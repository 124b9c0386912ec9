"""The scheduler: windows end at fire times, each window runs once, applies are picked up
without a restart, and a stop lets the running job finish or records it as interrupted."""

from __future__ import annotations

import threading

import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.jobs import Schedule, Scheduler
from featurestore.jobs.locks import view_lock

from .conftest import NOW, VIEW, Clock, days, make_repo, open_store

HOURLY = "scheduler:\n  lock_wait: 0\n  views:\n    driver_hourly_stats: 1h\n    driver_hourly_stats_fresh: null\n"
H = 3600.0


@pytest.fixture
def hourly_repo(tmp_path):
    return make_repo(tmp_path / "repo", scheduler_yaml=HOURLY)


@pytest.fixture
def hourly_store(hourly_repo):
    with open_store(hourly_repo) as s:
        s.apply()
        yield s


def test_each_fire_runs_the_window_from_the_watermark_to_the_fire_time(hourly_store):
    clock = Clock(NOW.timestamp() + H / 2)
    scheduler = Scheduler(hourly_store, clock=clock)
    scheduler.sync()
    assert scheduler.schedules == {VIEW: Schedule.parse("1h")}

    first = scheduler.fire(VIEW)
    assert (first.trigger, first.status, first.rows) == ("scheduled", "succeeded", 5)
    assert (first.window_start, first.window_end) == (NOW - days(1), NOW)  # first run: end - ttl
    assert first.owner.startswith("scheduler@")
    assert scheduler.fire(VIEW) is None  # this fire time's window already ran
    clock.advance(H)
    second = scheduler.fire(VIEW)
    assert (second.window_start, second.window_end) == (NOW, NOW + days(1 / 24))
    assert second.rows == 5  # the rows at NOW again: windows share their boundary; rewriting changes nothing
    assert hourly_store.materializer.watermark(VIEW) == NOW + days(1 / 24)
    assert scheduler.run_due() == []


@pytest.mark.parametrize("online", ["sqlite", "redis"])
def test_two_schedulers_firing_at_once_run_each_window_once(hourly_repo, online, request):
    env = {"FEATURESTORE_REDIS_URL": request.getfixturevalue("redis_url")} if online == "redis" else {}
    clock = Clock(NOW.timestamp() + 60)
    stores = [FeatureStore(config=load_config(hourly_repo, env=env)) for _ in range(2)]
    try:
        stores[0].apply()
        schedulers = [Scheduler(s, clock=clock) for s in stores]
        for s in schedulers:
            s.sync()
        assert type(schedulers[0].locks).__name__ == ("RedisLocks" if online == "redis" else "RegistryLocks")
        for _ in range(3):
            barrier = threading.Barrier(2)
            results = []

            def fire(scheduler):
                barrier.wait()
                results.append(scheduler.fire(VIEW))

            threads = [threading.Thread(target=fire, args=(s,)) for s in schedulers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len([r for r in results if r is not None]) == 1
            clock.advance(H)
        records = stores[0].registry.jobs.list(stores[0].project)
        assert sorted(r.window_end for r in records) == [NOW, NOW + days(1 / 24), NOW + days(2 / 24)]
        assert {r.status for r in records} == {"succeeded"}
        for s in schedulers:
            s.stop(grace=0)
    finally:
        for s in stores:
            s.close()


def test_applies_are_picked_up_without_a_restart(tmp_path):
    repo = make_repo(tmp_path / "repo")
    definitions = repo / "features" / "driver_stats.py"
    with open_store(repo) as store, open_store(repo) as cli:
        store.apply()
        scheduler = Scheduler(store)
        scheduler.sync()
        assert scheduler.schedules == {}
        assert not scheduler.sync()  # nothing changed

        text = definitions.read_text()
        definitions.write_text(text.replace('tags={"team": "driver_performance"},',
                                            'tags={"team": "driver_performance"}, schedule="*/5 * * * *",'))
        cli.apply()  # another process applies
        assert scheduler.sync()
        assert scheduler.schedules == {VIEW: Schedule.parse("*/5 * * * *")}
        assert scheduler._aps.get_job(VIEW) is not None

        definitions.write_text(text)
        cli.apply()
        assert scheduler.sync()
        assert scheduler.schedules == {} and scheduler._aps.get_job(VIEW) is None


def _paused_run(store):
    """A scheduler whose run of the first window pauses inside the offline read."""
    engine = store.offline
    engine.pause = (NOW - days(1), NOW)
    scheduler = Scheduler(store, clock=Clock(NOW.timestamp()))
    scheduler.sync()
    results = []
    job = threading.Thread(target=lambda: results.append(scheduler.fire(VIEW)))
    job.start()
    assert engine.paused.wait(30)
    return scheduler, engine, job, results


def test_a_stop_lets_the_running_job_finish_its_window(hourly_store):
    scheduler, engine, job, results = _paused_run(hourly_store)
    stopper = threading.Thread(target=scheduler.stop, kwargs={"grace": 600})
    stopper.start()
    stopper.join(0.5)
    assert stopper.is_alive()  # waiting for the running job
    engine.release.set()
    job.join(30)
    stopper.join(30)
    assert results[0].status == "succeeded" and results[0].rows == 5
    assert scheduler.fire(VIEW) is None  # stopped: no new runs
    assert scheduler.locks.holder(view_lock(VIEW)) is None


def test_a_job_still_running_after_the_grace_is_recorded_as_interrupted(hourly_store):
    scheduler, engine, job, results = _paused_run(hourly_store)
    stopper = threading.Thread(target=scheduler.stop, kwargs={"grace": 0})
    stopper.start()
    assert scheduler._cancel.wait(30)
    engine.release.set()
    job.join(30)
    stopper.join(30)
    assert results == [None]  # the failure is logged, the scheduler goes on stopping
    [record] = hourly_store.registry.jobs.list(hourly_store.project)
    assert record.status == "interrupted" and "stopped after writing" in record.error
    assert hourly_store.materializer.watermark(VIEW) is None  # the next run covers the window again
    assert scheduler.locks.holder(view_lock(VIEW)) is None
