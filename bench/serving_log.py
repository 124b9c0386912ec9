"""Serving log overhead: what logging costs a request.

    .venv/bin/python bench/serving_log.py [--workers 1] [--seconds 10] [--rounds 20] [--requests 3000]
    .venv/bin/python bench/serving_log.py --skip-http --cpu-requests 2000   # CPU figures only

Three measurements, printed as one JSON object:

- ``hook``: in-process, the request-side cost of logging one ``/get-online-features``
  answer (making its log entry and queueing it, as ``ServingLog.log_features`` does
  after its coin flip), per request shape and writer kind (``thread``: Arrow and Parquet
  on a thread of this process; ``process``: a server worker's, handing the rows to the
  serving log's process), with requests ``--pace-ms`` apart and the writer writing
  meanwhile as in a server; the writer thread's and the log process's CPU time per
  request; the longest piece of the writer thread's work (it holds the interpreter lock
  throughout: a request arriving meanwhile waits); and the in-process writer's own
  throughput (rows/s to disk).
- ``http``: the example repo on a Redis online store (bench/harness.py: ``serving_repo``)
  with a feature service whose ``logging_config`` is set and the example's
  ``driver_model`` (its ``train.py``), served by two ``featurestore serve`` processes side
  by side, logging on and off (``FEATURESTORE_SERVING_LOG``); for ``/get-online-features``
  and ``/predict/driver_model`` with 1 and 10 entities: p99 at concurrency 1 and requests/s
  at concurrency 16, in rounds alternating between the two (bench/harness.py: ``compare``).
  Target (issue 12): logging on costs at most 5% of p99 and of throughput.
- ``cpu``: the same two servers (one worker each), ``/predict/driver_model`` with
  ``--cpu-shapes`` entities (default 10) at each ``--cpu-concurrency`` (default 1 and 16), ``--cpu-requests`` a round in ``--cpu-rounds`` rounds
  alternating between them: CPU per request of the worker's main thread (the event loop,
  where the requests run), of its other threads and of its child processes (the serving
  log's process), from the scheduler's counts (bench/rollout.py: ``cpu_seconds``); logging
  on minus off is what the log costs each. Each round waits for the log's flush before
  reading the counts, so the Parquet writing is in them. CPU time, not wall time: it holds
  on a busy machine.
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

from harness import (  # noqa: E402
    DRIVERS, add_load_options, answer, compare, free_port, load, post, serve_ours, serving_repo, stop,
)
from rollout import cpu_seconds  # noqa: E402

SERVICE = '''

from featurestore import LoggingConfig

logged_v1 = FeatureService(name="logged_v1", features=[driver_hourly_stats[["conv_rate", "acc_rate", "avg_daily_trips"]]],
                           logging_config=LoggingConfig(sample_rate=1.0))
'''
SHAPES = {"1x3": DRIVERS[:1], "10x3": (DRIVERS * 2)[:10]}


def quantiles_us(samples: list[float]) -> dict:
    q = statistics.quantiles(sorted(samples), n=100, method="inclusive")
    return {"median_us": round(q[49] * 1e6, 2), "p99_us": round(q[98] * 1e6, 2)}


def hook(store, folder: Path, requests: int, pace: float) -> dict:
    """Per writer kind (``thread``: ``ServingLogWriter``, Arrow and Parquet on a thread of
    this process; ``process``: ``ServingLogProcess``, this process only pickles) and shape:
    the request-side cost, this process's writer-thread CPU per request, the serving log
    process's CPU per request, and the longest single piece of the thread's work (a slice
    turned into Arrow; a tick's pickling and hand-over: the interpreter lock is held
    throughout, so a request that arrives meanwhile waits that long), with requests
    ``pace`` seconds apart as a server's come."""
    from featurestore.clock import clock_us
    from featurestore.serving_log import ServingLogWriter, online_log_entry
    from featurestore.serving_log.process import ServingLogProcess

    plan = store.read_plan("logged_v1")
    out: dict = {}
    for kind, make, piece in (("thread", ServingLogWriter, "_convert"), ("process", ServingLogProcess, "_send")):
        for shape, ids in SHAPES.items():
            cpu = [0.0]  # the writer thread's CPU time after each count (on_written runs on it)
            writer = make(folder / kind / shape, on_written=lambda name, n: cpu.append(time.thread_time()))
            entities = {"driver_id": ids}
            response = store.get_online_features("logged_v1", entities)

            def entry():
                return online_log_entry(plan, response, entities, log_time_us=clock_us(time.time),
                                        request_id=uuid.uuid4().hex)

            writer.write_entry("logged_v1", entry())  # its thread and process started
            writer.flush(None)
            thread_before, child_before = cpu[-1], _child_cpu()
            holds = _timed(writer, piece)
            samples = []
            for i in range(requests):
                began = time.perf_counter()
                writer.write_entry("logged_v1", entry())
                samples.append(time.perf_counter() - began)
                time.sleep(pace)
            writer.flush(None)
            thread_cpu, child_cpu = cpu[-1] - thread_before, _child_cpu() - child_before
            writer.close(timeout=None)
            out.setdefault(kind, {})[shape] = {
                **quantiles_us(samples), "written": writer.written, "dropped": writer.dropped,
                "writer_thread_cpu_us_per_request": round(thread_cpu / requests * 1e6, 2),
                "log_process_cpu_us_per_request": round(child_cpu / requests * 1e6, 2),
                "longest_hold_ms": round(max(holds) * 1e3, 3), "pieces": len(holds)}
    # The writer's own speed: rows queued at once, then written by its thread.
    writer = ServingLogWriter(folder / "throughput", queue_rows=10**7, flush_rows=10**7, flush_seconds=3600)
    one = online_log_entry(plan, response, entities, log_time_us=clock_us(time.time), request_id="x")
    for _ in range(20_000):
        writer.write_entry("logged_v1", one)
    began = time.perf_counter()
    writer.close(timeout=None)
    out["writer_rows_per_s"] = round(writer.written / (time.perf_counter() - began))
    return out


def _child_cpu() -> float:
    """CPU seconds of this process's serving log process so far (0: none)."""
    import multiprocessing

    return sum(int(Path(f"/proc/{p.pid}/schedstat").read_text().split()[0]) / 1e9
               for p in multiprocessing.active_children() if p.name == "featurestore-serving-log-process")


def _timed(writer, method: str) -> list[float]:
    """The CPU seconds of each call of ``writer``'s ``method`` on its thread: one slice of
    work that holds the interpreter lock throughout (Arrow building, pickling), so the
    longest is the longest wait it gives a request."""
    calls: list[float] = []
    run = getattr(writer, method)

    def timed(*args):
        began = time.thread_time()
        try:
            return run(*args)
        finally:
            calls.append(time.thread_time() - began)

    setattr(writer, method, timed)
    return calls


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


def cpu(repo: Path, env: dict, args) -> dict:
    """CPU µs per logged ``/predict/driver_model`` (``--cpu-shapes`` entities, at each
    ``--cpu-concurrency``): main thread, other threads, children; logging on, off, and on - off."""
    ports = {"on": free_port(), "off": free_port()}
    servers = {name: serve_ours(repo, port, 1, {**env, "FEATURESTORE_SERVING_LOG": name})
               for name, port in ports.items()}
    out: dict = {}
    try:
        for size in [int(s) for s in args.cpu_shapes.split(",")]:
            request = {name: post(port, "/predict/driver_model", {"entities": {"driver_id": (DRIVERS * 10)[:size]}})
                       for name, port in ports.items()}
            for concurrency in [int(c) for c in args.cpu_concurrency.split(",")]:
                out[f"{size}_entities_c{concurrency}"] = _cpu_case(servers, ports, request, concurrency, args)
    finally:
        for proc in servers.values():
            stop(proc)
    return out


def _cpu_case(servers: dict, ports: dict, request: dict, concurrency: int, args) -> dict:
    import asyncio

    flush_wait = 2.5  # serving_log.flush_seconds (2, the default) and a margin
    for name, port in ports.items():
        answer(port, request[name])
        asyncio.run(load(port, request[name], 16, 500, 60))  # warm: models loaded, the log process started
    time.sleep(flush_wait)
    spent = {name: [0.0, 0.0, 0.0] for name in ports}
    for round_ in range(args.cpu_rounds):
        for name in (["on", "off"] if round_ % 2 == 0 else ["off", "on"]):
            before = cpu_seconds(servers[name].pid)
            asyncio.run(load(ports[name], request[name], concurrency, args.cpu_requests, 600))
            time.sleep(flush_wait)  # everything logged is written before the counts are read
            after = cpu_seconds(servers[name].pid)
            for i in range(3):
                spent[name][i] += after[i] - before[i]
    n = args.cpu_rounds * args.cpu_requests
    per = {name: {"main_thread_us": round(1e6 * m / n, 1), "other_threads_us": round(1e6 * t / n, 1),
                  "children_us": round(1e6 * c / n, 1), "total_us": round(1e6 * (m + t + c) / n, 1)}
           for name, (m, t, c) in spent.items()}
    per["log_costs"] = {key: round(per["on"][key] - per["off"][key], 1) for key in per["on"]}
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_options(parser)
    parser.add_argument("--requests", type=int, default=3000, help="requests logged per shape by the hook measurement (0: none)")
    parser.add_argument("--pace-ms", type=float, default=1.0, help="milliseconds between them")
    parser.add_argument("--skip-http", action="store_true", help="no latency and throughput comparison")
    parser.add_argument("--cpu-requests", type=int, default=2000, help="requests a round of the cpu measurement")
    parser.add_argument("--cpu-rounds", type=int, default=4, help="rounds of the cpu measurement (0: none)")
    parser.add_argument("--cpu-shapes", default="10", help="entities per request of the cpu measurement (e.g. 1,10)")
    parser.add_argument("--cpu-concurrency", default="1,16", help="concurrencies of the cpu measurement")
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
            results = {"hook": hook(store, folder / "hook", args.requests, args.pace_ms / 1000)} if args.requests else {}
        if args.cpu_rounds:
            results["cpu"] = cpu(repo, env, args)
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
