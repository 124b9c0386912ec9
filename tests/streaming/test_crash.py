"""`featurestore stream` as real processes: one is killed (SIGKILL) mid-stream, another
takes over its pending entries; no event is lost and none is counted twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.config import load_config

from .conftest import REFS, write_repo

pytestmark = pytest.mark.integration
TS = pa.timestamp("us", tz="UTC")
FEATURESTORE = str(Path(sys.executable).with_name("featurestore"))


def start_worker(repo: Path, consumer: str, *flags: str) -> subprocess.Popen:
    log = open(repo / f"{consumer}.log", "wb")
    return subprocess.Popen([FEATURESTORE, "--repo", str(repo), "stream", "--consumer", consumer,
                             "--metrics-port", "0", *flags], stdout=log, stderr=subprocess.STDOUT)


def group(redis_client, stream: str) -> dict:
    groups = redis_client.xinfo_groups(stream)  # none until the first worker creates it
    if not groups:
        return {"entries-read": 0, "pending": 0, "lag": None}
    # entries-read is nil until the group has read an entry: count it as 0.
    return {**groups[0], "entries-read": groups[0]["entries-read"] or 0}


def wait_for(condition, what: str, procs=(), limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        for proc in procs:
            assert proc.poll() is None, f"the worker exited early ({proc.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_a_killed_worker_loses_nothing_and_counts_nothing_twice(tmp_path, redis_url, redis_project, redis_client):
    stream = f"{redis_project}-trips"
    repo = write_repo(tmp_path / "repo", redis_project, "redis", redis_url, f"""
    streaming:
      streams: [{{stream: {stream}, push_source: trips_push}}]
      batch_size: 25
      flush_events: 300
      flush_seconds: 30
      claim_idle_seconds: 120
    """)
    with FeatureStore(config=load_config(repo, env={})) as store:
        store.apply()
    rng = random.Random(5)
    now = datetime.now(timezone.utc)
    sent: Counter[int] = Counter()

    def produce(n: int) -> None:
        pipe = redis_client.pipeline(transaction=False)
        for _ in range(n):
            driver = rng.randrange(10)
            sent[driver] += 1
            at = now - timedelta(seconds=rng.uniform(0, 20 * 60))  # out of order, within the windows
            pipe.xadd(stream, {"driver_id": driver, "event_timestamp": at.isoformat(), "fare": rng.randrange(100),
                               "distance": 1, "city": rng.choice("abc")})
        pipe.execute()

    produce(4000)
    first = start_worker(repo, "w1")
    try:
        # Kill it mid-stream: some batches appended offline and acknowledged, some applied online only.
        wait_for(lambda: group(redis_client, stream)["entries-read"] >= 1000 and
                 group(redis_client, stream)["pending"] > 0, "the first worker to get going", [first])
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    assert group(redis_client, stream)["pending"] > 0 and group(redis_client, stream)["lag"] > 0
    produce(1000)

    second = start_worker(repo, "w2", "--claim-idle", "1", "--flush-seconds", "0.2")
    try:
        wait_for(lambda: group(redis_client, stream)["lag"] == 0 and group(redis_client, stream)["pending"] == 0,
                 "every entry to be applied and acknowledged", [second])
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        second.kill()

    files = sorted((repo / "data" / "offline" / "pushed" / "trips_push").glob("*.parquet"))
    ids = pa.concat_tables([pq.read_table(f, columns=["_event_id"]) for f in files]).column(0).to_pylist()
    assert len(set(ids)) == 5000  # offline: every event (some appended twice, deduplicated by id)
    checked_at = datetime.now(timezone.utc)
    with FeatureStore(config=load_config(repo, env={}), clock=checked_at.timestamp) as store:
        drivers = list(range(10))
        online = store.get_online_features(REFS, {"driver_id": drivers}).to_dict()
        assert online["city_count_1h"] == [sent[d] for d in drivers]  # online: each event once
        entities = pa.table({"driver_id": drivers, "event_timestamp": pa.array([checked_at] * 10, TS)})
        offline = store.get_historical_features(entities, REFS).to_arrow()
        assert {c: online[c] for c in offline.column_names if c in online and c != "driver_id"} == \
            {c: offline.column(c).to_pylist() for c in offline.column_names if c not in ("driver_id", "event_timestamp")}
    log = (repo / "w2.log").read_text()
    assert "claimed" in log, log
    assert os.path.exists(repo / "w1.log")
