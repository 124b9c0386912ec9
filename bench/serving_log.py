"""Serving log overhead: what logging costs a request.

    .venv/bin/python bench/serving_log.py [--workers 1] [--seconds 10] [--rounds 20] [--requests 20000]

Two measurements, printed as one JSON object:

- ``hook``: in-process, the request-side cost of logging one ``/get-online-features``
  answer (making its log entry and queueing it, as ``ServingLog.log_features`` does
  after its coin flip), per request shape, with the writer thread writing Parquet
  meanwhile as in a server, and the writer thread's CPU time per request; and the writer
  thread's own throughput (rows/s to disk).
- ``http``: the example repo on a Redis online store (bench/harness.py: ``serving_repo``)
  with a feature service whose ``logging_config`` is set and the example's
  ``driver_model`` (its ``train.py``), served by two ``featurestore serve`` processes side
  by side, logging on and off (``FEATURESTORE_SERVING_LOG``); for ``/get-online-features``
  and ``/predict/driver_model`` with 1 and 10 entities: p99 at concurrency 1 and requests/s
  at concurrency 16, in rounds alternating between the two (bench/harness.py: ``compare``).
  Target (issue 12): logging on costs at most 5% of p99 and of throughput.
"""

from __future__ import annotations

# Run as a script, this file's folder comes first on sys.path, and bench/http.py would hide
# the standard library's ``http`` package from everything imported below: the folder goes last.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE] + [str(_HERE)]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

from harness import DRIVERS, add_load_options, compare, free_port, post, serve_ours, serving_repo, stop  # noqa: E402

SERVICE = '''

from featurestore import LoggingConfig

logged_v1 = FeatureService(name="logged_v1", features=[driver_hourly_stats[["conv_rate", "acc_rate", "avg_daily_trips"]]],
                           logging_config=LoggingConfig(sample_rate=1.0))
'''
SHAPES = {"1x3": DRIVERS[:1], "10x3": (DRIVERS * 2)[:10]}


def quantiles_us(samples: list[float]) -> dict:
    q = statistics.quantiles(sorted(samples), n=100, method="inclusive")
    return {"median_us": round(q[49] * 1e6, 2), "p99_us": round(q[98] * 1e6, 2)}


def hook(store, folder: Path, requests: int) -> dict:
    from featurestore.clock import clock_us
    from featurestore.serving_log import ServingLogWriter, online_log_entry

    out = {}
    for shape, ids in SHAPES.items():
        cpu = []  # the writer thread's CPU time after each file it wrote (on_written runs on it)
        writer = ServingLogWriter(folder / shape, on_written=lambda name, n: cpu.append(time.thread_time()))
        plan = store.read_plan("logged_v1")
        entities = {"driver_id": ids}
        response = store.get_online_features("logged_v1", entities)
        samples = []
        for i in range(requests):
            began = time.perf_counter()
            writer.write_entry("logged_v1", online_log_entry(plan, response, entities,
                                                             log_time_us=clock_us(time.time),
                                                             request_id=uuid.uuid4().hex))
            samples.append(time.perf_counter() - began)
        began = time.perf_counter()
        writer.close(timeout=None)
        drain = time.perf_counter() - began
        rows = requests * len(ids)
        out[shape] = {**quantiles_us(samples), "rows": rows, "written": writer.written, "dropped": writer.dropped,
                      "per_row_median_us": round(statistics.median(samples) / len(ids) * 1e6, 3),
                      "drain_after_last_write_s": round(drain, 3),
                      "writer_cpu_us_per_request": round(cpu[-1] / requests * 1e6, 2) if cpu else None}
    # The writer's own speed: rows queued at once, then written by its thread.
    writer = ServingLogWriter(folder / "throughput", queue_rows=10**7, flush_rows=10**7, flush_seconds=3600)
    entry = online_log_entry(plan, response, entities, log_time_us=clock_us(time.time), request_id="x")
    for _ in range(requests):
        writer.write_entry("logged_v1", entry)
    began = time.perf_counter()
    writer.close(timeout=None)
    out["writer_rows_per_s"] = round(writer.written / (time.perf_counter() - began))
    return out


def http(repo: Path, env: dict, args) -> dict:
    cases = {f"{kind}_{len(ids)}": (path, body)
             for ids in (DRIVERS[:1], (DRIVERS * 2)[:10])
             for kind, path, body in (
                 ("online", "/get-online-features", {"feature_service": "logged_v1", "entities": {"driver_id": ids}}),
                 ("predict", "/predict/driver_model", {"entities": {"driver_id": ids}}))}
    results: dict = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        ports = {"on": free_port(), "off": free_port()}
        servers = []
        try:
            for name, port in ports.items():
                servers.append(serve_ours(repo, port, workers, {**env, "FEATURESTORE_SERVING_LOG": name}))
            per_case = {}
            for case, (path, body) in cases.items():
                both = compare({name: (port, post(port, path, body)) for name, port in ports.items()}, args)
                p99 = round(both["on"]["c1_p99_ms"] / both["off"]["c1_p99_ms"], 3)
                rps = round(both["on"]["c16_rps"] / both["off"]["c16_rps"], 3)
                per_case[case] = {**both, "p99_on_vs_off": p99, "rps_on_vs_off": rps,
                                  "target_met": p99 <= 1.05 and rps >= 0.95}
        finally:
            for proc in servers:
                stop(proc)
        results[f"workers_{workers}"] = per_case
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser)
    parser.add_argument("--requests", type=int, default=20_000, help="requests logged per shape by the hook measurement")
    parser.add_argument("--skip-http", action="store_true", help="only the in-process hook measurement")
    args = parser.parse_args()

    from featurestore.config import load_config
    from featurestore.store import FeatureStore

    with serving_repo("featurestore-bench-serving-log-") as (folder, repo, env):
        with open(repo / "features" / "driver_stats.py", "a") as f:
            f.write(SERVICE)
        # A loaded machine must not turn slow reads into 503s that end the run (both servers alike).
        env = {**env, "FEATURESTORE_READ_TIMEOUT": env.get("FEATURESTORE_READ_TIMEOUT", "5")}
        with FeatureStore(config=load_config(repo, env=env)) as store:
            store.apply()
            _train(repo, store)
            results = {"hook": hook(store, folder / "hook", args.requests)}
        if not args.skip_http:
            results["http"] = http(repo, env, args)
        print(json.dumps({
            "benchmark": "serving log overhead, logging on vs off (issue 12: at most 5% of p99 and throughput)",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "settings": vars(args),
            "results": results,
        }, indent=2))


def _train(repo: Path, store) -> None:
    """The example repo's train.py: driver_model/1, champion."""
    sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location("bench_train", repo / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.train(store)


if __name__ == "__main__":
    main()
