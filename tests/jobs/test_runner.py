"""Every run is a record: manual materialize runs, failures, interruptions, dead holders."""

from __future__ import annotations

import threading

import pytest

from featurestore.jobs import JobInterrupted
from featurestore.jobs.locks import owner_id
from featurestore.jobs.runner import record_json, run_locked

from .conftest import NOW, VIEW, days


def test_manual_materialize_runs_are_recorded(store):
    store.materialize(NOW - days(1), NOW, [VIEW])
    store.materialize_incremental(NOW + days(1))
    records = store.registry.jobs.list(store.project)
    assert [(r.target, r.trigger, r.status) for r in reversed(records)] == [
        (VIEW, "manual", "succeeded"),
        (VIEW, "manual", "succeeded"),
        ("driver_hourly_stats_fresh", "manual", "succeeded"),
    ]
    first, incremental = records[2], records[1]
    assert (first.window_start, first.window_end, first.rows) == (NOW - days(1), NOW, 5)
    assert (incremental.window_start, incremental.window_end) == (NOW, NOW + days(1))  # from the watermark
    assert first.owner.startswith("materialize@")
    assert record_json(first)["view"] == VIEW and "target" not in record_json(first)


def test_a_failed_run_is_recorded_with_its_error_and_the_watermark_stays(store):
    store.offline.fail[(NOW - days(1), NOW)] = 1
    with pytest.raises(OSError, match="injected"):
        store.materialize(NOW - days(1), NOW, [VIEW])
    [record] = store.registry.jobs.list(store.project)
    assert record.status == "failed" and record.error.startswith("OSError: source unavailable")
    assert record.rows is None and record.ended_at is not None
    assert store.materializer.watermark(VIEW) is None


def test_a_cancelled_run_is_recorded_as_interrupted_without_moving_the_watermark(store):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JobInterrupted):
        run_locked(store.materializer, store.get_feature_view(VIEW), NOW - days(1), NOW, "scheduled", "me", cancel=cancel)
    [record] = store.registry.jobs.list(store.project)
    assert record.status == "interrupted" and "stopped" in record.error
    assert store.materializer.watermark(VIEW) is None


def test_a_record_left_running_by_a_dead_process_is_closed_by_the_next_run(store):
    dead = store.registry.jobs.start(store.project, VIEW, "backfill", NOW - days(2), NOW - days(1),
                                     owner_id("backfill"))
    other_view = store.registry.jobs.start(store.project, "driver_hourly_stats_fresh", "manual", None, NOW, "x")
    store.materialize(NOW - days(1), NOW, [VIEW])
    closed = store.registry.jobs.get(store.project, dead.id)
    assert closed.status == "interrupted" and "stopped before it finished" in closed.error
    assert store.registry.jobs.get(store.project, other_view.id).status == "running"
