"""In-process online read latency: FeatureStore.get_online_features from Redis and SQLite,
beside a raw redis-py pipelined HMGET of the same keys with the values decoded.

    .venv/bin/python bench/online.py --calls 5000
    .venv/bin/python bench/online.py --calls 5000 --cluster   # + a local 3-primary Redis Cluster

With ``--cluster`` (or ``--cluster-url redis+cluster://host:port``) the same reads run
against a Redis Cluster too, blocking (``get_online_features``) and on an event loop
(the server's path, ``read_async``), next to the single Redis; ``cluster_p99_vs_redis``
is the ratio of their p99s (issue 16: within 1.5x).

Reads 1 entity x 3 features and 100 entities x 3 features from the 1M-row workload's
materialized store (10,000 drivers). Prints p50/p99 in milliseconds as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from datetime import datetime, timezone

import redis

from repo import bench_repo

REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
READ_AT = datetime(2024, 1, 5, 5, tzinfo=timezone.utc)
END = READ_AT  # materialize everything up to the (injected) now: limits.max_future refuses later ends
DRIVERS = range(1_000, 11_000)


def percentiles(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"p50_ms": round(statistics.median(samples) * 1e3, 4),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1] * 1e3, 4)}


def measure(fn, batches: list, warmup: int = 200) -> dict:
    for keys in batches[:warmup]:
        fn(keys)
    samples = []
    for keys in batches:
        began = time.perf_counter()
        fn(keys)
        samples.append(time.perf_counter() - began)
    return percentiles(samples)


def measure_async(store, row_batches: list) -> dict:
    """The server's read (``read_online_async``: the online store's ``read_async``) on one event loop."""
    from featurestore.online.read import read_online_async

    plan = store.read_plan(REFS)

    async def run() -> dict:
        for rows in row_batches[:200]:
            await read_online_async(store.online, plan, rows)
        samples = []
        for rows in row_batches:
            began = time.perf_counter()
            await read_online_async(store.online, plan, rows)
            samples.append(time.perf_counter() - began)
        await store.online.aclose()
        return percentiles(samples)

    return asyncio.run(run())


@contextmanager
def local_cluster(primaries: int = 3):
    """A throwaway Redis Cluster (no replicas) on free ports; yields its redis+cluster:// URL."""
    folder = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    base = random.randrange(21000, 29000)  # cluster bus ports: +10000
    ports = [base + i for i in range(primaries)]
    procs = [subprocess.Popen(["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                               "--cluster-config-file", f"nodes-{p}.conf", "--save", "", "--appendonly", "no",
                               "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for p in ports]
    try:
        for p in ports:
            for _ in range(500):
                if subprocess.run(["redis-cli", "-p", str(p), "ping"], capture_output=True).stdout.strip() == b"PONG":
                    break
                time.sleep(0.02)
        subprocess.run(["redis-cli", "--cluster", "create", *[f"127.0.0.1:{p}" for p in ports], "--cluster-yes"],
                       check=True, capture_output=True)
        for _ in range(500):
            if all(b"cluster_state:ok" in subprocess.run(["redis-cli", "-p", str(p), "cluster", "info"],
                                                         capture_output=True).stdout for p in ports):
                break
            time.sleep(0.05)
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--cluster-url", default="", help="a Redis Cluster to compare (redis+cluster://host:port)")
    parser.add_argument("--cluster", action="store_true", help="start a local 3-primary Redis Cluster to compare")
    args = parser.parse_args()
    if args.cluster and not args.cluster_url:
        with local_cluster() as url:
            args.cluster_url = url
            return run(args)
    return run(args)


def run(args) -> None:
    from featurestore import FeatureStore
    from featurestore.online.entity_keys import entity_key_encoder
    from featurestore.online.values import value_decoder
    from featurestore.types import Float32, Int64

    rng = random.Random(1)
    results = {}
    stores = {}
    for online in ("redis", "sqlite", *(["redis_cluster"] if args.cluster_url else [])):
        # The clock sits just after the data ends, so values are within the 2 h ttl (PRESENT).
        url = args.cluster_url if online == "redis_cluster" else args.redis_url
        store = FeatureStore(repo_path=bench_repo("1m", online, url), clock=lambda: READ_AT.timestamp())
        store.apply()
        store.materialize(None, END)
        stores[online] = store

    # The raw baseline reads the keys our Redis store wrote, so both decode the same bytes.
    client = redis.Redis.from_url(args.redis_url)
    entity_key = entity_key_encoder(("driver_id",))
    prefix = f"{stores['redis'].project}:".encode()
    fields = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
              "driver_hourly_stats:avg_daily_trips", "driver_hourly_stats:@ts"]  # docs/online-store.md
    decoders = [value_decoder(Float32), value_decoder(Float32), value_decoder(Int64)]

    def raw(keys):
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, fields)
        out = []
        for values in pipe.execute():
            out.append([None if v is None else d(v) for d, v in zip(decoders, values)] + [values[3]])
        return out

    for n in (1, 100):
        batches = [[rng.choice(DRIVERS) for _ in range(n)] for _ in range(args.calls)]
        row_batches = [[{"driver_id": d} for d in b] for b in batches]
        entry = {}
        for online, store in stores.items():
            statuses = store.get_online_features(REFS, row_batches[0]).statuses[1]
            assert statuses.count("PRESENT") >= len(statuses) * 0.9, statuses  # measuring real values
            entry[f"ours_{online}"] = measure(lambda rows: store.get_online_features(REFS, rows), row_batches)
        key_batches = [[prefix + entity_key((d,)) for d in b] for b in batches]
        entry["raw_redis_hmget"] = measure(raw, key_batches)
        entry["redis_p99_vs_raw"] = round(entry["ours_redis"]["p99_ms"] / entry["raw_redis_hmget"]["p99_ms"], 3)
        if args.cluster_url:
            for online in ("redis", "redis_cluster"):
                entry[f"ours_{online}_async"] = measure_async(stores[online], row_batches)
            entry["cluster_p99_vs_redis"] = round(entry["ours_redis_cluster"]["p99_ms"] / entry["ours_redis"]["p99_ms"], 3)
            entry["cluster_async_p99_vs_redis_async"] = round(
                entry["ours_redis_cluster_async"]["p99_ms"] / entry["ours_redis_async"]["p99_ms"], 3)
        results[f"{n}_entities_x_3_features"] = entry
    print(json.dumps({"benchmark": "online", "calls": args.calls, "results": results}, indent=2))


if __name__ == "__main__":
    main()
