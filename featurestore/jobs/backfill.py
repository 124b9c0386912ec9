"""Backfill: materialize a view's history in chunks that survive a crash.

``backfill(store, view, start, end, chunk)`` splits ``[start, end]`` into windows of
``chunk`` and runs each as a job record (trigger ``backfill``, one ``batch`` id per
backfill, ``attempt`` counting retries) while holding the view's lock for the whole
backfill. A rerun skips every window already covered by succeeded records of the view
(any trigger, any earlier chunking), so after a crash only the unfinished chunks run
again. That is sound because a window's run writes each entity's latest row in it with
newer-timestamp-wins: running two adjacent windows leaves the same state as running
their union, and running a window twice changes nothing.

A failed chunk is retried ``retries`` times, waiting ``backoff`` seconds and doubling;
then it is reported and the other chunks go on.

A view with aggregations needs nothing rebuilt offline (training sets compute them from
the events at query time); each chunk loads its events online like any materialization.
``offline_rebuild(store, view, start, end)``, when given, runs inside each chunk's record
of such a view, before the online write.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from featurestore.definitions import FeatureView
from featurestore.errors import InputError
from featurestore.jobs.locks import LockBackend, acquire, owner_id, view_lock
from featurestore.jobs.runner import JobInterrupted, clear_stale, run_locked
from featurestore.jobs.schedule import parse_duration
from featurestore.jobs.settings import JobSettings
from featurestore.materialize import check_online

if TYPE_CHECKING:
    from featurestore.store import FeatureStore

__all__ = ["BackfillReport", "ChunkOutcome", "OfflineRebuild", "backfill", "chunk_windows", "covered"]

log = logging.getLogger("featurestore.jobs")

Window = tuple[datetime | None, datetime]

#: The aggregation engine's per-chunk offline step (see the module docstring).
OfflineRebuild = Callable[["FeatureStore", FeatureView, datetime, datetime], None]


@dataclass(frozen=True)
class ChunkOutcome:
    """How one chunk ended: ``skipped`` (already done), ``succeeded``, ``failed`` or
    ``interrupted``; ``job_ids`` are its records, one per attempt."""

    start: datetime
    end: datetime
    status: str
    attempts: int = 0
    rows: int = 0
    error: str | None = None
    job_ids: tuple[int, ...] = ()


@dataclass
class BackfillReport:
    view: str
    batch: str
    chunks: list[ChunkOutcome] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for c in self.chunks if c.status == status)

    @property
    def failed(self) -> list[ChunkOutcome]:
        return [c for c in self.chunks if c.status in ("failed", "interrupted")]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)


def chunk_windows(start: datetime, end: datetime, chunk: timedelta) -> list[tuple[datetime, datetime]]:
    """``[start, end]`` cut into consecutive windows of ``chunk`` (the last may be shorter)."""
    if chunk <= timedelta(0):
        raise InputError(f"backfill chunk must be longer than zero, got {chunk}")
    windows, cursor = [], start
    while cursor < end:
        windows.append((cursor, min(cursor + chunk, end)))
        cursor += chunk
    return windows


def covered(window: tuple[datetime, datetime], done: Sequence[Window]) -> bool:
    """Whether the union of the ``done`` windows (closed intervals; start None = from
    the beginning) contains ``window``."""
    start, end = window
    reach: datetime | None = None  # the merged run of done windows that contains ``start``
    for s, e in sorted(done, key=lambda w: (w[0] is not None, w[0] or w[1])):
        if reach is None:
            if s is None or s <= start:
                reach = e if e >= start else None
            continue
        if s is None or s <= reach:
            reach = max(reach, e)
    return reach is not None and reach >= end


def backfill(
    store: FeatureStore,
    view_name: str,
    start: datetime | str,
    end: datetime | str,
    chunk: timedelta | str,
    *,
    parallel: int = 1,
    retries: int | None = None,
    backoff: float | None = None,
    force: bool = False,
    progress: Callable[[ChunkOutcome], None] | None = None,
    locks: LockBackend | None = None,
    settings: JobSettings | None = None,
    stop: threading.Event | None = None,
    cancel: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
    offline_rebuild: OfflineRebuild | None = None,
) -> BackfillReport:
    """Materialize ``view_name`` over ``[start, end]`` chunk by chunk (see the module doc).

    ``progress`` is called once per chunk as it ends (skipped ones first). ``stop`` set:
    start no more chunks; ``cancel`` set: also interrupt the running ones.
    """
    view = store.get_feature_view(view_name)
    check_online([view])
    start, end = store.times.check(start, "backfill start"), store.times.check(end, "backfill end")
    if start is None or end is None or start >= end:
        raise InputError(f"backfill start {start} must be before its end {end}")
    chunk = parse_duration(chunk, "backfill chunk")
    if parallel < 1:
        raise InputError(f"backfill --parallel must be at least 1, not {parallel}")
    settings = settings or JobSettings.from_config(store.config)
    retries = settings.retries if retries is None else retries
    backoff = settings.retry_backoff if backoff is None else backoff
    backend = locks or store.locks
    owner = owner_id("backfill")
    report = BackfillReport(view.name, f"backfill-{uuid.uuid4().hex[:12]}")
    stop = stop or threading.Event()
    report_lock = threading.Lock()

    def finish(outcome: ChunkOutcome) -> None:
        with report_lock:
            report.chunks.append(outcome)
            if progress is not None:
                progress(outcome)

    materializer = store.materializer
    with acquire(backend, view_lock(view.name), owner, settings.lock_ttl, wait=settings.lock_wait,
                 what=f"feature view {view.name!r}") as lease:
        clear_stale(materializer, view.name, lease.taken_from)
        done = [] if force else store.registry.jobs.windows(store.project, view.name)
        pending = []
        for window in chunk_windows(start, end, chunk):
            if covered(window, done):
                finish(ChunkOutcome(*window, "skipped"))
            else:
                pending.append(window)
        rebuild = offline_rebuild if view.aggregations else None

        def run_chunk(window: tuple[datetime, datetime]) -> None:
            before = None if rebuild is None else (lambda: rebuild(store, view, *window))
            finish(_run_chunk(materializer, view, window, owner, report.batch, retries, backoff, lease, stop,
                              cancel, sleep, before))

        if parallel == 1:
            for window in pending:
                run_chunk(window)
        else:
            with ThreadPoolExecutor(parallel, thread_name_prefix=f"backfill-{view.name}") as pool:
                list(pool.map(run_chunk, pending))
    report.chunks.sort(key=lambda c: c.start)
    return report


def _run_chunk(materializer, view, window, owner, batch, retries, backoff, lease, stop, cancel, sleep, before):
    start, end = window
    ids: list[int] = []
    error = None
    for attempt in range(1, retries + 2):
        if stop.is_set() or (cancel is not None and cancel.is_set()):
            return ChunkOutcome(start, end, "interrupted", attempt - 1, 0, "the backfill was stopped first", tuple(ids))
        if lease.lost:
            return ChunkOutcome(start, end, "interrupted", attempt - 1, 0,
                                "the backfill lost the view's lock (it stalled past the lock's ttl)", tuple(ids))
        try:
            record, result = run_locked(materializer, view, start, end, "backfill", owner, batch=batch, attempt=attempt,
                                        cancel=cancel, before=before, started=lambda r: ids.append(r.id))
            return ChunkOutcome(start, end, "succeeded", attempt, result.rows, None, tuple(ids))
        except JobInterrupted as exc:
            return ChunkOutcome(start, end, "interrupted", attempt, 0, str(exc), tuple(ids))
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            if attempt <= retries:
                wait = backoff * 2 ** (attempt - 1)
                log.warning("%s chunk %s..%s failed (attempt %d of %d), retrying in %.1fs: %s", view.name,
                            start.isoformat(), end.isoformat(), attempt, retries + 1, wait, error)
                sleep(wait)
    log.error("%s chunk %s..%s failed after %d attempts: %s", view.name, start.isoformat(), end.isoformat(),
              retries + 1, error)
    return ChunkOutcome(start, end, "failed", retries + 1, 0, error, tuple(ids))
