"""No entry, whatever it holds, stops the stream worker: the decoder never raises (fuzzed
over arbitrary field values), every entry is either a row or a dead letter with a reason,
and an entry that fails to apply goes to the dead letters alone. Before this, an entry
whose time did not parse next to one whose time overflows on conversion to UTC stopped
the worker on an OverflowError, for good (the entries stayed pending)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import Entity, FeatureView, Field, FileSource, PushSource
from featurestore.clock import MAX_US, MIN_US, TimeRange, to_micros
from featurestore.streaming import StreamSettings, StreamWorker
from featurestore.streaming.decode import EntryDecoder
from featurestore.types import Bool, Float32, Int64, String, UnixTimestamp

from .conftest import NOW, open_store, write_repo

# -- the decoder, fuzzed ---------------------------------------------------------------------

driver = Entity(name="driver", join_keys=["driver_id"])
push = PushSource(name="p", batch_source=FileSource(name="s", path="s.parquet", timestamp_field="event_timestamp",
                                                    created_timestamp_field="created"))
VIEW = FeatureView(name="v", entities=[driver], source=push, ttl=timedelta(days=1),
                   schema=[Field("driver_id", Int64), Field("fare", Float32), Field("city", String),
                           Field("vip", Bool), Field("signed_up", UnixTimestamp)])
FIELDS = ["driver_id", "event_timestamp", "created", "fare", "city", "vip", "signed_up", "event_id", "other"]
TIMES = TimeRange(timedelta(days=1), lambda: NOW.timestamp())

ODD = [b"", b" ", b"\r\n", b"\x00", b"\xff\xfe", b"nan", b"inf", b"-inf", b"1e400", b"-1e400", b"1e18", b"-1e18",
       b"9999-12-31T23:59:59-14:00", b"0001-01-01T00:00:00+14:00", b"10000-01-01T00:00:00Z",
       b"9999-12-31T23:59:59.999999Z", b"1969-12-31T23:59:59Z", b"1970-01-01T00:00:00Z", b"2024-05-01T12:00:00",
       b"2024-05-01 12:00:00+05:30", b"2024-05-01T12:00:00Z\r\n", b"1714564800.123456", b"9223372036854775807",
       b"-9223372036854775808", b"99999999999999999999", b"true", b"false", b"1", b"0", b"[1, 2]", b"0x10"]

values = st.one_of(
    st.sampled_from(ODD),
    st.binary(max_size=40),
    st.text(max_size=30).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.integers(min_value=-(2**70), max_value=2**70).map(lambda i: str(i).encode()),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).encode()),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat().encode()),
    st.floats(min_value=-1e13, max_value=1e13).map(lambda f: f"{f:.6f}".encode()),
    st.one_of(st.integers(), st.text(max_size=5)),  # not bytes at all: nothing foreseen, still no raise
)
entry = st.dictionaries(st.sampled_from(FIELDS), values, max_size=len(FIELDS))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(entry, min_size=1, max_size=8))
def test_the_decoder_never_raises_and_every_entry_is_a_row_or_a_bad_entry_with_a_reason(batch):
    entries = [(f"{1714564800000 + i}-0".encode(), [x for kv in e.items() for x in (kv[0].encode(), kv[1])])
               for i, e in enumerate(batch)]
    decoded = EntryDecoder("s", push, [VIEW], "event_id", TIMES).decode(entries)
    bad_ids = [b[0] for b in decoded.bad]
    assert sorted(decoded.entry_ids + bad_ids) == sorted(e[0] for e in entries)
    assert decoded.table.num_rows == len(decoded.entry_ids) == len(decoded.event_ids)
    assert all(isinstance(reason, str) and reason for _, _, reason in decoded.bad)
    rows = decoded.table.to_pylist()  # every good value converts to Python (no year 10000)
    low, high = TIMES.bounds_us()
    for row in rows:
        assert low <= to_micros(row["event_timestamp"]) <= high
        assert low <= to_micros(row["created"]) <= high
        if row["signed_up"] is not None:
            assert MIN_US <= to_micros(row["signed_up"]) <= MAX_US


def test_a_time_that_does_not_parse_next_to_one_that_overflows_is_two_bad_entries():
    entries = [(b"1-0", [b"driver_id", b"1", b"event_timestamp", b"nope"]),
               (b"2-0", [b"driver_id", b"1", b"event_timestamp", b"9999-12-31T23:59:59-14:00"]),
               (b"3-0", [b"driver_id", b"1", b"event_timestamp", NOW.isoformat().encode()])]
    decoded = EntryDecoder("s", push, [VIEW], "event_id", TIMES).decode(entries)
    assert decoded.entry_ids == [b"3-0"]
    assert [(b[0], b[2].split(":")[0]) for b in decoded.bad] == [(b"1-0", "field 'event_timestamp' is 'nope', not a time (ISO 8601 or epoch seconds)"),
                                                               (b"2-0", "field 'event_timestamp' is 253402351199000000 microseconds since the epoch")]


# -- the worker, on a real Redis stream ---------------------------------------------------------


@pytest.fixture
def store(tmp_path, redis_url, redis_project, clock):
    streaming = f"""
    streaming:
      streams:
        - stream: {redis_project}-trips
          push_source: trips_push
      flush_seconds: 3600
      claim_idle_seconds: 36000
      block_ms: 20
    """
    with open_store(write_repo(tmp_path / "repo", redis_project, "redis", redis_url, streaming), clock) as s:
        yield s


def trip(driver, at, fare="1.5") -> dict:
    return {"driver_id": str(driver), "event_timestamp": at, "fare": fare, "distance": "2", "city": "x"}


def fare_count(store, driver: int) -> int:
    return store.get_online_features(["trip_stats:fare_count_10m"], [{"driver_id": driver}]).to_dict()["fare_count_10m"][0]


def test_entries_no_worker_can_apply_go_to_the_dead_letters_and_the_worker_goes_on(store, redis_project, redis_client):
    stream = f"{redis_project}-trips"
    recent = (NOW - timedelta(minutes=1)).isoformat()
    redis_client.xadd(stream, trip(1, "not a time"))
    redis_client.xadd(stream, trip(1, "9999-12-31T23:59:59-14:00"))  # year 10000 in UTC
    redis_client.xadd(stream, trip(1, "0001-01-01T00:00:00+14:00"))  # year 0 in UTC
    redis_client.xadd(stream, trip(1, (NOW + timedelta(days=400)).isoformat()))  # past limits.max_future
    redis_client.xadd(stream, trip(1, "1969-12-31T23:59:59Z"))
    redis_client.xadd(stream, trip(1, recent))
    worker = StreamWorker(store, StreamSettings.from_config(store.config))
    stop = threading.Event()
    runner = threading.Thread(target=worker.run, args=(stop,))
    runner.start()
    try:
        deadline = datetime.now(timezone.utc) + timedelta(seconds=30)
        while fare_count(store, 1) != 1 and datetime.now(timezone.utc) < deadline:
            stop.wait(0.05)
        redis_client.xadd(stream, trip(2, recent))  # the worker is still running
        while fare_count(store, 2) != 1 and datetime.now(timezone.utc) < deadline:
            stop.wait(0.05)
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert fare_count(store, 1) == 1 and fare_count(store, 2) == 1
    dead = redis_client.xrange(f"{stream}:dead")
    reasons = [d[b"error"].decode() for _, d in dead]
    assert len(reasons) == 5
    assert "not a time" in reasons[0]
    assert "outside the years 1..9999" in reasons[1] or "more than 1d after now" in reasons[1]
    assert "more than 1d after now" in reasons[3] and "limits.max_future" in reasons[3]
    assert "before 1970-01-01" in reasons[4]
    assert redis_client.xpending(stream, "featurestore")["pending"] == 0  # nothing left to stop a restart


def test_an_entry_that_fails_to_apply_goes_to_the_dead_letters_alone(store, redis_project, redis_client,
                                                                     monkeypatch):
    stream = f"{redis_project}-trips"
    recent = (NOW - timedelta(minutes=1)).isoformat()
    for driver in (1, 13, 2):
        redis_client.xadd(stream, trip(driver, recent))
    online = store.online
    write = online.write_batch

    def refuse_13(view, table: pa.Table):  # stands for any value the store cannot take
        if 13 in table.column("driver_id").to_pylist():
            raise ValueError("driver 13 cannot be written")
        return write(view, table)

    monkeypatch.setattr(online, "write_batch", refuse_13)
    worker = StreamWorker(store, StreamSettings.from_config(store.config))
    worker.step()
    worker.close()
    assert fare_count(store, 1) == 1 and fare_count(store, 2) == 1
    [(_, letter)] = redis_client.xrange(f"{stream}:dead")
    assert letter[b"driver_id"] == b"13" and b"driver 13 cannot be written" in letter[b"error"]
    assert redis_client.xpending(stream, "featurestore")["pending"] == 0
