"""Time, in one place: UTC datetimes and integer microseconds since the epoch.

The rules every layer shares (the SQL side's twin is ``offline/scan.py: epoch_us_sql``):

- a naive datetime is UTC; an aware one is converted to UTC;
- an instant is stored and compared as integer microseconds since 1970-01-01 UTC, and a
  finer value is truncated toward -inf (``floor``), with integer arithmetic only, so
  Python, Arrow and DuckDB agree to the microsecond;
- a duration (ttl, window) is ``timedelta // 1 µs``, never ``total_seconds() * 1e6``,
  whose float product is 1 µs short for about 1% of sub-second values;
- a clock is a ``Callable[[], float]`` like ``time.time``; its reading goes to the
  *nearest* microsecond (``seconds_to_us``), see there.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Context, Decimal, InvalidOperation
from numbers import Integral
from typing import Any

from featurestore.errors import InputError

__all__ = [
    "EPOCH",
    "MICROSECOND",
    "clock_us",
    "decimal_seconds_us",
    "duration_us",
    "from_micros",
    "parse_utc",
    "seconds_to_us",
    "to_micros",
    "to_utc",
]

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)

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
    return to_utc(value)


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
