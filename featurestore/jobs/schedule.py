"""Schedules: when a view is materialized, as a cron expression or a fixed interval.

A schedule's fire times are a pure function of the schedule, never of when a process
started: cron times come from the expression (UTC), and an interval fires at the
multiples of itself since the Unix epoch (``1h`` fires on the hour). So two schedulers
started seconds apart agree on every window's end, which is what lets the lock and the
watermark run each window once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from featurestore.clock import EPOCH, format_duration, parse_duration  # durations live with the clock
from featurestore.errors import ConfigError

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

__all__ = ["FORMS", "Schedule", "format_duration", "parse_duration"]

_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
#: What a schedule may be, for the messages that refuse one.
FORMS = ("a cron expression of five fields, in UTC ('*/15 * * * *'), @hourly, @daily, @weekly, @monthly, "
         "@yearly, or an interval ('15m', 'every 1h', a timedelta)")
# How far back to look for a cron expression's latest fire time, widening each try.
_LOOKBACKS = (timedelta(hours=1), timedelta(days=2), timedelta(days=32), timedelta(days=367 * 4 + 1))


@dataclass(frozen=True)
class Schedule:
    """A cron expression (5 fields, UTC) or an interval; ``text`` is its canonical form."""

    text: str
    interval: timedelta | None = None

    @classmethod
    def parse(cls, value: Any, what: str = "schedule") -> Schedule:
        """A view's ``schedule`` (cron string or timedelta) or a featurestore.yaml value:
        a cron string, an ``@hourly``-style alias, ``every 15m`` / ``15m``, or seconds."""
        if isinstance(value, Schedule):
            return value
        if isinstance(value, str):
            text = value.strip()
            text = _ALIASES.get(text.lower(), text)
            if text.lower().startswith("every "):
                text = text[6:]
            if len(text.split()) == 5:
                # APScheduler is imported when a cron string is met: the store imports jobs.
                from apscheduler.triggers.cron import CronTrigger

                try:
                    CronTrigger.from_crontab(text, timezone=timezone.utc)
                except ValueError as exc:
                    raise ConfigError(f"{what} {value!r} is not a valid cron expression ({exc}); "
                                      f"a schedule is {FORMS}") from None
                return cls(text)
            try:
                interval = parse_duration(text, what)
            except ConfigError:
                raise ConfigError(f"{what} {value!r} is not a schedule; a schedule is {FORMS}") from None
            return cls._every(interval, what, value)
        if isinstance(value, (timedelta, int, float)) and not isinstance(value, bool):
            return cls._every(parse_duration(value, what), what, value)
        raise ConfigError(f"{what} {value!r} is not a schedule; a schedule is {FORMS}")

    @classmethod
    def _every(cls, interval: timedelta, what: str, value: Any) -> Schedule:
        if interval.total_seconds() != int(interval.total_seconds()):
            raise ConfigError(f"{what} {value!r} must be whole seconds")
        return cls(f"every {format_duration(interval)}", interval)

    def trigger(self) -> BaseTrigger:
        """The APScheduler trigger that fires at this schedule's times."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.interval is not None:
            return IntervalTrigger(seconds=int(self.interval.total_seconds()), start_date=EPOCH, timezone=timezone.utc)
        return CronTrigger.from_crontab(self.text, timezone=timezone.utc)

    def latest(self, now: datetime) -> datetime:
        """The last fire time at or before ``now``: the end of the window due at ``now``."""
        now = now.astimezone(timezone.utc)
        if self.interval is not None:
            step = int(self.interval.total_seconds())
            return EPOCH + timedelta(seconds=(int((now - EPOCH).total_seconds()) // step) * step)
        trigger = self.trigger()
        for lookback in _LOOKBACKS:
            fire = trigger.get_next_fire_time(None, now - lookback)
            if fire is None or fire > now:
                continue
            while True:
                following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
                if following is None or following > now:
                    return fire.astimezone(timezone.utc)
                fire = following
        raise ConfigError(f"schedule {self.text!r} has not fired in the last four years")

    def next(self, now: datetime) -> datetime:
        """The first fire time strictly after ``now``."""
        now = now.astimezone(timezone.utc)
        fire = self.trigger().get_next_fire_time(None, now)
        if fire is not None and fire <= now:
            fire = self.trigger().get_next_fire_time(fire, now + timedelta(seconds=1))
        return fire.astimezone(timezone.utc)

    def __str__(self) -> str:
        return self.text
