"""Point-in-time join benchmark: our path against a plain DuckDB ASOF join.

    .venv/bin/python bench/pit.py --sizes 1m,10m --runs 3

Generates (once, seeded) ``bench/data/driver_hourly_stats_<size>.parquet`` and an entity
set per size, then times each path ``--runs`` times, every run in a fresh subprocess so
the peak RSS reported is that path's own. Prints one JSON object.

- ``ours``: what a user calls, ``FeatureStore.get_historical_features(...).to_arrow()``
  on a repo over the same file (opening the store and applying it are not timed).
- ``asof``: the physical-limit proxy, a hand-written ``ASOF LEFT JOIN`` over the same
  files with the ttl applied and no tie-breaking, no ordering.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
ROWS_PER_DRIVER = 100
TTL = timedelta(hours=2)
START = datetime(2024, 1, 1, tzinfo=timezone.utc)
SIZES = {"1m": (10_000, 100_000), "10m": (100_000, 1_000_000)}  # drivers, entity rows


def generate(size: str) -> tuple[dict[str, str], str]:
    """Write the feature table and entity set for ``size`` unless present; their paths."""
    import numpy as np
    import pyarrow as pa
    from featurestore.offline.files import write_parquet_atomic

    drivers, entity_rows = SIZES[size]
    features = DATA / f"driver_hourly_stats_{size}.parquet"
    entities = DATA / f"entities_{size}.parquet"
    paths = {"driver_hourly_stats": str(features)}
    if features.exists() and entities.exists():
        return paths, str(entities)
    DATA.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20240101 + drivers)
    start_us = int(START.timestamp() * 1_000_000)
    hour_us = 3_600_000_000

    n = drivers * ROWS_PER_DRIVER
    driver_id = np.repeat(np.arange(1_000, 1_000 + drivers, dtype=np.int64), ROWS_PER_DRIVER)
    hour = np.tile(np.arange(ROWS_PER_DRIVER, dtype=np.int64), drivers)
    event_us = start_us + hour * hour_us + rng.integers(0, 60_000_000, n)
    # 2% of rows are late corrections: the same event time as the row before, created
    # later, so tie-breaking on the created timestamp matters.
    corrected = rng.random(n) < 0.02
    corrected[hour == 0] = False
    event_us[corrected] = event_us[np.flatnonzero(corrected) - 1]
    created_us = event_us + rng.integers(0, 600_000_000, n) + corrected * 3_600_000_000
    order = rng.permutation(n)  # files are not sorted by key or time in real life
    table = pa.table(
        {
            "driver_id": driver_id[order],
            "event_timestamp": pa.array(event_us[order], pa.timestamp("us", tz="UTC")),
            "created": pa.array(created_us[order], pa.timestamp("us", tz="UTC")),
            "conv_rate": rng.random(n, dtype=np.float32)[order],
            "acc_rate": rng.random(n, dtype=np.float32)[order],
            "avg_daily_trips": rng.integers(0, 1_000, n)[order],
        }
    )
    write_parquet_atomic(table, features)

    ids = rng.integers(1_000, 1_000 + drivers, entity_rows)
    unknown = rng.random(entity_rows) < 0.01
    ids[unknown] = rng.integers(10_000_000, 20_000_000, int(unknown.sum()))
    span = ROWS_PER_DRIVER * hour_us
    ts = start_us + rng.integers(0, span, entity_rows)
    late = rng.random(entity_rows) < 0.10  # past the data: beyond the ttl, so null
    ts[late] = start_us + span + 3 * hour_us + rng.integers(0, span, int(late.sum()))
    entity = pa.table(
        {
            "driver_id": ids,
            "event_timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
            "label": rng.random(entity_rows) < 0.5,
        }
    )
    write_parquet_atomic(entity, entities)
    return paths, str(entities)


_STORE = {}


def prepare_ours(size: str) -> None:
    """Open and apply a feature repo over the workload (not timed: a notebook does it once)."""
    from repo import bench_repo

    from featurestore import FeatureStore

    store = FeatureStore(repo_path=bench_repo(size, "sqlite"))
    store.apply()
    _STORE["store"] = store


def ours(paths: dict[str, str], entity_path: str) -> int:
    """The timed work of our path, as a user calls it; returns the result's row count."""
    import pyarrow.parquet as pq

    refs = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
    entities = pq.read_table(entity_path)
    return _STORE["store"].get_historical_features(entities, refs).to_arrow().num_rows


def asof(paths: dict[str, str], entity_path: str) -> int:
    """The physical-limit proxy: a plain ASOF LEFT JOIN, ttl applied, no tie-breaking."""
    import duckdb

    ttl_us = TTL // timedelta(microseconds=1)
    fresh = f"f.event_timestamp >= e.event_timestamp - to_microseconds({ttl_us})"
    features = ", ".join(
        f"CASE WHEN {fresh} THEN f.{c} END AS {c}" for c in ("conv_rate", "acc_rate", "avg_daily_trips")
    )
    sql = f"""
        SELECT e.*, {features}
        FROM read_parquet('{entity_path}') e
        ASOF LEFT JOIN read_parquet('{paths["driver_hourly_stats"]}') f
          ON e.driver_id = f.driver_id AND e.event_timestamp >= f.event_timestamp
    """
    return duckdb.connect().sql(sql).to_arrow_table().num_rows


PATHS = {"ours": ours, "asof": asof}


def _child(path: str, size: str) -> None:
    """Run one measured call in this (fresh) process; print seconds and peak RSS."""
    import resource

    paths, entity_path = generate(size)
    # Import what either path needs before the clock starts: the join is measured, not
    # Python's module loading.
    import duckdb  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.dataset  # noqa: F401  (pq.read_table's first call imports it, and pandas)
    import pyarrow.parquet  # noqa: F401

    import featurestore.offline.duckdb  # noqa: F401

    if path == "ours":
        prepare_ours(size)
    began = time.perf_counter()
    rows = PATHS[path](paths, entity_path)
    seconds = time.perf_counter() - began
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "rows": rows}))


def _run(path: str, size: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run(
        [sys.executable, __file__, "--child", path, "--sizes", size],
        check=True, capture_output=True, text=True, env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,10m", help="comma-separated: 1m, 10m")
    parser.add_argument("--runs", type=int, default=3, help="runs per path (median reported)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.sizes)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    report = {}
    for size in args.sizes.split(","):
        generate(size)
        result = {}
        for path in PATHS:
            runs = [_run(path, size) for _ in range(args.runs)]
            result[path] = {
                "median_s": round(statistics.median(r["seconds"] for r in runs), 3),
                "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
                "rows": runs[0]["rows"],
            }
        result["ratio"] = round(result["ours"]["median_s"] / result["asof"]["median_s"], 3)
        feature_rows, entity_rows = SIZES[size][0] * ROWS_PER_DRIVER, SIZES[size][1]
        report[size] = {"feature_rows": feature_rows, "entity_rows": entity_rows, **result}
    print(json.dumps({"runs": args.runs, "cpus": os.cpu_count(), "sizes": report}, indent=2))


if __name__ == "__main__":
    main()
