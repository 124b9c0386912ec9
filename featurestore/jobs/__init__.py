"""Scheduled materialization, backfills, job records and the locks that keep runs apart.

- ``schedule``: cron / interval schedules and durations like ``1d``;
- ``settings``: the ``scheduler:`` section of featurestore.yaml;
- ``locks``: named expiring locks in Redis or the registry, and ``Lease``;
- ``runner``: one recorded, locked run of one view's window;
- ``backfill``: a range in chunks, with retries and skip-done;
- ``scheduler``: the APScheduler process behind ``featurestore scheduler``.
"""

from featurestore.jobs.backfill import BackfillReport, ChunkOutcome, backfill
from featurestore.jobs.locks import Lease, LockBusyError, RedisLocks, RegistryLocks, lock_backend
from featurestore.jobs.runner import JobInterrupted
from featurestore.jobs.schedule import Schedule, parse_duration
from featurestore.jobs.scheduler import Scheduler
from featurestore.jobs.settings import JobSettings

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
    "lock_backend",
    "parse_duration",
]
