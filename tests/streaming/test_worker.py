"""The stream worker against a real Redis: entries applied online at once, appended offline
in batches, acknowledged only after that; pending entries re-applied after a crash
without counting twice; bad entries set aside."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore.errors import ConfigError
from featurestore.streaming import StreamSettings, StreamWorker
from featurestore.streaming.resp import RespConnection

from .conftest import NOW, REFS, open_store, write_repo

TS = pa.timestamp("us", tz="UTC")


class Reports:
    def __init__(self):
        self.batches, self.flushes = [], []

    def batch(self, report):
        self.batches.append(report)

    def flush(self, report):
        self.flushes.append(report)


@pytest.fixture
def repo(tmp_path, redis_url, redis_project):
    streaming = f"""
    streaming:
      streams:
        - stream: {redis_project}-trips
          push_source: trips_push
      flush_seconds: 3600
      claim_idle_seconds: 36000
    """
    return write_repo(tmp_path / "repo", redis_project, "redis", redis_url, streaming)


@pytest.fixture
def store(repo, clock):
    with open_store(repo, clock) as s:
        yield s


@pytest.fixture
def stream(redis_project) -> str:
    return f"{redis_project}-trips"


def worker(store, **overrides) -> tuple[StreamWorker, Reports]:
    reports = Reports()
    return StreamWorker(store, StreamSettings.from_config(store.config, **overrides), observer=reports), reports


def trip(driver, minutes_ago: float, fare="1.5", **extra) -> dict:
    return {"driver_id": str(driver), "event_timestamp": (NOW - timedelta(minutes=minutes_ago)).isoformat(),
            "fare": fare, "distance": "2", "city": "x", **extra}


def online_count(store, driver: int, feature: str = "fare_count_10m") -> int:
    return store.get_online_features([f"trip_stats:{feature}"], [{"driver_id": driver}]).to_dict()[feature][0]


def offline_rows(store) -> pa.Table:
    files = sorted((store.config.offline_store / "pushed" / "trips_push").glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})


def assert_parity(store, drivers):
    entities = pa.table({"driver_id": drivers, "event_timestamp": pa.array([NOW] * len(drivers), TS)})
    offline = store.get_historical_features(entities, REFS).to_arrow().drop_columns(["driver_id", "event_timestamp"])
    online = store.get_online_features(REFS, {"driver_id": drivers}).to_dict()
    assert {k: online[k] for k in offline.column_names} == offline.to_pydict()


def test_entries_are_applied_at_once_and_acknowledged_after_the_offline_append(store, stream, redis_client):
    for i in range(30):
        redis_client.xadd(stream, trip(i % 3, i / 10))
    w, reports = worker(store)
    w.step()
    assert online_count(store, 0) == 10  # visible online before anything is appended offline
    assert redis_client.xpending(stream, "featurestore")["pending"] == 30
    assert offline_rows(store).num_rows == 0
    w.flush()
    assert redis_client.xpending(stream, "featurestore")["pending"] == 0
    rows = offline_rows(store)
    assert rows.num_rows == 30 and rows.column("_event_id").to_pylist()[0].startswith(f"{stream}/")
    assert sum(r.events for r in reports.batches) == 30 and reports.flushes[0].rows == 30
    assert_parity(store, [0, 1, 2, 3])
    w.close()


def test_an_event_id_field_makes_producer_retries_count_once(store, stream, redis_client):
    for _ in range(3):
        redis_client.xadd(stream, trip(1, 1, event_id="ride-42"))
    w, reports = worker(store)
    w.step()
    w.close()
    assert online_count(store, 1) == 1
    assert reports.batches[0].duplicates == 2
    assert offline_rows(store).column("_event_id").to_pylist() == ["ride-42"] * 3  # the batch side counts one
    assert_parity(store, [1])


def test_late_events_are_appended_offline_dropped_online_and_counted(store, stream, redis_client):
    redis_client.xadd(stream, trip(1, 61))  # older than the longest window (1h)
    redis_client.xadd(stream, trip(1, 59))
    w, reports = worker(store)
    w.step()
    w.close()
    assert online_count(store, 1, "city_count_1h") == 1
    assert reports.batches[0].late == {"trip_stats": 1}
    assert offline_rows(store).num_rows == 2


def test_bad_entries_go_to_the_dead_letter_stream_and_the_rest_go_on(store, stream, redis_client):
    redis_client.xadd(stream, trip(1, 1))
    redis_client.xadd(stream, trip("abc", 1))
    redis_client.xadd(stream, {"driver_id": "1", "fare": "2"})  # no event time
    redis_client.xadd(stream, trip(1, 1, fare="lots"))
    w, reports = worker(store)
    w.step()
    w.close()
    assert online_count(store, 1) == 1
    dead = redis_client.xrange(f"{stream}:dead")
    assert [d[b"error"].decode() for _, d in dead] == [
        "field 'driver_id' is 'abc', not Int64",
        "field 'event_timestamp' is missing; every event needs it",
        "field 'fare' is 'lots', not Float64",
    ]
    assert reports.batches[0].dead == 3
    assert redis_client.xpending(stream, "featurestore")["pending"] == 0


def test_times_may_be_iso_8601_without_offset_or_epoch_seconds(store, stream, redis_client):
    at = NOW - timedelta(minutes=1)
    redis_client.xadd(stream, {"driver_id": "5", "event_timestamp": at.strftime("%Y-%m-%d %H:%M:%S"), "fare": "1"})
    redis_client.xadd(stream, {"driver_id": "5", "event_timestamp": f"{at.timestamp():.6f}", "fare": "2"})
    w, _ = worker(store)
    w.step()
    w.close()
    assert online_count(store, 5, "fare_sum_10m") == 3.0
    assert set(offline_rows(store).column("event_timestamp").to_pylist()) == {at}


def test_a_restarted_consumer_reapplies_its_pending_entries_without_counting_twice(store, stream, redis_client,
                                                                                    monkeypatch):
    for i in range(20):
        redis_client.xadd(stream, trip(i % 2, 1))
    first, _ = worker(store, consumer="w1")
    first.step()
    # It dies after appending offline but before acknowledging.
    monkeypatch.setattr(first.conn, "pipeline", lambda commands: (_ for _ in ()).throw(ConnectionError("killed")))
    with pytest.raises(ConnectionError):
        first.flush()
    monkeypatch.undo()
    assert redis_client.xpending(stream, "featurestore")["pending"] == 20
    again, reports = worker(store, consumer="w1")
    again.step()
    again.close()
    assert sum(r.reclaimed for r in reports.batches) == 20
    assert sum(r.duplicates for r in reports.batches) == 20
    assert online_count(store, 0) == 10
    assert offline_rows(store).num_rows == 40  # appended twice ...
    assert_parity(store, [0, 1])  # ... counted once
    assert redis_client.xpending(stream, "featurestore")["pending"] == 0


def test_entries_left_pending_by_a_stopped_consumer_are_claimed(store, stream, redis_client, redis_url):
    for i in range(15):
        redis_client.xadd(stream, trip(3, 1 + i % 2))
    redis_client.xgroup_create(stream, "featurestore", id="0")
    gone = RespConnection(redis_url)  # a consumer that reads and then vanishes
    assert len(gone.call("XREADGROUP", "GROUP", "featurestore", "gone", "COUNT", "5", "STREAMS", stream, ">")[0][1]) == 5
    gone.close()
    w, reports = worker(store, consumer="w2", claim_idle_seconds=0.3, flush_seconds=0.1)
    for _ in range(300):  # claims once the entries have been idle for claim_idle_seconds
        w.step()
        if not redis_client.xpending(stream, "featurestore")["pending"] and sum(r.events for r in reports.batches) == 15:
            break
    w.close()
    assert online_count(store, 3) == 15
    assert sum(r.reclaimed for r in reports.batches) == 5
    assert_parity(store, [3])


def test_settings_are_checked(store):
    with pytest.raises(ConfigError, match="claim_idle_seconds"):
        StreamSettings.from_config(store.config, flush_seconds=10, claim_idle_seconds=5)
    with pytest.raises(ConfigError, match="no streams"):
        StreamSettings.from_config(store.config, streams=())
