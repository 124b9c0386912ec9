"""Point-in-time join benchmark: our path against a plain DuckDB ASOF join, same files, same run.

    .venv/bin/python bench/pit.py                          # the default cases (not 100m_10m)
    .venv/bin/python bench/pit.py --cases 10m_10k,10m_1m --runs 3
    .venv/bin/python bench/pit.py --cases 100m_10m --runs 1 --memory-limit 12GB
    .venv/bin/python bench/pit.py --list

Data is made once (seeded, ``bench/pit_data.py``) under bench/data (gitignored) and
reused. Every run is a fresh subprocess, so the peak RSS reported is that path's own;
the paths' runs are interleaved, since a shared machine's load drifts. Both paths get the
same DuckDB ``--threads`` and ``--memory-limit`` (spilling to ``--temp-dir``). Prints one
JSON object: per case the median wall and CPU seconds (user + system, all threads:
steadier than wall time on a busy machine) and the peak RSS of each path, ``ratio`` and
``cpu_ratio`` (ours / asof), and ``entity_set_scaling``: 10M x 10k and x 100k against
10M x 1M.

- ``ours``: what a user calls, ``FeatureStore.get_historical_features(...).to_arrow()``
  on a repo over the case's files (opening the store and applying it are not timed).
- ``ours_plain`` (known_at case): the same without ``known_at_timestamp``.
- ``asof``: the physical-limit proxy, a hand-written ``ASOF LEFT JOIN`` over the same
  files with the ttl applied and no tie-breaking, no ordering.
- ``spark`` (with ``--engine spark``): ``ours`` on the Spark offline engine in local mode
  (``--spark-master``, default ``local[*]``), the session started before the clock; its
  ``spark_ratio`` is spark / ours, and ``spark_phases`` splits one more run into the entity
  rows' trip into Spark, the join computed in Spark (written nowhere) and its collection
  back as Arrow, put in entity order.

    .venv/bin/python bench/pit.py --engine spark --cases 10m_1m --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pit_data import DATA, DEFINITIONS, ROWS_PER_DRIVER, TABLES, TTL, entities, features  # noqa: E402

SIZES = {"1m": 100_000, "10m": 1_000_000}  # for bench/repo.py: table -> entity rows


@dataclass(frozen=True)
class Case:
    table: str
    entity_rows: int
    variant: str = "plain"
    known_at: bool = False
    day: int | None = None  # entity times on this day of the data only

    @property
    def paths(self) -> tuple[str, ...]:
        return ("ours", "ours_plain", "asof") if self.known_at else ("ours", "asof")


CASES = {
    "10m_10k": Case("10m", 10_000),
    "10m_100k": Case("10m", 100_000),
    "10m_1m": Case("10m", 1_000_000),
    "30m_3m": Case("30m", 3_000_000),
    "10m_part_100k_1day": Case("10m", 100_000, "part", day=2),
    "10m_1m_known_at": Case("10m", 1_000_000, known_at=True),
    "10m_1m_str": Case("10m", 1_000_000, "str"),
    "10m_1m_wide": Case("10m", 1_000_000, "wide"),
    "100m_10m": Case("100m", 10_000_000),
}
DEFAULT = [name for name in CASES if name != "100m_10m"]


def generate(size: str) -> tuple[dict[str, str], str]:
    """The plain table and entity set of ``size`` (1m, 10m), for the other benches."""
    return {"driver_hourly_stats": features(size)}, entities(size, SIZES[size])


def files(case: Case) -> tuple[str, str]:
    return features(case.table, case.variant), entities(case.table, case.entity_rows, case.variant, case.day)


FEATURES = ("conv_rate", "acc_rate", "avg_daily_trips")


def prepare_ours(name: str, case: Case, args, engine: str = "duckdb") -> object:
    """Open and apply a repo over the case's files (not timed: a notebook does it once)."""
    from featurestore import FeatureStore

    repo = DATA / f"repo_pit_{name}{'_spark' if engine == 'spark' else ''}"
    repo.mkdir(parents=True, exist_ok=True)
    spark = (f"  engine: spark\n  master: {args.spark_master!r}\n  conf:\n    spark.ui.enabled: 'false'\n"
             f"    spark.ui.showConsoleProgress: 'false'\n    spark.driver.memory: {args.spark_memory}\n"
             f"    spark.sql.shuffle.partitions: '{args.spark_partitions}'\n") if engine == "spark" else ""
    (repo / "featurestore.yaml").write_text(
        f"project: bench_pit\nregistry: registry.db\nonline_store:\n  type: sqlite\n  path: online.db\n"
        f"offline_store:\n  path: offline\n  threads: {args.threads}\n  memory_limit: {args.memory_limit}\n"
        f"  temp_directory: {args.temp_dir}\n{spark}")
    partition = '"date"' if case.variant == "part" else "None"
    (repo / "features.py").write_text(DEFINITIONS.format(path=files(case)[0], partition=partition))
    store = FeatureStore(repo_path=repo)
    store.apply()
    return store


def ours(store, case: Case, entity_path: str, known_at: bool) -> int:
    import pyarrow.parquet as pq

    refs = [f"driver_hourly_stats:{f}" for f in FEATURES]
    rows = pq.read_table(entity_path)
    return store.get_historical_features(rows, refs, known_at_timestamp=known_at).to_arrow().num_rows


def asof(case: Case, source: str, entity_path: str, args) -> int:
    """The physical-limit proxy: a plain ASOF LEFT JOIN, ttl applied, no tie-breaking."""
    import duckdb

    ttl_us = TTL // timedelta(microseconds=1)
    fresh = f"f.event_timestamp >= e.event_timestamp - to_microseconds({ttl_us})"
    cols = ", ".join(f"CASE WHEN {fresh} THEN f.{c} END AS {c}" for c in FEATURES)
    scan = (f"read_parquet('{source}/**/*.parquet', hive_partitioning = true)" if case.variant == "part"
            else f"read_parquet('{source}')")
    sql = f"""
        SELECT e.*, {cols}
        FROM read_parquet('{entity_path}') e
        ASOF LEFT JOIN {scan} f
          ON e.driver_id = f.driver_id AND e.event_timestamp >= f.event_timestamp
    """
    config = {"threads": args.threads, "memory_limit": args.memory_limit, "temp_directory": args.temp_dir}
    con = duckdb.connect(config=config)
    con.execute("SET enable_progress_bar_print = false")
    return con.sql(sql).to_arrow_table().num_rows


def _child(path: str, name: str, args) -> None:
    """Run one measured call in this (fresh) process; print seconds and peak RSS."""
    import resource

    case = CASES[name]
    source, entity_path = files(case)
    # Import what either path needs before the clock starts: the join is measured, not
    # Python's module loading.
    import duckdb  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.dataset  # noqa: F401  (pq.read_table's first call imports it, and pandas)
    import pyarrow.parquet  # noqa: F401

    import featurestore.offline.duckdb  # noqa: F401

    if path == "spark":
        _spark_child(name, case, entity_path, args)
        return
    store = prepare_ours(name, case, args) if path.startswith("ours") else None
    before = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = before.ru_utime + before.ru_stime
    began = time.perf_counter()
    if store is not None:
        rows = ours(store, case, entity_path, known_at=case.known_at and path == "ours")
    else:
        rows = asof(case, source, entity_path, args)
    seconds = time.perf_counter() - began
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "peak_rss_mib": usage.ru_maxrss / 1024, "rows": rows}))


def _spark_child(name: str, case: Case, entity_path: str, args) -> None:
    """The ``spark`` path: ``ours`` on the Spark engine, then one run split into phases."""
    import resource

    import pyarrow.parquet as pq

    from featurestore.historical import full_request
    from featurestore.offline.pit_sql import Window
    from featurestore.offline.spark import in_entity_order
    from featurestore.offline.spark_pit import pit_frame

    store = prepare_ours(name, case, args, engine="spark")
    engine = store.offline
    engine.spark  # the JVM starts before the clock
    began = time.perf_counter()
    rows = ours(store, case, entity_path, known_at=case.known_at)
    seconds = time.perf_counter() - began
    # Where the time goes: the same join again, phase by phase.
    phases = {}
    table = pq.read_table(entity_path)
    request = full_request(store, store.get_feature_view("driver_hourly_stats"))
    at = time.perf_counter()
    frame = engine._entities(table, "event_timestamp", ["driver_id"]).cache()
    frame.count()
    phases["entities_to_spark_s"] = time.perf_counter() - at
    scan = engine._scan(request, request.join_keys)
    us = frame.agg({"__t": "min"}).collect()[0][0], frame.agg({"__t": "max"}).collect()[0][0]
    mine = frame.select("__rn", "__t", frame["__e0"].alias("__k0"))
    joined = pit_frame(engine.spark, request, scan, mine, Window(*us), case.known_at)
    at = time.perf_counter()
    joined.write.format("noop").mode("overwrite").save()
    phases["join_in_spark_s"] = time.perf_counter() - at
    at = time.perf_counter()
    in_entity_order(joined.toArrow())
    phases["join_and_collect_as_arrow_s"] = time.perf_counter() - at
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_kib / 1024, "rows": rows,
                      "phases": {k: round(v, 3) for k, v in phases.items()}}))


def _run(path: str, name: str, args) -> dict:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    command = [sys.executable, __file__, "--child", path, "--cases", name, "--threads", str(args.threads),
               "--memory-limit", args.memory_limit, "--temp-dir", args.temp_dir, "--spark-master",
               args.spark_master, "--spark-memory", args.spark_memory, "--spark-partitions",
               str(args.spark_partitions)]
    # stderr passes through: a long join's progress line shows on the terminal
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ratios(result: dict, base: str) -> dict:
    """ours / ``base``, in wall seconds and in CPU seconds (steadier on a busy machine)."""
    ours, other = result["ours"], result[base]
    return {"ratio": round(ours["median_s"] / other["median_s"], 3),
            "cpu_ratio": round(ours["median_cpu_s"] / other["median_cpu_s"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=",".join(DEFAULT), help=f"comma-separated, of: {', '.join(CASES)}")
    parser.add_argument("--runs", type=int, default=3, help="runs per path (median reported)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads, both paths")
    parser.add_argument("--memory-limit", default="12GB", help="DuckDB memory_limit, both paths")
    parser.add_argument("--temp-dir", default=str(DATA / "tmp"), help="where DuckDB spills, both paths")
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb",
                        help="spark: also run each case on the Spark engine (path 'spark')")
    parser.add_argument("--spark-master", default="local[*]", help="the Spark engine's master")
    parser.add_argument("--spark-memory", default="8g", help="spark.driver.memory (local mode: all of Spark)")
    parser.add_argument("--spark-partitions", type=int, default=8, help="spark.sql.shuffle.partitions")
    parser.add_argument("--list", action="store_true", help="print the cases and exit")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.list:
        print(json.dumps({n: {"feature_rows": TABLES[c.table] * ROWS_PER_DRIVER, **c.__dict__}
                          for n, c in CASES.items()}, indent=2))
        return
    names = args.cases.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")
    if args.child:
        _child(args.child, names[0], args)
        return
    report = {}
    for name in names:
        case = CASES[name]
        files(case)  # made before any clock starts
        paths = case.paths + (("spark",) if args.engine == "spark" else ())
        runs: dict[str, list[dict]] = {path: [] for path in paths}
        for _ in range(args.runs):  # paths interleaved: a shared machine's load drifts
            for path in paths:
                runs[path].append(_run(path, name, args))
        result = {path: {
            "median_s": round(statistics.median(r["seconds"] for r in rs), 3),
            **({"median_cpu_s": round(statistics.median(r["cpu_s"] for r in rs), 3)} if "cpu_s" in rs[0] else {}),
            "peak_rss_mib": round(max(r["peak_rss_mib"] for r in rs), 1),
            "rows": rs[0]["rows"],
        } for path, rs in runs.items()}
        if "phases" in runs.get("spark", [{}])[0]:
            result["spark_phases"] = runs["spark"][0]["phases"]
        result.update(_ratios(result, "asof"))
        if "spark" in result:
            result["spark_ratio"] = round(result["spark"]["median_s"] / result["ours"]["median_s"], 3)
        if case.known_at:
            result.update({f"{k}_to_ours_plain": v for k, v in _ratios(result, "ours_plain").items()})
        report[name] = {"feature_rows": TABLES[case.table] * ROWS_PER_DRIVER, "entity_rows": case.entity_rows,
                        **result}
        print(json.dumps({name: report[name]}), file=sys.stderr)  # progress, as each case ends
    settings = {"threads": args.threads, "memory_limit": args.memory_limit}
    print(json.dumps({"runs": args.runs, "cpus": os.cpu_count(), **settings, "cases": report,
                      "entity_set_scaling": _scaling(report)}, indent=2))


def _scaling(report: dict) -> dict:
    """How our cost follows the entity set: 10M x 10k and x 100k against 10M x 1M (the
    target for 10k is at most 0.25)."""
    full = report.get("10m_1m")
    if not full:
        return {}
    return {f"{name}_to_10m_1m": {
        "wall": round(report[name]["ours"]["median_s"] / full["ours"]["median_s"], 3),
        "cpu": round(report[name]["ours"]["median_cpu_s"] / full["ours"]["median_cpu_s"], 3),
    } for name in ("10m_10k", "10m_100k") if name in report}


if __name__ == "__main__":
    main()
