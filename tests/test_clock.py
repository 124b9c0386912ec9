"""featurestore.clock: naive is UTC, microseconds truncate toward -inf, exactly."""

from __future__ import annotations

import time
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurestore.clock import (
    EPOCH,
    clock_us,
    decimal_seconds_us,
    duration_us,
    from_micros,
    parse_utc,
    seconds_to_us,
    to_micros,
    to_utc,
)
from featurestore.definitions import Entity, FeatureView, Field, FileSource, PushSource
from featurestore.errors import InputError
from featurestore.streaming.decode import EntryDecoder
from featurestore.types import Float64

TOKYO = timezone(timedelta(hours=9))


@pytest.fixture
def local_time_not_utc(monkeypatch):
    """The process's local zone set to one far from UTC, so reading naive as local shows."""
    if not hasattr(time, "tzset"):
        pytest.skip("needs time.tzset")
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_naive_is_utc_even_when_the_local_zone_is_not(local_time_not_utc):
    naive = datetime(2024, 5, 1, 12, 0, 0, 7)
    aware = naive.replace(tzinfo=timezone.utc)
    assert to_utc(naive) == aware and to_utc(naive).tzinfo is timezone.utc
    assert to_micros(naive) == to_micros(aware) == to_micros(aware.astimezone(TOKYO))
    assert parse_utc("2024-05-01T12:00:00.000007", "end") == aware
    assert parse_utc("2024-05-01T21:00:00.000007+09:00", "end") == aware
    assert parse_utc("2024-05-01T12:00:00.000007Z", "end") == aware


def test_user_times_are_datetimes_or_iso_strings_and_errors_name_the_argument():
    assert parse_utc(None, "start") is None
    with pytest.raises(InputError, match=r"^end 'yesterday' is not an ISO 8601 time"):
        parse_utc("yesterday", "end")
    with pytest.raises(InputError, match=r"^start must be a datetime or ISO 8601 string, not int"):
        parse_utc(1714564800, "start")


@given(st.datetimes(timezones=st.sampled_from([timezone.utc, TOKYO, timezone(timedelta(hours=-3, minutes=-30))])))
def test_micros_round_trip_exactly(moment):
    us = to_micros(moment)
    assert us == (moment - EPOCH) // timedelta(microseconds=1)
    assert from_micros(us) == moment and from_micros(us).tzinfo is timezone.utc


def test_dates_and_integers_are_micros_too():
    assert to_micros(date(1970, 1, 2)) == 86_400_000_000
    assert to_micros(-5) == -5
    with pytest.raises(TypeError):
        to_micros(True)
    with pytest.raises(TypeError):
        to_micros(1.5)


@given(st.timedeltas())
def test_durations_are_exact_integers(ttl):
    assert duration_us(ttl) == ((ttl.days * 86400 + ttl.seconds) * 10**6 + ttl.microseconds)


def test_the_float_product_that_durations_avoid_is_one_short():
    ttl = timedelta(seconds=1, microseconds=1)
    assert int(ttl.total_seconds() * 1e6) == 1_000_000  # what the online side once computed
    assert duration_us(ttl) == 1_000_001


@given(st.integers(-(2**51), 2**51))
def test_a_float_clock_reading_gives_back_its_microsecond(us):
    assert seconds_to_us(us / 1_000_000) == us
    assert clock_us(lambda: us / 1_000_000) == us


@given(st.integers(-(10**12), 10**12), st.integers(0, 10**9 - 1))
def test_decimal_seconds_are_read_exactly_and_truncated_toward_minus_infinity(seconds, nanos):
    text = f"{seconds}.{nanos:09d}"
    assert decimal_seconds_us(text) == (Fraction(text) * 10**6).__floor__()
    assert decimal_seconds_us(f"{seconds}") == seconds * 10**6


def test_decimal_seconds_edge_cases():
    assert decimal_seconds_us("1714564800.0000015") == 1714564800_000001  # a float rounds to ...002
    assert decimal_seconds_us("-0.0000001") == -1
    assert decimal_seconds_us("1.7e9") == 1_700_000_000_000_000
    for bad in ("nan", "inf", "abc", "1e30"):
        with pytest.raises(ValueError):
            decimal_seconds_us(bad)


def test_stream_epoch_seconds_truncate_like_every_other_time():
    source = PushSource(name="push", batch_source=FileSource(name="src", path="x.parquet", timestamp_field="ts"))
    view = FeatureView(name="v", entities=[Entity(name="d", join_keys=["d"])], schema=[Field("fare", Float64)],
                       source=source)
    # (Before the epoch an event time is out of range: -0.0000001 is a bad entry, see test_bad_entries.)
    texts = [b"1714564800.0000015", b"1714564800.1234567", b"0.0000019", b"2024-05-01T12:00:00.000001Z"]
    batch = EntryDecoder("s", source, [view], "event_id").decode(
        [(f"{i}-0".encode(), [b"d", b"1", b"ts", t, b"fare", b"1"]) for i, t in enumerate(texts)])
    assert batch.bad == []
    got = batch.table.column("ts").cast(pa.int64()).to_pylist()
    assert got == [1714564800_000001, 1714564800_123456, 1, to_micros(datetime(2024, 5, 1, 12, 0, 0, 1))]
