"""Scheduled materialization, backfills, job records and the locks that keep runs apart.

- ``schedule``: cron / interval schedules and durations like ``1d``;
- ``settings``: the ``scheduler:`` section of featurestore.yaml;
- ``locks``: named expiring locks in the registry, the lock protocol and ``Lease``;
  ``redis_locks``: the same in Redis (``featurestore/backends.py`` picks one);
- ``runner``: one recorded, locked run of one view's window;
- ``backfill``: a range in chunks, with retries and skip-done;
- ``scheduler``: the APScheduler process behind ``featurestore scheduler``.

``Scheduler`` and ``RedisLocks`` load on first use: importing this package
loads neither APScheduler nor redis.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from featurestore.jobs.backfill import BackfillReport, ChunkOutcome, backfill
from featurestore.jobs.locks import Lease, LockBusyError, RegistryLocks
from featurestore.jobs.runner import JobInterrupted
from featurestore.jobs.schedule import Schedule, parse_duration
from featurestore.jobs.settings import JobSettings

if TYPE_CHECKING:
    from featurestore.jobs.redis_locks import RedisLocks
    from featurestore.jobs.scheduler import Scheduler

__all__ = [
    "BackfillReport",
    "ChunkOutcome",
    "JobInterrupted",
    "JobSettings",
    "Lease",
    "LockBusyError",
    "RedisLocks",
    "RegistryLocks",
    "Schedule",
    "Scheduler",
    "backfill",
    "parse_duration",
]

_LAZY = {
    "RedisLocks": "redis_locks",
    "Scheduler": "scheduler",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"featurestore.jobs.{module}"), name)
