"""In-process online read latency: FeatureStore.get_online_features from Redis and SQLite,
beside a raw redis-py pipelined HMGET of the same keys with the values decoded.

    .venv/bin/python bench/online.py --calls 5000

Reads 1 entity x 3 features and 100 entities x 3 features from the 1M-row workload's
materialized store (10,000 drivers). Prints p50/p99 in milliseconds as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()

    from featurestore import FeatureStore
    from featurestore.online.entity_keys import entity_key_encoder
    from featurestore.online.values import value_decoder
    from featurestore.types import Float32, Int64

    rng = random.Random(1)
    results = {}
    stores = {}
    for online in ("redis", "sqlite"):
        # The clock sits just after the data ends, so values are within the 2 h ttl (PRESENT).
        store = FeatureStore(repo_path=bench_repo("1m", online, args.redis_url), clock=lambda: READ_AT.timestamp())
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
        results[f"{n}_entities_x_3_features"] = entry
    print(json.dumps({"benchmark": "online", "calls": args.calls, "results": results}, indent=2))


if __name__ == "__main__":
    main()
