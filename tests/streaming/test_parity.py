"""Parity: a random event sequence through the stream worker (out of order, late events,
producer retries, entries redelivered after a crash, several entities, an injected clock),
then for many times T the online value equals get_historical_features at T, exactly."""

from __future__ import annotations

import random
from datetime import timedelta

import pyarrow as pa
import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.streaming import StreamSettings, StreamWorker

from .conftest import AGG_FEATURES, NOW, REFS, Clock, write_repo

TS = pa.timestamp("us", tz="UTC")


def random_entries(rng: random.Random, n: int) -> list[dict]:
    """Events from 65 minutes before NOW (some too old to count online) to 2 hours after,
    in random order; values with nulls, floats that do not add up exactly, repeated cities."""
    entries = []
    for i in range(n):
        at = NOW + timedelta(microseconds=rng.randrange(-65 * 60 * 10**6, 120 * 60 * 10**6))
        fields = {"driver_id": str(rng.randrange(6)), "event_timestamp": at.isoformat(), "event_id": f"e{i}"}
        if rng.random() < 0.9:
            fields["fare"] = repr(rng.choice([rng.uniform(0, 80), 0.1, 1e-9, 12345.678]))
        if rng.random() < 0.9:
            fields["distance"] = str(rng.randrange(-5, 50))
        if rng.random() < 0.8:
            fields["city"] = rng.choice(["a", "b", "c", "zz"])
        if rng.random() < 0.3:  # several events at one time: `last` breaks the tie by created time
            fields["created"] = (at + timedelta(seconds=rng.randrange(3))).isoformat()
        entries.append(fields)
    return entries


@pytest.mark.parametrize(("online", "engine"), [("redis", "duckdb"), ("sqlite", "duckdb"), ("redis", "spark")])
def test_online_equals_offline_at_every_time(tmp_path, redis_url, redis_project, redis_client, online, engine,
                                             request):
    offline = "offline_store: data/offline\n"
    if engine == "spark":  # the training set from the Spark engine, the online side as ever
        request.getfixturevalue("spark_session")
        offline = "offline_store:\n  path: data/offline\n  engine: spark\n  master: local[2]\n"
    rng = random.Random(20240501)
    stream = f"{redis_project}-trips"
    streaming = f"""
    streaming:
      redis_url: {redis_url}
      streams: [{{stream: {stream}, push_source: trips_push}}]
      batch_size: 97
      flush_seconds: 3600
      claim_idle_seconds: 36000
    """
    repo = write_repo(tmp_path / "repo", redis_project, online, redis_url, streaming, offline=offline)
    clock = Clock(NOW)  # the worker's clock: events before NOW - 1h are late
    entries = random_entries(rng, 1200)
    retries = [dict(e) for e in rng.sample(entries, 150)]  # a producer sending events again
    sequence = entries + retries
    rng.shuffle(sequence)
    for fields in sequence[:600]:
        redis_client.xadd(stream, fields)

    with FeatureStore(config=load_config(repo, env={}), clock=clock) as store:
        store.apply()
        settings = StreamSettings.from_config(store.config, consumer="parity")
        crashed = StreamWorker(store, settings)
        crashed.step()  # applies a first batch online, then dies before appending it offline
        crashed.conn.close()
        for fields in sequence[600:]:
            redis_client.xadd(stream, fields)
        worker = StreamWorker(store, settings)  # restarted: re-applies its pending entries first
        while worker.step():
            pass
        worker.close()
        assert redis_client.xpending(stream, "featurestore")["pending"] == 0

        drivers, times = [], []
        for _ in range(60):  # lookups from NOW to 2h10m after (the online state serves "now" onwards)
            at = NOW + timedelta(microseconds=rng.randrange(0, 130 * 60 * 10**6))
            drivers += list(range(7))  # driver 6 never has events
            times += [at] * 7
        for e in rng.sample(entries, 60):  # at an event's time, and as it leaves each window
            at = NOW.fromisoformat(e["event_timestamp"])
            for lookup in (at, at + timedelta(minutes=10), at + timedelta(hours=1)):
                if lookup >= NOW:
                    drivers.append(int(e["driver_id"]))
                    times.append(lookup)
        entity_df = pa.table({"driver_id": drivers, "event_timestamp": pa.array(times, TS)})
        offline = store.get_historical_features(entity_df, REFS).to_arrow().to_pylist()

        late = sum(1 for e in entries if NOW.fromisoformat(e["event_timestamp"]) <= NOW - timedelta(hours=1))
        assert late > 0 and any(row["fare_count_10m"] > 1 for row in offline)
        truth = [(int(e["driver_id"]), NOW.fromisoformat(e["event_timestamp"]), "fare" in e) for e in entries]
        for row in offline:  # the store's clock is the lookup time
            clock.now = at = row["event_timestamp"]
            got = store.get_online_features(REFS, [{"driver_id": row["driver_id"]}]).to_dict()
            assert {f: got[f][0] for f in AGG_FEATURES} == {f: row[f] for f in AGG_FEATURES}, (row["driver_id"], at)
            # and each event counted once (retries and redeliveries included)
            assert row["fare_count_10m"] == sum(1 for d, t, fare in truth if d == row["driver_id"] and fare
                                                and at - timedelta(minutes=10) < t <= at)
