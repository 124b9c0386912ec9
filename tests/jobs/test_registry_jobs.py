"""registry.jobs: job records and locks in the registry (no feature store involved), on
both backends: a new SQLite file and a new PostgreSQL schema."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from registry import Registry, RegistryError

T0 = datetime(2024, 5, 1, tzinfo=timezone.utc)
H = timedelta(hours=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def reg(request, tmp_path):
    location = tmp_path / "registry.db" if request.param == "sqlite" else request.getfixturevalue("postgres_registry_url")
    with Registry.open(location) as r:
        yield r


def test_a_run_is_recorded_from_start_to_finish(reg):
    job = reg.jobs.start("p", "v", "manual", T0, T0 + H, "me@host:1:x")
    assert (job.status, job.window_start, job.window_end, job.attempt) == ("running", T0, T0 + H, 1)
    done = reg.jobs.finish("p", job.id, "succeeded", rows=42)
    assert (done.status, done.rows, done.error) == ("succeeded", 42, None)
    assert done.ended_at >= done.started_at and done.seconds >= 0
    assert reg.jobs.get("p", job.id) == done
    assert reg.jobs.get("other", job.id) is None


def test_list_filters_newest_first(reg):
    a = reg.jobs.start("p", "v", "scheduled", None, T0, "o")
    b = reg.jobs.start("p", "w", "backfill", T0, T0 + H, "o", batch="b1", attempt=2)
    c = reg.jobs.start("p", "v", "manual", T0, T0 + H, "o")
    reg.jobs.start("q", "v", "manual", T0, T0 + H, "o")
    reg.jobs.finish("p", b.id, "failed", error="boom")
    reg.jobs.finish("p", c.id, "interrupted", error="stopped")
    ids = lambda records: [r.id for r in records]  # noqa: E731
    assert ids(reg.jobs.list("p")) == [c.id, b.id, a.id]
    assert ids(reg.jobs.list("p", target="v")) == [c.id, a.id]
    assert ids(reg.jobs.list("p", statuses=["failed", "interrupted"])) == [c.id, b.id]
    assert ids(reg.jobs.list("p", trigger="backfill", batch="b1")) == [b.id]
    assert ids(reg.jobs.list("p", limit=1)) == [c.id]
    assert reg.jobs.list("p", target="w")[0].to_dict()["error"] == "boom"


def test_windows_are_the_succeeded_ones_sorted(reg):
    for start in (T0 + H, None, T0):
        job = reg.jobs.start("p", "v", "backfill", start, (start or T0) + H, "o")
        reg.jobs.finish("p", job.id, "succeeded", rows=1)
    failed = reg.jobs.start("p", "v", "backfill", T0 + 5 * H, T0 + 6 * H, "o")
    reg.jobs.finish("p", failed.id, "failed", error="x")
    assert reg.jobs.windows("p", "v") == [(None, T0 + H), (T0, T0 + H), (T0 + H, T0 + 2 * H)]
    assert reg.jobs.windows("p", "v", "failed") == [(T0 + 5 * H, T0 + 6 * H)]


def test_interrupt_running_marks_only_that_targets_running_records(reg):
    a = reg.jobs.start("p", "v", "backfill", T0, T0 + H, "dead")
    b = reg.jobs.start("p", "w", "backfill", T0, T0 + H, "alive")
    c = reg.jobs.start("p", "v", "backfill", T0 + H, T0 + 2 * H, "dead")
    reg.jobs.finish("p", c.id, "succeeded", rows=1)
    [stale] = reg.jobs.interrupt_running("p", "v", "lock expired")
    assert stale.id == a.id
    assert reg.jobs.get("p", a.id).status == "interrupted"
    assert reg.jobs.get("p", a.id).error == "lock expired"
    assert reg.jobs.get("p", b.id).status == "running"
    assert reg.jobs.get("p", c.id).status == "succeeded"


def test_summary_groups_finished_runs(reg):
    for trigger, status, rows in (("backfill", "succeeded", 5), ("backfill", "succeeded", 7),
                                  ("backfill", "failed", None), ("scheduled", "succeeded", 1)):
        job = reg.jobs.start("p", "v", trigger, T0, T0 + H, "o")
        reg.jobs.finish("p", job.id, status, rows=rows)
    reg.jobs.start("p", "v", "manual", T0, T0 + H, "o")  # running: not in the summary
    backfill, scheduled = reg.jobs.summary("p", bounds=(0.0, 3600.0))
    assert (backfill.target, backfill.trigger, backfill.runs, backfill.rows) == (
        "v", "backfill", {"succeeded": 2, "failed": 1}, 12)
    assert backfill.buckets[1] == 3 and backfill.last_success is not None
    assert (scheduled.trigger, scheduled.runs) == ("scheduled", {"succeeded": 1})


def test_bad_inputs_raise_registry_errors(reg):
    with pytest.raises(RegistryError, match="job target"):
        reg.jobs.start("p", "", "manual", None, T0, "o")
    with pytest.raises(RegistryError, match="datetimes"):
        reg.jobs.start("p", "v", "manual", None, "2024-01-01", "o")
    job = reg.jobs.start("p", "v", "manual", None, T0, "o")
    with pytest.raises(RegistryError, match="succeeded, failed or interrupted"):
        reg.jobs.finish("p", job.id, "running")
    with pytest.raises(RegistryError, match="no job 999"):
        reg.jobs.finish("p", 999, "failed")


def test_locks_are_exclusive_until_released_or_expired(reg):
    jobs = reg.jobs
    assert jobs.acquire_lock("p", "l", "a", ttl=10, now=100).owner == "a"
    held = jobs.acquire_lock("p", "l", "b", ttl=10, now=105)
    assert (held.owner, held.expires_at) == ("a", 110)
    assert jobs.acquire_lock("p", "l", "a", ttl=10, now=105).expires_at == 115  # re-entrant for its owner
    assert jobs.acquire_lock("q", "l", "b", ttl=10, now=105).owner == "b"  # projects are apart
    assert not jobs.release_lock("p", "l", "b")
    assert not jobs.renew_lock("p", "l", "b", ttl=10, now=106)
    assert jobs.renew_lock("p", "l", "a", ttl=10, now=106)
    assert jobs.get_lock("p", "l", now=115.9).owner == "a"
    assert jobs.get_lock("p", "l", now=116) is None  # expired
    assert not jobs.renew_lock("p", "l", "a", ttl=10, now=116)  # too late: it may be someone else's
    assert jobs.acquire_lock("p", "l", "b", ttl=10, now=116).owner == "b"
    assert not jobs.release_lock("p", "l", "a")
    assert jobs.release_lock("p", "l", "b")
    assert jobs.get_lock("p", "l", now=116) is None


def test_a_registry_made_before_the_job_tables_gets_them_on_first_use(tmp_path):
    path = tmp_path / "old.db"
    Registry.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE jobs")
    conn.execute("DROP TABLE locks")
    conn.commit()
    conn.close()
    with Registry.open(path) as reg:
        assert reg.jobs.list("p") == []
        assert reg.jobs.acquire_lock("p", "l", "a", 10, 0).owner == "a"
