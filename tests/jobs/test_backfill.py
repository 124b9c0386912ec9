"""Backfill: chunks, skip-done on rerun, retries with backoff, and the view's lock."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from featurestore.errors import InputError
from featurestore.jobs import LockBusyError, backfill
from featurestore.jobs.backfill import chunk_windows, covered
from featurestore.jobs.locks import acquire, owner_id, view_lock

from .conftest import NOW, VIEW, days, make_repo, online_state, open_store

START = NOW - days(7)


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, tzinfo=timezone.utc)


def test_chunk_windows_cover_the_range_end_to_end():
    assert chunk_windows(at(1), at(3, 12), days(1)) == [(at(1), at(2)), (at(2), at(3)), (at(3), at(3, 12))]
    assert chunk_windows(at(1), at(2), days(1)) == [(at(1), at(2))]
    with pytest.raises(InputError):
        chunk_windows(at(1), at(2), days(0))


@pytest.mark.parametrize("done, window, expected", [
    ([], (at(2), at(3)), False),
    ([(at(2), at(3))], (at(2), at(3)), True),
    ([(at(1), at(2)), (at(2), at(4))], (at(1, 12), at(3)), True),  # adjacent windows join
    ([(at(1), at(2)), (at(2, 1), at(4))], (at(1, 12), at(3)), False),  # a gap
    ([(None, at(5))], (at(2), at(3)), True),  # "from the beginning"
    ([(at(3), at(9)), (at(1), at(2))], (at(1), at(4)), False),
    ([(at(3), at(9)), (at(1), at(3))], (at(1), at(4)), True),
    ([(at(2), at(3))], (at(1), at(3)), False),
])
def test_covered_by_the_union_of_done_windows(done, window, expected):
    assert covered(window, done) is expected


def test_backfill_equals_one_materialization_of_the_whole_range(store, tmp_path):
    seen = []
    report = backfill(store, VIEW, START, NOW, "1d", progress=seen.append)
    assert report.ok and report.count("succeeded") == 7 and len(seen) == 7
    records = store.registry.jobs.list(store.project, batch=report.batch)
    assert sorted((r.window_start, r.window_end) for r in records) == chunk_windows(START, NOW, days(1))
    assert {(r.trigger, r.status, r.attempt, r.rows) for r in records} == {("backfill", "succeeded", 1, 5)}
    assert store.materializer.watermark(VIEW) == NOW

    with open_store(make_repo(tmp_path / "clean")) as clean:
        clean.apply()
        clean.materialize(START, NOW, [VIEW])
        assert online_state(store) == online_state(clean)


def test_rerun_skips_chunks_already_done_even_with_another_chunking(store):
    backfill(store, VIEW, START, NOW - days(3), "1d")
    engine = store.offline
    engine.reads.clear()
    report = backfill(store, VIEW, START, NOW, "12h")
    assert report.count("skipped") == 8 and report.count("succeeded") == 6
    assert [(s, e) for _, s, e in engine.reads] == chunk_windows(NOW - days(3), NOW, days(0.5))
    again = backfill(store, VIEW, START, NOW, "1d")
    assert again.count("skipped") == 7 and again.rows == 0
    forced = backfill(store, VIEW, NOW - days(1), NOW, "1d", force=True)
    assert forced.count("succeeded") == 1


def test_parallel_chunks_reach_the_same_state(store, tmp_path):
    report = backfill(store, VIEW, START, NOW, "1d", parallel=3)
    assert report.ok and report.count("succeeded") == 7
    assert [c.start for c in report.chunks] == sorted(c.start for c in report.chunks)
    assert store.materializer.watermark(VIEW) == NOW  # the parallel chunks never move it back
    with open_store(make_repo(tmp_path / "clean")) as clean:
        clean.apply()
        backfill(clean, VIEW, START, NOW, "1d")
        assert online_state(store) == online_state(clean)


def test_a_chunk_whose_source_fails_is_retried_then_reported_and_the_rest_succeed(store, tmp_path):
    engine = store.offline
    engine.reads.clear()
    bad = (NOW - days(4), NOW - days(3))
    flaky = (NOW - days(2), NOW - days(1))
    engine.fail[bad] = 99
    engine.fail[flaky] = 1
    sleeps = []
    report = backfill(store, VIEW, START, NOW, "1d", retries=2, backoff=0.5, sleep=sleeps.append)

    assert not report.ok and report.count("succeeded") == 6
    [failed] = report.failed
    assert ((failed.start, failed.end), failed.status, failed.attempts) == (bad, "failed", 3)
    assert "source unavailable" in failed.error and "injected" in failed.error
    assert sleeps == [0.5, 1.0, 0.5]  # the bad chunk's two retries, then the flaky one's one
    records = store.registry.jobs.list(store.project, batch=report.batch)
    by_window = {}
    for r in sorted(records, key=lambda r: r.id):
        by_window.setdefault((r.window_start, r.window_end), []).append((r.attempt, r.status))
    assert by_window[bad] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert by_window[flaky] == [(1, "failed"), (2, "succeeded")]
    assert list(failed.job_ids) == [r.id for r in sorted(records, key=lambda r: r.id)
                                   if (r.window_start, r.window_end) == bad]
    assert len(store.registry.jobs.list(store.project, statuses=["failed"])) == 4

    # Once the source is back, a rerun runs the failed chunk only.
    engine.fail.clear()
    engine.reads.clear()
    rerun = backfill(store, VIEW, START, NOW, "1d")
    assert rerun.ok and rerun.count("succeeded") == 1 and [(s, e) for _, s, e in engine.reads] == [bad]


def test_a_view_busy_elsewhere_fails_fast_with_the_holder_named(store):
    backend = store.locks
    with acquire(backend, view_lock(VIEW), owner_id("scheduler"), 60):
        with pytest.raises(LockBusyError, match=f"feature view '{VIEW}' is being run by scheduler"):
            backfill(store, VIEW, START, NOW, "1d")
        with pytest.raises(LockBusyError):
            store.materialize(START, NOW, [VIEW])
        store.materialize(START, NOW, ["driver_hourly_stats_fresh"])  # other views are free
    assert backfill(store, VIEW, NOW - days(1), NOW, "1d").ok


@pytest.mark.parametrize("start, end, chunk, parallel, message", [
    (NOW, NOW, "1d", 1, "before its end"),
    (START, NOW, "soon", 1, "not a duration"),
    (START, NOW, "1d", 0, "at least 1"),
])
def test_bad_backfill_arguments(store, start, end, chunk, parallel, message):
    with pytest.raises(Exception, match=message):
        backfill(store, VIEW, start, end, chunk, parallel=parallel)


def test_unknown_view_names_close_matches(store):
    with pytest.raises(Exception, match="did you mean 'driver_hourly_stats'"):
        backfill(store, "driver_hourly_stat", START, NOW, "1d")
