"""Time, in one place: UTC datetimes and integer microseconds since the epoch.

The rules every layer shares (the SQL side's twin is ``offline/scan.py: epoch_us_sql``):

- a naive datetime is UTC; an aware one is converted to UTC;
- an instant is stored and compared as integer microseconds since 1970-01-01 UTC, and a
  finer value is truncated toward -inf (``floor``), with integer arithmetic only, so
  Python, Arrow and DuckDB agree to the microsecond;
- a duration (ttl, window) is ``timedelta // 1 µs``, never ``total_seconds() * 1e6``,
  whose float product is 1 µs short for about 1% of sub-second values;
- a clock is a ``Callable[[], float]`` like ``time.time``; its reading goes to the
  *nearest* microsecond (``seconds_to_us``), see there;
- the times the store takes are checked here and only here (``TimeRange``, ``check_spellable``):
  an event time or a window end is between the epoch and ``limits.max_future`` after
  now; any other time is within the years 1..9999 in UTC.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Context, Decimal, InvalidOperation
from numbers import Integral
from typing import Any

from featurestore.errors import ConfigError, InputError

__all__ = [
    "DEFAULT_MAX_FUTURE",
    "EPOCH",
    "MAX_US",
    "MICROSECOND",
    "MIN_US",
    "TimeRange",
    "check_spellable",
    "clock_us",
    "decimal_seconds_us",
    "duration_us",
    "format_duration",
    "from_micros",
    "parse_duration",
    "parse_utc",
    "seconds_to_us",
    "spelling_problem",
    "to_micros",
    "to_utc",
]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)

#: How far past now an event time or a window end may be (``limits.max_future``).
DEFAULT_MAX_FUTURE = timedelta(days=1)

# The instants every layer can spell: Python's datetime, RFC 3339 and DuckDB's
# timestamps stop at year 9999 (Arrow's int64 microseconds go on to year 294247), so a
# time outside is refused where it enters rather than breaking every later read of it.
MIN_US = (datetime(1, 1, 1, tzinfo=timezone.utc) - EPOCH) // MICROSECOND
MAX_US = (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) - EPOCH) // MICROSECOND

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")

# Enough digits for any int64 of microseconds with its fraction: no rounding in scaleb.
_EXACT = Context(prec=60, rounding=ROUND_FLOOR)
_MAX_SECONDS = Decimal(2**63) / 1_000_000


def to_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken as UTC (not local time)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def parse_utc(value: datetime | str | None, what: str) -> datetime | None:
    """A user-given time in UTC: a datetime (naive = UTC) or an ISO 8601 string; ``what``
    names it in the InputError for anything else."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"{what} {value!r} is not an ISO 8601 time such as 2024-05-01T00:00:00") from None
    if not isinstance(value, datetime):
        raise InputError(f"{what} must be a datetime or ISO 8601 string, not {type(value).__name__}")
    try:
        return to_utc(value)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is in year 0 in UTC
        raise InputError(f"{what} {value.isoformat()} is outside the years 1..9999 in UTC") from None


def to_micros(value: Any) -> int:
    """Microseconds since the epoch of a datetime (naive = UTC), a date (its midnight UTC),
    or an integer already in microseconds."""
    if isinstance(value, datetime):
        return (to_utc(value) - EPOCH) // MICROSECOND
    if isinstance(value, date):
        return (datetime(value.year, value.month, value.day, tzinfo=timezone.utc) - EPOCH) // MICROSECOND
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"expected a datetime or microseconds since the epoch, got {value!r}")


def from_micros(us: int) -> datetime:
    """The aware UTC datetime of ``us`` microseconds since the epoch (exact)."""
    return EPOCH + timedelta(microseconds=us)


def duration_us(value: timedelta) -> int:
    """A duration in whole microseconds (exact: a timedelta is an integer of them)."""
    return value // MICROSECOND


def seconds_to_us(seconds: float) -> int:
    """A clock reading (float seconds since the epoch) in microseconds, to the nearest.

    The float is itself rounded: ``1.000001`` is stored as 1.00000099999..., so truncating
    would read a clock set to an exact microsecond as the one before. Today's epoch
    seconds carry about 0.24 µs of float resolution, so the nearest microsecond is the
    reading's own."""
    return round(seconds * 1_000_000)


def clock_us(clock: Callable[[], float]) -> int:
    """The current time of ``clock`` (like ``time.time``) in microseconds."""
    return seconds_to_us(clock())


def decimal_seconds_us(text: str) -> int:
    """Decimal text of seconds since the epoch (``"1714564800.1234567"``, ``"1.7e9"``) in
    microseconds, truncated toward -inf like every other conversion; exact, no float.
    ValueError when it is not a finite number within the int64 microsecond range."""
    try:
        seconds = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number of seconds") from None
    if not seconds.is_finite() or abs(seconds) >= _MAX_SECONDS:
        raise ValueError(f"{text!r} is not a finite number of seconds within the timestamp range")
    return int(seconds.scaleb(6, _EXACT).to_integral_value(ROUND_FLOOR, _EXACT))


def parse_duration(text: str | int | float | timedelta, what: str = "duration") -> timedelta:
    """``"1d"``, ``"6h"``, ``"1h30m"``, ``"90s"``, ``"2w"``, a number of seconds or a timedelta."""
    if isinstance(text, timedelta):
        value = text
    elif isinstance(text, (int, float)) and not isinstance(text, bool):
        value = timedelta(seconds=text)
    elif isinstance(text, str) and re.fullmatch(r"\s*(\d+(\.\d+)?\s*[wdhms]\s*)+", text.lower()):
        value = timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(text.lower())))
    else:
        raise ConfigError(f"{what} {text!r} is not a duration; write it like 1d, 6h, 15m, 1h30m or 90s")
    if value <= timedelta(0):
        raise ConfigError(f"{what} {text!r} must be longer than zero")
    return value


def format_duration(value: timedelta) -> str:
    """The inverse of ``parse_duration`` for whole seconds: 1d, 1h30m, 45s."""
    seconds = int(value.total_seconds())
    parts = []
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit]:
            parts.append(f"{seconds // _UNITS[unit]}{unit}")
            seconds %= _UNITS[unit]
    return "".join(parts) or "0s"


def _spelled(us: int) -> str:
    return from_micros(us).isoformat().replace("+00:00", "Z") if MIN_US <= us <= MAX_US else \
        f"{us} microseconds since the epoch"


def spelling_problem(us: int) -> str | None:
    """Why ``us`` is outside the years 1..9999 in UTC, or None; it reads after "<what> is "."""
    return None if MIN_US <= us <= MAX_US else f"{_spelled(us)}: outside the years 1..9999 in UTC"


def check_spellable(us: int, what: str) -> None:
    """InputError unless ``us`` is within the years 1..9999 in UTC (``what`` names it): the
    rule for times that are not event times, such as UnixTimestamp values and the times
    of an entity set."""
    reason = spelling_problem(us)
    if reason is not None:
        raise InputError(f"{what} is {reason}")


@dataclass(frozen=True)
class TimeRange:
    """The event times and window ends the store takes: from the epoch to ``max_future``
    after now (``clock``), both included.

    Why a bound into the future: online writes keep the newer event time, so one event
    stamped in year 9999 would shadow every real write of its entity for good, and a
    materialization ending there would move the view's watermark past every later run.
    ``max_future`` (``limits.max_future`` in featurestore.yaml, default 1d) leaves room
    for clocks that run ahead and for events stamped a little early.
    """

    max_future: timedelta = DEFAULT_MAX_FUTURE
    clock: Callable[[], float] = time.time

    def bounds_us(self) -> tuple[int, int]:
        """(earliest, latest) allowed, in microseconds, as of now."""
        return 0, min(MAX_US, clock_us(self.clock) + duration_us(self.max_future))

    def problem(self, us: int, bounds: tuple[int, int]) -> str | None:
        """Why ``us`` is out of ``bounds`` (from ``bounds_us``), or None; it reads after
        "<what> is "."""
        if us < bounds[0]:
            return f"{_spelled(us)}: before 1970-01-01T00:00:00Z, the earliest time the store takes"
        if us > bounds[1]:
            return (f"{_spelled(us)}: more than {format_duration(self.max_future)} after now "
                    f"({_spelled(bounds[1] - duration_us(self.max_future))}); limits.max_future in "
                    "featurestore.yaml sets how far ahead a time may be")
        return None

    def check_us(self, us: int, what: str, bounds: tuple[int, int] | None = None) -> None:
        """InputError naming ``what`` unless ``us`` is in range."""
        reason = self.problem(us, bounds or self.bounds_us())
        if reason is not None:
            raise InputError(f"{what} is {reason}")

    def check(self, value: datetime | str | None, what: str) -> datetime | None:
        """``parse_utc(value)`` (or ``"now"`` by this range's clock, as the CLI and HTTP
        take it), refused (InputError naming ``what``) unless in range."""
        if isinstance(value, str) and value.strip().lower() == "now":
            return from_micros(clock_us(self.clock))
        parsed = parse_utc(value, what)
        if parsed is not None:
            self.check_us(to_micros(parsed), what)
        return parsed
