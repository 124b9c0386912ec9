"""``featurestore scheduler``: materialize each scheduled view incrementally, unattended.

An APScheduler ``BackgroundScheduler`` holds one job per scheduled view. When a view's
schedule fires at time F, the run covers the view from its watermark to F (not to "now"),
so every process computes the same window for the same fire time; ``run_scheduled`` then
takes the view's lock and checks the watermark, so each window runs once however many
schedulers are up.

- Applies are picked up without a restart: every ``poll`` seconds the scheduler asks
  the registry for the revision of the definitions and, when it moved, adds,
  reschedules or drops jobs.
  (The ``scheduler:`` section of featurestore.yaml is read at start.)
- Other scheduled work (the model monitors and the rollout controller of
  ``monitoring``, a layer above) is handed in as ``tasks``: name -> ``ScheduledTask`` (a
  schedule and a function of the fire time), each run one at a time on a thread of the
  tasks' own, so a long materialization never delays a rollout decision, and stopped
  the same way.
- SIGTERM or SIGINT stops it: no new runs start, a running one gets ``shutdown_grace``
  seconds to finish its window; after that it is interrupted at its next written batch
  and recorded as ``interrupted``.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from registry.jobs import JobRecord

from featurestore.jobs.locks import LockBackend
from featurestore.jobs.runner import run_scheduled
from featurestore.jobs.schedule import Schedule
from featurestore.jobs.settings import JobSettings

if TYPE_CHECKING:
    from featurestore.store import FeatureStore

__all__ = ["ScheduledTask", "Scheduler"]

log = logging.getLogger("featurestore.jobs")


@dataclass(frozen=True)
class ScheduledTask:
    """Work the scheduler runs besides materialization: ``run(fire_time)`` at each fire
    time of ``schedule``; it takes its own lock if several schedulers may run it."""

    schedule: Schedule
    run: Callable[[datetime], object]


class Scheduler:
    """Runs ``materialize_incremental`` for each scheduled view of one store, and ``tasks``."""

    def __init__(
        self,
        store: FeatureStore,
        *,
        settings: JobSettings | None = None,
        locks: LockBackend | None = None,
        clock: Callable[[], float] = time.time,
        workers: int = 1,
        tasks: Mapping[str, ScheduledTask] | None = None,
    ):
        self.store = store
        self.tasks = dict(tasks or {})
        self.settings = settings or JobSettings.from_config(store.config)
        self.locks = locks or store.locks  # the store closes its own
        self.clock = clock
        self._aps = BackgroundScheduler(
            timezone=timezone.utc,
            executors={"default": ThreadPoolExecutor(max(1, workers)),
                       "tasks": ThreadPoolExecutor(max(1, len(self.tasks)))},
            # One run per view at a time, missed fires folded into one, never dropped
            # for being late: the window always ends at the latest fire time anyway.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._schedules: dict[str, Schedule] = {}
        self._revision: int | None = None
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._active = 0
        self._idle = threading.Condition()

    # -- what is scheduled --------------------------------------------------------------

    @property
    def schedules(self) -> dict[str, Schedule]:
        """The view name -> schedule the scheduler runs now."""
        return dict(self._schedules)

    def wanted(self) -> dict[str, Schedule]:
        """The schedules the registry's views (and featurestore.yaml) ask for."""
        wanted = {}
        for view in self.store.list_feature_views():
            schedule = self.settings.schedule_for(view.name, view.schedule)
            if schedule is None:
                continue
            if not view.online:
                log.warning("%s has a schedule but online=False, so it is not scheduled", view.name)
                continue
            wanted[view.name] = schedule
        return wanted

    def sync(self) -> bool:
        """Match the jobs to the registry (after an apply); True when something changed."""
        revision = self.store.definitions_revision()
        if revision == self._revision:
            return False
        self.store.refresh()
        self._revision = revision
        wanted = self.wanted()
        changed = False
        for name in sorted(set(self._schedules) - set(wanted)):
            if self._aps.get_job(name):
                self._aps.remove_job(name)
            del self._schedules[name]
            log.info("unscheduled %s", name)
            changed = True
        for name, schedule in sorted(wanted.items()):
            if self._schedules.get(name) == schedule:
                continue
            self._aps.add_job(self.fire, schedule.trigger(), args=[name], id=name, name=f"materialize {name}",
                              replace_existing=True)
            log.info("scheduled %s: %s (next run %s)", name, schedule,
                     schedule.next(self._now()).isoformat())
            self._schedules[name] = schedule
            changed = True
        return changed

    # -- running ------------------------------------------------------------------------

    def fire(self, name: str) -> JobRecord | None:
        """Run ``name``'s window due now (APScheduler calls this at each fire time)."""
        schedule = self._schedules.get(name)
        view = self.store.contents.feature_views.get(name)
        if schedule is None or view is None:
            return None
        # A failed run is recorded as failed by the runner; the next fire tries again.
        return self._guarded(name, lambda: run_scheduled(self.store.materializer, view, schedule.latest(self._now()),
                                                         self.locks, self.settings, cancel=self._cancel))

    def fire_task(self, name: str) -> object:
        """Run task ``name`` for its latest fire time; a failure is logged, the next fire retries."""
        task = self.tasks[name]
        return self._guarded(name, lambda: task.run(task.schedule.latest(self._now())))

    def _guarded(self, name: str, work: Callable[[], object]) -> object:
        """``work()`` counted as a running job (``stop`` waits for it); None once stopping
        or when it fails (logged)."""
        with self._idle:
            if self._stop.is_set():
                return None
            self._active += 1
        try:
            return work()
        except Exception as exc:
            log.error("%s: scheduled run failed: %s", name, exc)
            return None
        finally:
            with self._idle:
                self._active -= 1
                self._idle.notify_all()

    def run_due(self) -> list[JobRecord]:
        """Run every scheduled view's window due now, and every task, once, in this thread
        (``--once``); returns the views' job records."""
        self.sync()
        records = [r for r in (self.fire(name) for name in sorted(self._schedules)) if r is not None]
        for name in sorted(self.tasks):
            self.fire_task(name)
        return records

    def start(self) -> None:
        self.sync()
        for name, task in sorted(self.tasks.items()):
            self._aps.add_job(self.fire_task, task.schedule.trigger(), args=[name], id=f"task:{name}", name=name,
                              executor="tasks", replace_existing=True)
            log.info("scheduled %s: %s", name, task.schedule)
        self._aps.start()
        log.info("scheduler started for project %s with %d scheduled view(s)", self.store.project,
                 len(self._schedules))

    def stop(self, grace: float | None = None) -> None:
        """Start no new runs; let running ones finish within ``grace``, then interrupt them."""
        grace = self.settings.shutdown_grace if grace is None else grace
        with self._idle:
            self._stop.set()
        if self._aps.running:
            self._aps.shutdown(wait=False)
        if not self._wait_idle(grace):
            log.warning("a run is still going after %.0fs; interrupting it at its next batch", grace)
            self._cancel.set()
            self._wait_idle(max(grace, 5.0))
        log.info("scheduler stopped")

    def run_forever(self) -> None:
        """Start, follow applies every ``poll`` seconds, stop cleanly on SIGTERM/SIGINT."""
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self._stop.wait(self.settings.poll):
                try:
                    self.sync()
                except Exception as exc:  # a busy or briefly unreadable registry: try at the next poll
                    log.error("could not check the registry for changes: %s", exc)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def request_stop(self) -> None:
        """Ask ``run_forever`` to return (what SIGTERM does)."""
        self._stop.set()

    def _on_signal(self, signum, _frame) -> None:
        log.info("received %s; stopping after the running job", signal.Signals(signum).name)
        self._stop.set()

    def _wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), timezone.utc)
