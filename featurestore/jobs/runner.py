"""One materialization run of one view over one window: locked, recorded, interruptible.

Every run, whatever started it (``scheduled``, ``backfill``, ``manual``), goes through
``run_locked`` while holding the view's lock (``locks.view_lock``), so:
- the registry's job table gets one record per run: ``running`` when it starts, then
  ``succeeded`` with the rows written, ``failed`` with the error, or ``interrupted``;
- right after taking the lock, any record of the view still ``running`` is marked
  ``interrupted`` (``clear_stale``): runs of a view only happen under its lock, so such
  a record's process died (or lost its lock) before it could finish the record;
- the window itself runs in ``Materializer.run`` (featurestore/materialize.py), which also
  moves the view's watermark;
- a run can be interrupted between two written batches (``cancel``); what it wrote stays,
  which is safe because online writes are newer-timestamp-wins, and the view's watermark
  does not move, so the next run covers the window again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from registry.jobs import JobRecord

from featurestore.definitions import FeatureView
from featurestore.errors import JobError
from featurestore.jobs.locks import LockBackend, LockBusyError, acquire, describe_owner, owner_id, view_lock
from featurestore.jobs.settings import JobSettings
from featurestore.materialize import MaterializeResult, Materializer, Progress

__all__ = [
    "JobInterrupted",
    "TRIGGERS",
    "clear_stale",
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


def clear_stale(materializer: Materializer, view: str, dead_holder: str | None = None) -> list[JobRecord]:
    """Mark the view's leftover ``running`` records interrupted; call with its lock held.

    ``dead_holder``: the owner whose lock was just taken over because its process died
    (``Lease.taken_from``); the records then say so instead of blaming an expired lock."""
    if dead_holder is not None:
        reason = (f"the process running it ({describe_owner(dead_holder)}) died before it finished; "
                  "its lock was taken over")
    else:
        reason = "the process running it stopped before it finished (its lock expired)"
    stale = materializer.registry.jobs.interrupt_running(materializer.project, view, reason)
    for record in stale:
        log.warning("job %s (%s of %s) was left running by %s; recorded as interrupted",
                    record.id, record.trigger, view, record.owner)
    return stale


def run_locked(
    materializer: Materializer,
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
        start = materializer.incremental_start(view, end)
    jobs, project = materializer.registry.jobs, materializer.project
    record = jobs.start(project, view.name, trigger, start, end, owner, batch=batch, attempt=attempt)
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
        result = materializer.run(view, start, end, hook)
    except JobInterrupted as exc:
        jobs.finish(project, record.id, "interrupted", error=str(exc))
        raise
    except BaseException as exc:
        jobs.finish(project, record.id, "failed", error=_describe(exc))
        raise
    record = jobs.finish(project, record.id, "succeeded", rows=result.rows)
    return record, result


def run_manual(
    materializer: Materializer,
    locks: LockBackend,
    settings: JobSettings,
    view: FeatureView,
    start: datetime | None,
    end: datetime,
    progress: Progress | None = None,
    *,
    incremental: bool = False,
) -> MaterializeResult:
    """``FeatureStore.materialize``'s run of one view: waits up to ``lock_wait`` for the
    view's lock, then runs and records it as ``manual``."""
    owner = owner_id("materialize")
    with acquire(locks, view_lock(view.name), owner, settings.lock_ttl, wait=settings.lock_wait,
                 what=f"feature view {view.name!r}") as lease:
        clear_stale(materializer, view.name, lease.taken_from)
        return run_locked(materializer, view, start, end, "manual", owner, incremental=incremental,
                          progress=progress)[1]


def run_scheduled(
    materializer: Materializer,
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
        clear_stale(materializer, view.name, lease.taken_from)
        mark = materializer.watermark(view.name)
        if mark is not None and mark >= end:
            log.info("skipping %s until %s: already materialized until %s", view.name, end.isoformat(),
                     mark.isoformat())
            return None
        record, _ = run_locked(materializer, view, None, end, "scheduled", owner, incremental=True, cancel=cancel)
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
