"""Stream worker throughput and XADD-to-visible latency (`featurestore stream`, Redis online store).

    .venv/bin/python bench/stream.py [--redis-url redis://127.0.0.1:6379/0]

A view of 3 aggregations (fare sum, trip count, distance max) over 2 windows (10 min,
1 h) of 10,000 drivers, fed by one Redis Stream, consumed by one `featurestore stream`
process (a subprocess, launched as a user would).

- throughput: --events entries are added first; then the worker (--flush-seconds 1) is
  started and timed from its first progress until every entry is applied online
  (``applied_online_per_second``: lag 0) and appended offline and acknowledged
  (``events_per_second``: pending 0 too);
- visibility: a producer process adds --rate events a second for --seconds while probes
  add one event each for a fresh driver and poll `get_online_features` (every 0.5 ms)
  until its count is 1: the delay from just before XADD to that read.

Without --redis-url (or REDIS_URL) it starts a private redis-server. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from featurestore import FeatureStore  # noqa: E402
from featurestore.config import load_config  # noqa: E402
from featurestore.offline.files import write_parquet_atomic  # noqa: E402

DEFINITIONS = '''
from datetime import timedelta

from featurestore import Aggregation, Entity, FeatureView, Field, FileSource, PushSource
from featurestore.types import Float64, Int64

driver = Entity(name="driver", join_keys=["driver_id"])
rides = FileSource(name="rides", path="data/rides.parquet", timestamp_field="event_timestamp")
rides_push = PushSource(name="rides_push", batch_source=rides)
ride_stats = FeatureView(
    name="ride_stats", entities=[driver], source=rides_push,
    schema=[Field("driver_id", Int64), Field("fare", Float64), Field("distance", Int64)],
    aggregations=[Aggregation(c, f, timedelta(minutes=w)) for w in (10, 60)
                  for c, f in (("fare", "sum"), ("fare", "count"), ("distance", "max"))],
)
'''
FEATURES = [f"ride_stats:{c}_{f}_{w}" for w in ("10m", "1h") for c, f in (("fare", "sum"), ("fare", "count"),
                                                                         ("distance", "max"))]
ENTITIES = 10_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(500):
        try:
            if redis.Redis.from_url(url).ping():
                return proc, url
        except redis.ConnectionError:
            time.sleep(0.01)
    raise SystemExit("redis-server did not start")


def make_repo(folder: Path, project: str, url: str, stream: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "featurestore.yaml").write_text(
        f"project: {project}\nregistry: data/registry.db\noffline_store: data/offline\n"
        f"online_store:\n  type: redis\n  connection_string: {url}\n"
        f"streaming:\n  streams: [{{stream: {stream}, push_source: rides_push}}]\n"
    )
    (folder / "features.py").write_text(DEFINITIONS)
    schema = pa.schema([("driver_id", pa.int64()), ("event_timestamp", pa.timestamp("us", tz="UTC")),
                        ("fare", pa.float64()), ("distance", pa.int64())])
    write_parquet_atomic(schema.empty_table(), folder / "data" / "rides.parquet")
    with FeatureStore(repo_path=folder) as store:
        store.apply()
    return folder


def entry(rng: random.Random, driver: int | None = None) -> dict:
    at = datetime.now(timezone.utc) - timedelta(seconds=rng.uniform(0, 30))  # a little out of order
    return {"driver_id": driver if driver is not None else rng.randrange(ENTITIES),
            "event_timestamp": at.isoformat(), "fare": f"{rng.uniform(3, 80):.2f}", "distance": rng.randrange(1, 40)}


def add(client: redis.Redis, stream: str, entries: list[dict]) -> None:
    pipe = client.pipeline(transaction=False)
    for fields in entries:
        pipe.xadd(stream, fields)
    pipe.execute()


def start_worker(repo: Path, consumer: str, *flags: str) -> subprocess.Popen:
    exe = str(Path(sys.executable).with_name("featurestore"))
    return subprocess.Popen([exe, "--repo", str(repo), "stream", "--consumer", consumer, "--metrics-port", "0",
                             "--log-level", "warning", *flags], stderr=subprocess.DEVNULL)


def group_info(client: redis.Redis, stream: str) -> dict:
    groups = client.xinfo_groups(stream)
    return groups[0] if groups else {"entries-read": 0, "lag": None, "pending": 0}


def throughput(client: redis.Redis, repo: Path, stream: str, events: int) -> dict:
    rng = random.Random(1)
    for start in range(0, events, 10_000):
        add(client, stream, [entry(rng) for _ in range(min(10_000, events - start))])
    worker = start_worker(repo, "throughput", "--flush-seconds", "1")
    try:
        while not group_info(client, stream)["entries-read"]:
            time.sleep(0.005)
        began = time.perf_counter()
        applied_at = None
        while True:
            info = group_info(client, stream)
            if applied_at is None and info["lag"] == 0:
                applied_at = time.perf_counter()  # all read (and applied online, read-apply is one step)
            if info["lag"] == 0 and info["pending"] == 0:
                break
            time.sleep(0.005)
        done = time.perf_counter()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait()
    return {"events": events, "seconds": round(done - began, 3),
            "events_per_second": round(events / (done - began)),  # applied, appended offline, acknowledged
            "applied_online_per_second": round(events / (applied_at - began))}


def produce(url: str, stream: str, rate: int, seconds: float) -> None:
    client = redis.Redis.from_url(url)
    rng = random.Random(2)
    tick = 0.01
    per_tick = max(1, int(rate * tick))
    began = time.perf_counter()
    n = 0
    while time.perf_counter() - began < seconds:
        add(client, stream, [entry(rng) for _ in range(per_tick)])
        n += per_tick
        ahead = began + n / rate - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)


def visibility(client: redis.Redis, repo: Path, url: str, stream: str, rate: int, seconds: float) -> dict:
    worker = start_worker(repo, "latency")
    rng = random.Random(3)
    delays = []
    try:
        producer = multiprocessing.Process(target=produce, args=(url, stream, rate, seconds))
        with FeatureStore(config=load_config(repo, env={})) as store:
            def count(driver: int) -> int:
                return store.get_online_features(["ride_stats:fare_count_10m"], [{"driver_id": driver}]).to_dict()[
                    "fare_count_10m"][0]

            client.xadd(stream, entry(rng, ENTITIES))  # wait for the worker to be up
            while count(ENTITIES) != 1:
                time.sleep(0.01)
            length = client.xlen(stream)
            producer.start()
            began = time.perf_counter()
            probe = ENTITIES
            while time.perf_counter() - began < seconds:
                probe += 1
                fields = entry(rng, probe)
                sent = time.perf_counter()
                client.xadd(stream, fields)
                while count(probe) != 1:
                    time.sleep(0.0005)
                delays.append(time.perf_counter() - sent)
                time.sleep(0.02)
            produced = client.xlen(stream) - length - len(delays)
            producer.join()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait()
    delays.sort()
    return {"target_rate": rate, "achieved_rate": round(produced / seconds), "probes": len(delays),
            "p50_ms": round(statistics.median(delays) * 1e3, 2),
            "p99_ms": round(delays[max(0, int(len(delays) * 0.99) - 1)] * 1e3, 2),
            "max_ms": round(delays[-1] * 1e3, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL"))
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    server = None
    try:
        url = args.redis_url
        if not url:
            server, url = start_redis(folder)
        client = redis.Redis.from_url(url)
        project = f"bench_stream_{os.getpid()}"
        results = {"entities": ENTITIES, "aggregations": "fare sum, fare count, distance max x 10m, 1h"}
        stream = f"{project}-rides"
        repo = make_repo(folder / "throughput", project, url, stream)
        results["throughput"] = throughput(client, repo, stream, args.events)
        stream = f"{project}-rides-live"
        repo = make_repo(folder / "visibility", project + "_live", url, stream)
        results["visibility"] = visibility(client, repo, url, stream, args.rate, args.seconds)
        print(json.dumps(results, indent=2))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
