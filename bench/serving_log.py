"""Serving log overhead: what logging costs a request.

    .venv/bin/python bench/serving_log.py [--requests 20000] [--seconds 10] [--rounds 10] [--workers 1]

Two measurements, printed as one JSON object:

- ``hook``: in-process, the request-side cost of logging one ``/get-online-features``
  answer (building its log columns and queueing them: ``ServingLog.log_features`` without
  the sampling), per request shape, with the writer thread writing Parquet meanwhile as in
  a server; and the writer thread's throughput (rows/s to disk).
- ``http``: the example repo on a Redis online store (``REDIS_URL`` if it answers, else a
  private ``redis-server``), a feature service with ``logging_config``, served by two
  ``featurestore serve`` processes side by side, logging on and off
  (``FEATURESTORE_SERVING_LOG``); p99 at concurrency 1 and requests/s at concurrency 16,
  in rounds alternating between the two (bench/http.py's load generator). Target
  (issue 12): logging on costs at most 5% of p99 and of throughput.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]  # bench/http.py must not hide http

import argparse  # noqa: E402
import asyncio  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402


def _bench_http():
    """bench/http.py's load generator and process helpers (loaded by path: its name is taken)."""
    spec = importlib.util.spec_from_file_location("bench_http", _HERE / "http.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVICE = '''

from featurestore import LoggingConfig

logged_v1 = FeatureService(name="logged_v1", features=[driver_hourly_stats[["conv_rate", "acc_rate", "avg_daily_trips"]]],
                           logging_config=LoggingConfig(sample_rate=1.0))
'''
SHAPES = {"1x3": [1001], "10x3": [1001, 1002, 1003, 1004, 1005] * 2}


def quantiles_us(samples: list[float]) -> dict:
    q = statistics.quantiles(sorted(samples), n=100, method="inclusive")
    return {"median_us": round(q[49] * 1e6, 2), "p99_us": round(q[98] * 1e6, 2)}


def hook(store, folder: Path, requests: int) -> dict:
    from featurestore.clock import clock_us
    from featurestore.serving_log import ServingLogWriter, online_log_columns

    out = {}
    for shape, ids in SHAPES.items():
        writer = ServingLogWriter(folder / shape)
        plan = store.read_plan("logged_v1")
        entities = {"driver_id": ids}
        response = store.get_online_features("logged_v1", entities)
        samples = []
        for i in range(requests):
            began = time.perf_counter()
            columns, types = online_log_columns(plan, response, entities, log_time_us=clock_us(time.time),
                                                request_id=uuid.uuid4().hex)
            writer.write("logged_v1", columns, types)
            samples.append(time.perf_counter() - began)
        began = time.perf_counter()
        writer.close(timeout=None)
        drain = time.perf_counter() - began
        rows = requests * len(ids)
        out[shape] = {**quantiles_us(samples), "rows": rows, "written": writer.written, "dropped": writer.dropped,
                      "per_row_median_us": round(statistics.median(samples) / len(ids) * 1e6, 3),
                      "drain_after_last_write_s": round(drain, 3)}
    # The writer's own speed: rows queued at once, then written by its thread.
    writer = ServingLogWriter(folder / "throughput", queue_rows=10**7, flush_rows=10**7, flush_seconds=3600)
    columns, types = online_log_columns(plan, response, entities, log_time_us=clock_us(time.time), request_id="x")
    for _ in range(requests):
        writer.write("logged_v1", columns, types)
    began = time.perf_counter()
    writer.close(timeout=None)
    out["writer_rows_per_s"] = round(writer.written / (time.perf_counter() - began))
    return out


def http(bench_http, repo: Path, env: dict, args) -> dict:
    ports = {"on": bench_http.free_port(), "off": bench_http.free_port()}
    servers = [bench_http.serve_ours(repo, ports[name], args.workers, {**env, "FEATURESTORE_SERVING_LOG": name})
               for name in ports]
    try:
        results = {}
        for shape, ids in SHAPES.items():
            requests = {name: bench_http.request_bytes(port, {"feature_service": "logged_v1",
                                                              "entities": {"driver_id": ids}})
                        for name, port in ports.items()}
            for name, port in ports.items():
                asyncio.run(bench_http.load(port, requests[name], 4, args.warmup, 10))
            pooled = {name: {"c1": ([], 0.0), "c16": ([], 0.0)} for name in ports}
            for round_ in range(args.rounds):
                for name in (list(ports) if round_ % 2 == 0 else list(reversed(ports))):
                    for kind, concurrency, count in (("c1", 1, args.c1_requests // args.rounds),
                                                     ("c16", 16, args.c16_max_requests // args.rounds)):
                        latencies, elapsed = asyncio.run(bench_http.load(
                            ports[name], requests[name], concurrency, count, args.seconds / args.rounds))
                        pooled[name][kind] = (pooled[name][kind][0] + latencies, pooled[name][kind][1] + elapsed)
            shape_out = {name: {"c1": bench_http.summary(*pooled[name]["c1"]),
                                "c16": bench_http.summary(*pooled[name]["c16"])} for name in ports}
            on, off = shape_out["on"], shape_out["off"]
            shape_out["p99_on_vs_off"] = round(on["c1"]["p99_ms"] / off["c1"]["p99_ms"], 3)
            shape_out["rps_on_vs_off"] = round(on["c16"]["rps"] / off["c16"]["rps"], 3)
            shape_out["target_met"] = shape_out["p99_on_vs_off"] <= 1.05 and shape_out["rps_on_vs_off"] >= 0.95
            results[shape] = shape_out
        return results
    finally:
        for proc in servers:
            bench_http.stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests logged per shape by the hook measurement")
    parser.add_argument("--workers", type=int, default=1, help="server workers of the HTTP measurement")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit of each server's concurrency-16 load")
    parser.add_argument("--c1-requests", type=int, default=3000, help="concurrency-1 requests per server and shape")
    parser.add_argument("--c16-max-requests", type=int, default=200_000, help="request cap at concurrency 16")
    parser.add_argument("--rounds", type=int, default=10, help="alternating on/off rounds the load is split into")
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--skip-http", action="store_true", help="only the in-process hook measurement")
    args = parser.parse_args()

    from featurestore.config import load_config
    from featurestore.scaffold import init_repo
    from featurestore.store import FeatureStore

    bench_http = _bench_http()
    folder = Path(tempfile.mkdtemp(prefix="featurestore-bench-serving-log-"))
    redis_proc, redis_url = bench_http.start_redis(folder)
    try:
        now = datetime.now(timezone.utc)
        repo = init_repo(folder / "repo", project=f"bench_{uuid.uuid4().hex[:8]}", now=now)
        with open(repo / "features" / "driver_stats.py", "a") as f:
            f.write(SERVICE)
        env = {**os.environ, "FEATURESTORE_REDIS_URL": redis_url}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # A loaded machine must not turn slow reads into 503s that end the run (both servers alike).
        env.setdefault("FEATURESTORE_READ_TIMEOUT", "5")
        with FeatureStore(config=load_config(repo, env=env)) as store:
            store.apply()
            store.materialize_incremental(now)
            results = {"hook": hook(store, folder / "hook", args.requests)}
        if not args.skip_http:
            results["http"] = http(bench_http, repo, env, args)
        print(json.dumps({
            "benchmark": "serving log overhead (issue 12: <= 5% of p99 and throughput)",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "settings": vars(args),
            "results": results,
        }, indent=2))
    finally:
        if redis_proc is not None:
            bench_http.stop(redis_proc)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
