"""The ``scheduler:`` section of featurestore.yaml. Every key is optional::

    scheduler:
      lock: auto              # auto (redis when the online store is redis) | redis | registry
      lock_ttl: 60s           # a crashed holder's lock frees itself after this long
      lock_wait: 30s          # how long a manual materialize waits for a busy view
      retries: 2              # extra attempts for a failed backfill chunk
      retry_backoff: 5s       # wait before the first retry; doubles for each next one
      poll: 30s               # how often the scheduler looks for a new apply
      shutdown_grace: 30s     # on SIGTERM, how long a running job may take to finish
      views:                  # schedules that win over the definitions' ``schedule``
        driver_hourly_stats: "*/15 * * * *"
        driver_hourly_stats_fresh: 5m
        some_view: null       # never scheduled
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from featurestore.config import RepoConfig, check_known_keys
from featurestore.errors import ConfigError
from featurestore.jobs.schedule import Schedule, parse_duration

__all__ = ["JobSettings"]

_LOCKS = ("auto", "redis", "registry")
_DURATIONS = ("lock_ttl", "lock_wait", "retry_backoff", "poll", "shutdown_grace")


@dataclass(frozen=True)
class JobSettings:
    lock: str = "auto"
    lock_ttl: float = 60.0
    lock_wait: float = 30.0
    retries: int = 2
    retry_backoff: float = 5.0
    poll: float = 30.0
    shutdown_grace: float = 30.0
    #: view name -> Schedule, or None for "not scheduled", overriding the definition.
    views: Mapping[str, Schedule | None] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: RepoConfig) -> JobSettings:
        raw = config.extra.get("scheduler") or {}
        where = f"{config.repo_path / 'featurestore.yaml'}: scheduler"
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where} must be a mapping of settings")
        check_known_keys(raw, {"lock", "retries", "views", *_DURATIONS}, where)
        values: dict[str, Any] = {}
        if "lock" in raw:
            if raw["lock"] not in _LOCKS:
                raise ConfigError(f"{where}.lock must be one of {', '.join(_LOCKS)}, not {raw['lock']!r}")
            values["lock"] = raw["lock"]
        for key in _DURATIONS:
            if key in raw:
                if key == "lock_wait" and raw[key] in (0, "0", "0s"):
                    values[key] = 0.0
                    continue
                values[key] = parse_duration(raw[key], f"{where}.{key}").total_seconds()
        if "retries" in raw:
            if not isinstance(raw["retries"], int) or isinstance(raw["retries"], bool) or raw["retries"] < 0:
                raise ConfigError(f"{where}.retries must be a whole number >= 0, not {raw['retries']!r}")
            values["retries"] = raw["retries"]
        views = raw.get("views") or {}
        if not isinstance(views, Mapping):
            raise ConfigError(f"{where}.views must map view names to schedules")
        values["views"] = {
            str(name): None if value in (None, False, "off", "none") else Schedule.parse(value, f"{where}.views.{name}")
            for name, value in views.items()
        }
        return cls(**values)

    def check_views(self, views: Mapping[str, Any]) -> None:
        """ConfigError for a view's ``schedule`` that does not parse or a ``scheduler.views``
        entry naming no feature view: ``plan``/``apply`` refuse them, so the scheduler never
        meets them later. ``views``: the repo's feature views by name."""
        for view in views.values():
            if view.schedule is not None:
                Schedule.parse(view.schedule, f"feature view {view.name!r}: schedule")
        unknown = sorted(set(self.views) - set(views))
        if unknown:
            raise ConfigError(
                f"featurestore.yaml: scheduler.views names {', '.join(map(repr, unknown))}, which "
                f"{'is not a feature view' if len(unknown) == 1 else 'are not feature views'} of this repo "
                f"(known: {', '.join(sorted(views)) or 'none'}); fix or remove the entry")

    def with_(self, **changes: Any) -> JobSettings:
        return replace(self, **changes)

    def schedule_for(self, name: str, declared: str | timedelta | None) -> Schedule | None:
        """The view's schedule: featurestore.yaml's when it names the view, else the definition's."""
        if name in self.views:
            return self.views[name]
        return None if declared is None else Schedule.parse(declared, f"schedule of feature view {name!r}")
