"""One materialization run of one view over one window: locked, recorded, interruptible.

Every run, whatever started it (``scheduled``, ``backfill``, ``manual``), goes through
``run_locked`` while holding the view's lock (``locks.view_lock``), so:
- the registry's job table gets one record per run: ``running`` when it starts, then
  ``succeeded`` with the rows written, ``failed`` with the error, or ``interrupted``;
- right after taking the lock, any record of the view still ``running`` is marked
  ``interrupted`` (``clear_stale``): runs of a view only happen under its lock, so such
  a record's process died (or lost its lock) before it could finish the record;
- a run can be interrupted between two written batches (``cancel``); what it wrote stays,
  which is safe because online writes are newer-timestamp-wins, and the view's watermark
  does not move, so the next run covers the window again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from registry.jobs import JobRecord

from featurestore.definitions import FeatureView
from featurestore.errors import JobError
from featurestore.jobs.locks import LockBackend, LockBusyError, acquire, lock_backend, owner_id, view_lock
from featurestore.jobs.settings import JobSettings
from featurestore.materialize import MaterializeResult, Progress, utc, watermark_key

if TYPE_CHECKING:
    from featurestore.store import FeatureStore

__all__ = [
    "JobInterrupted",
    "TRIGGERS",
    "clear_stale",
    "incremental_start",
    "materialized_until",
    "run_locked",
    "run_manual",
    "record_json",
    "run_scheduled",
]

log = logging.getLogger("featurestore.jobs")

TRIGGERS = ("scheduled", "backfill", "manual")
_MAX_ERROR = 2000


class JobInterrupted(JobError):
    """A run was stopped on purpose (shutdown, a second Ctrl-C) between two batches."""


def materialized_until(store: FeatureStore, view: str) -> datetime | None:
    """The view's watermark: the end of its latest run's window."""
    return utc(store.registry.get_state(store.project, watermark_key(view)), "watermark")


def incremental_start(store: FeatureStore, view: FeatureView, end: datetime) -> datetime | None:
    """Where an incremental run starts: the watermark, or ``end - ttl`` the first time."""
    mark = materialized_until(store, view.name)
    if mark is not None:
        return mark
    return end - view.ttl if view.ttl else None


def clear_stale(store: FeatureStore, view: str) -> list[JobRecord]:
    """Mark the view's leftover ``running`` records interrupted; call with its lock held."""
    stale = store.registry.jobs.interrupt_running(
        store.project, view, "the process running it stopped before it finished (its lock expired)"
    )
    for record in stale:
        log.warning("job %s (%s of %s) was left running by %s; recorded as interrupted",
                    record.id, record.trigger, view, record.owner)
    return stale


def run_locked(
    store: FeatureStore,
    view: FeatureView,
    start: datetime | None,
    end: datetime,
    trigger: str,
    owner: str,
    *,
    incremental: bool = False,
    batch: str | None = None,
    attempt: int = 1,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    before: Callable[[], None] | None = None,
    started: Callable[[JobRecord], None] | None = None,
) -> tuple[JobRecord, MaterializeResult]:
    """Run and record one window of ``view``; the caller holds the view's lock.

    With ``incremental`` the window starts at the watermark (read under the lock).
    ``before`` runs first inside the same record (the backfill's offline step);
    ``started`` gets the record as soon as it exists. An error is recorded and re-raised.
    """
    if incremental:
        start = incremental_start(store, view, end)
    jobs = store.registry.jobs
    record = jobs.start(store.project, view.name, trigger, start, end, owner, batch=batch, attempt=attempt)
    if started is not None:
        started(record)

    def hook(name: str, rows: int) -> None:
        if progress is not None:
            progress(name, rows)
        if cancel is not None and cancel.is_set():
            raise JobInterrupted(f"{trigger} run of {view.name!r} was stopped after writing {rows} rows")

    try:
        if cancel is not None and cancel.is_set():
            raise JobInterrupted(f"{trigger} run of {view.name!r} was stopped before it started")
        if before is not None:
            before()
        result = store._materialize_one(view, start, end, hook)
    except JobInterrupted as exc:
        jobs.finish(store.project, record.id, "interrupted", error=str(exc))
        raise
    except BaseException as exc:
        jobs.finish(store.project, record.id, "failed", error=_describe(exc))
        raise
    record = jobs.finish(store.project, record.id, "succeeded", rows=result.rows)
    return record, result


def run_manual(
    store: FeatureStore,
    view: FeatureView,
    start: datetime | None,
    end: datetime,
    progress: Progress | None = None,
    *,
    incremental: bool = False,
) -> MaterializeResult:
    """``FeatureStore.materialize``'s run of one view: waits up to ``lock_wait`` for the
    view's lock, then runs and records it as ``manual``."""
    settings = JobSettings.from_config(store.config)
    backend = lock_backend(store, settings)
    owner = owner_id("materialize")
    try:
        with acquire(backend, view_lock(view.name), owner, settings.lock_ttl, wait=settings.lock_wait,
                     what=f"feature view {view.name!r}"):
            clear_stale(store, view.name)
            return run_locked(store, view, start, end, "manual", owner, incremental=incremental,
                              progress=progress)[1]
    finally:
        backend.close()


def run_scheduled(
    store: FeatureStore,
    view: FeatureView,
    end: datetime,
    backend: LockBackend,
    settings: JobSettings,
    *,
    cancel: threading.Event | None = None,
) -> JobRecord | None:
    """The scheduler's run of the window ending at ``end`` (a schedule fire time).

    Returns None without running when another process holds the view's lock (it is
    running the view now) or the watermark already reached ``end`` (a run for this fire
    time, or a later manual one, already happened): so each window runs once.
    """
    owner = owner_id("scheduler")
    try:
        lease = acquire(backend, view_lock(view.name), owner, settings.lock_ttl, wait=0.0,
                        what=f"feature view {view.name!r}")
    except LockBusyError as exc:
        log.info("skipping %s until %s: %s", view.name, end.isoformat(), exc)
        return None
    with lease:
        clear_stale(store, view.name)
        mark = materialized_until(store, view.name)
        if mark is not None and mark >= end:
            log.info("skipping %s until %s: already materialized until %s", view.name, end.isoformat(),
                     mark.isoformat())
            return None
        record, _ = run_locked(store, view, None, end, "scheduled", owner, incremental=True, cancel=cancel)
        return record


def record_json(record: JobRecord) -> dict:
    """A job record as users see it (CLI, HTTP): the registry's ``target`` is the view."""
    data = record.to_dict()
    data = {"id": data.pop("id"), "view": data.pop("target"), **data}
    return data


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, JobError) and type(exc).__module__ != "featurestore.errors":
        text = f"{type(exc).__name__}: {text}"
    return text[:_MAX_ERROR]
