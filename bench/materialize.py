"""Materialization throughput: FeatureStore.materialize into Redis and SQLite, beside a raw
baseline (DuckDB picks the latest row per driver by event time alone, redis-py writes it
with pipelined HSET); ours also breaks event-time ties by created time.

    .venv/bin/python bench/materialize.py --sizes 1m,10m --runs 3

Rows/s counts source rows scanned (1M or 10M) per second of wall time. Each path starts
from an empty online store. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from datetime import datetime, timezone

import duckdb
import redis

from repo import bench_repo, generate

# Just after the generated data ends (it starts 2024-01-01; see bench/pit.py): every row is in the
# window, and the end is not in the future (limits.max_future refuses that).
END = datetime(2024, 1, 5, 5, tzinfo=timezone.utc)
ROWS = {"1m": 1_000_000, "10m": 10_000_000}


def ours(size: str, online: str, redis_url: str) -> float:
    from featurestore import FeatureStore

    repo = bench_repo(size, online, redis_url)
    for leftover in ("online.db", "online.db-wal", "online.db-shm", "registry.db"):
        if (repo / leftover).exists():
            os.remove(repo / leftover)
    with FeatureStore(repo_path=repo) as store:
        store.apply()
        if online == "redis":
            _flush_project(redis_url, store.project)
        began = time.perf_counter()
        store.materialize(None, END)
        return time.perf_counter() - began


def raw(size: str, redis_url: str) -> float:
    paths, _ = generate(size)
    client = redis.Redis.from_url(redis_url)
    _flush_project(redis_url, "raw")
    began = time.perf_counter()
    con = duckdb.connect()
    # The physical limit's proxy: latest row per driver by event time (no created-time tie
    # break), one HSET per driver, pipelined.
    reader = con.sql(
        f"""SELECT driver_id, arg_max(struct_pack(conv_rate, acc_rate, avg_daily_trips, event_timestamp),
                                      event_timestamp) AS r
            FROM read_parquet('{paths["driver_hourly_stats"]}') WHERE event_timestamp <= ?
            GROUP BY driver_id""",
        params=[END],
    ).to_arrow_reader(50_000)
    for batch in reader:
        pipe = client.pipeline(transaction=False)
        for driver, row in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
            pipe.hset(f"raw:{driver}", mapping={
                "driver_hourly_stats:conv_rate": row["conv_rate"],
                "driver_hourly_stats:acc_rate": row["acc_rate"],
                "driver_hourly_stats:avg_daily_trips": row["avg_daily_trips"],
                "driver_hourly_stats:@ts": int(row["event_timestamp"].timestamp() * 1_000_000),
            })
            if len(pipe) >= 5_000:
                pipe.execute()
        pipe.execute()
    return time.perf_counter() - began


def _flush_project(redis_url: str, project: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{project}:*", count=10_000))
    for i in range(0, len(keys), 10_000):
        client.delete(*keys[i:i + 10_000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,10m")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    results = {}
    for size in args.sizes.split(","):
        generate(size)
        timings = {
            "raw_duckdb_redis": [raw(size, args.redis_url) for _ in range(args.runs)],
            "ours_redis": [ours(size, "redis", args.redis_url) for _ in range(args.runs)],
            "ours_sqlite": [ours(size, "sqlite", args.redis_url) for _ in range(args.runs)],
        }
        medians = {k: statistics.median(v) for k, v in timings.items()}
        results[size] = {
            "source_rows": ROWS[size],
            **{f"{k}_s": round(v, 3) for k, v in medians.items()},
            **{f"{k}_rows_per_s": round(ROWS[size] / v) for k, v in medians.items()},
            "redis_rate_vs_raw": round(medians["raw_duckdb_redis"] / medians["ours_redis"], 3),
        }
    _flush_project(args.redis_url, "raw")
    for size in args.sizes.split(","):
        _flush_project(args.redis_url, f"bench_{size}")
    print(json.dumps({"benchmark": "materialize", "runs": args.runs, "results": results}, indent=2))


if __name__ == "__main__":
    main()
