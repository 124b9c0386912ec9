"""What the serving benchmarks (bench/http.py, bench/predict.py) share: the load generator,
the example repo on a Redis online store, and the two servers, ours and a raw endpoint.

- ``serving_repo``: the example repo (``featurestore init``'s data, ending now) on Redis
  (``REDIS_URL`` if it answers, else a private ``redis-server`` on a free port), applied and
  materialized; everything it made is removed on exit. The servers' Redis read deadline is
  ``FEATURESTORE_READ_TIMEOUT``, 5 s unless set.
- ``serve_ours``: ``featurestore serve --workers N --no-access-log``; ``serve_raw``: a
  minimal FastAPI app (the physical-limit proxy) under the same uvicorn, started the same
  way (``featurestore.cli.serve_command.run_uvicorn``), so the two differ only in the app.
- ``compare``: p50/p99 latency at concurrency 1 (``--c1-requests`` per server), then
  requests/s (and p50/p99) at concurrency 16 for ``--seconds`` per server. The load is split
  into ``--rounds`` rounds that alternate between the servers, so a shift in the machine's
  background load hits all alike; figures pool all rounds. Every run is bounded by a
  request count and a time limit. The client is asyncio over keep-alive loopback sockets
  with a hand-written HTTP/1.1 exchange (so it costs little); any answer but a 200 stops
  the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

__all__ = ["DRIVERS", "RAW_READ", "REFS", "add_load_options", "run", "serving_repo"]

#: The example repo's three driver features and some of its drivers.
REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
DRIVERS = [1001, 1002, 1003, 1004, 1005]


# The start of a raw endpoint's module: the online store's Redis lookup of the example
# repo's driver_hourly_stats, by hand with redis-py (one HMGET, or a pipeline of them).
RAW_READ = '''
import json
import os
import struct

import redis
from fastapi import FastAPI, Request
from starlette.responses import Response

client = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])
PREFIX = os.environ["BENCH_PROJECT"].encode() + b":"
KEY_HEAD = b"\\x01\\x09driver_idi"  # one join key "driver_id", int64 tag (online/entity_keys.py)
FIELDS = [b"driver_hourly_stats:@ts", b"driver_hourly_stats:conv_rate", b"driver_hourly_stats:acc_rate",
          b"driver_hourly_stats:avg_daily_trips"]
F32, I64 = struct.Struct("<f").unpack, struct.Struct("<q").unpack
app = FastAPI()


def read(ids: list) -> tuple[list, list, list]:
    """conv_rate, acc_rate and avg_daily_trips of each driver (None: no value)."""
    keys = [PREFIX + KEY_HEAD + struct.pack("<q", i) for i in ids]
    if len(keys) == 1:
        replies = [client.hmget(keys[0], FIELDS)]
    else:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, FIELDS)
        replies = pipe.execute()
    return ([F32(r[1])[0] if r[1] is not None else None for r in replies],
            [F32(r[2])[0] if r[2] is not None else None for r in replies],
            [I64(r[3])[0] if r[3] is not None else None for r in replies])
'''


# --- load generator --------------------------------------------------------------------


def post(port: int, path: str, body: dict) -> bytes:
    """A keep-alive HTTP/1.1 POST of ``body`` as JSON, ready to send."""
    payload = json.dumps(body).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"non-200 answer: {head[:200]!r} {body[:500]!r}")
    return body


async def load(port: int, request: bytes, concurrency: int, max_requests: int, seconds: float) -> tuple[list, float]:
    """Send ``request`` over ``concurrency`` keep-alive connections until ``max_requests``
    answers or ``seconds`` have passed, whichever is first: (latencies, elapsed seconds)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    budget = [max_requests]

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while budget[0] > 0 and time.perf_counter() < deadline:
                budget[0] -= 1
                began = time.perf_counter()
                await exchange(reader, writer, request)
                latencies.append(time.perf_counter() - began)
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - began


def answer(port: int, request: bytes) -> bytes:
    """One request's answer (a 200's body)."""
    async def once() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            return await exchange(reader, writer, request)
        finally:
            writer.close()
    return asyncio.run(once())


def _summary(latencies: list[float], elapsed: float) -> dict:
    q = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
    return {"requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(q[49] * 1000, 3), "p99_ms": round(q[98] * 1000, 3)}


def add_load_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit of each concurrency-16 run")
    parser.add_argument("--c1-requests", type=int, default=3000, help="requests of each concurrency-1 run")
    parser.add_argument("--c16-max-requests", type=int, default=200_000, help="request cap of each concurrency-16 run")
    parser.add_argument("--rounds", type=int, default=20, help="alternating rounds the load is split into")
    parser.add_argument("--warmup", type=int, default=300)


def compare(targets: dict[str, tuple[int, bytes]], args: argparse.Namespace) -> dict:
    """Each server (name -> (port, request)) under the same load, in alternating rounds
    (the order flipping each round), so a change in the machine's background load hits all alike."""
    for port, request in targets.values():
        asyncio.run(load(port, request, 4, args.warmup, 10))
    pooled = {name: {"c1": ([], 0.0), "c16": ([], 0.0)} for name in targets}
    for round_ in range(args.rounds):
        order = list(targets) if round_ % 2 == 0 else list(reversed(targets))
        for name in order:
            port, request = targets[name]
            for kind, concurrency, count, seconds in (
                ("c1", 1, args.c1_requests // args.rounds, args.seconds),
                ("c16", 16, args.c16_max_requests // args.rounds, args.seconds / args.rounds),
            ):
                latencies, elapsed = asyncio.run(load(port, request, concurrency, count, seconds))
                all_latencies, total = pooled[name][kind]
                pooled[name][kind] = (all_latencies + latencies, total + elapsed)
    out = {}
    for name in targets:
        c1, c16 = _summary(*pooled[name]["c1"]), _summary(*pooled[name]["c16"])
        out[name] = {"c1_p50_ms": c1["p50_ms"], "c1_p99_ms": c1["p99_ms"], "c1_requests": c1["requests"],
                     "c16_rps": c16["rps"], "c16_p50_ms": c16["p50_ms"], "c16_p99_ms": c16["p99_ms"],
                     "c16_requests": c16["requests"]}
    return out


def run(args: argparse.Namespace, *, title: str, repo: Path, env: dict, raw: tuple[Path, str, dict],
        cases: dict[str, tuple[str, dict]], check, max_p99: float, min_rps: float) -> None:
    """For each worker count in ``args.workers``: ours and the raw endpoint (``raw``: its
    folder, module source and environment) side by side; for each case (name -> (path,
    body)), ``check(ours answer, raw answer)`` then ``compare``, with the ratios against the
    targets (p99 at most ``max_p99`` x raw's, requests/s at least ``min_rps`` x raw's).
    Prints one JSON object."""
    results: dict = {}
    log_rows: dict = {}
    for workers in [int(w) for w in args.workers.split(",")]:
        ports = {"ours": free_port(), "raw": free_port()}
        servers = [serve_ours(repo, ports["ours"], workers, env)]
        try:
            servers.append(serve_raw(*raw[:2], ports["raw"], workers, raw[2]))
            per_case = {}
            for case, (path, body) in cases.items():
                targets = {name: (port, post(port, path, body)) for name, port in ports.items()}
                check(answer(*targets["ours"]), answer(*targets["raw"]))
                both = compare(targets, args)
                p99 = round(both["ours"]["c1_p99_ms"] / both["raw"]["c1_p99_ms"], 3)
                rps = round(both["ours"]["c16_rps"] / both["raw"]["c16_rps"], 3)
                per_case[case] = {**both, "p99_vs_raw": p99, "rps_vs_raw": rps,
                                  "target_met": p99 <= max_p99 and rps >= min_rps}
            log_rows[f"workers_{workers}"] = serving_log_rows(ports["ours"])
        finally:
            for proc in servers:
                stop(proc)
        results[f"workers_{workers}"] = per_case
    print(json.dumps({
        "benchmark": title,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "settings": {"c1_requests": args.c1_requests, "c16_seconds": args.seconds, "rounds": args.rounds,
                     "warmup": args.warmup},
        "targets": {"p99_vs_raw_at_most": max_p99, "rps_vs_raw_at_least": min_rps},
        "results": results,
        "serving_log_rows": log_rows,
    }, indent=2))


# --- processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_answers(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def _start_redis(folder: Path) -> tuple[subprocess.Popen | None, str]:
    url = os.environ.get("REDIS_URL")
    if url and _redis_answers(url):
        return None, url
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("no Redis: set REDIS_URL or put redis-server on PATH")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    _wait(lambda: _redis_answers(url), "redis-server")
    return proc, url


def _wait(check, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"gave up waiting for {what}")


def _http_get_ok(port: int, path: str) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return sock.recv(64).startswith(b"HTTP/1.1 200")


def serving_log_rows(port: int, settle: float = 3.0) -> dict:
    """Our server's serving-log rows written and dropped over the whole run (after
    ``settle`` seconds for the last flush): a log that cannot keep up drops rows rather
    than slow requests, and that belongs beside the speed figures."""
    time.sleep(settle)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    rows = {"written": 0.0, "dropped": 0.0}
    for line in text.splitlines():
        for kind in rows:
            if line.startswith(f"featurestore_serving_log_rows_{kind}_total"):
                rows[kind] += float(line.rsplit(" ", 1)[1])
    return rows


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serving_repo(prefix: str) -> Iterator[tuple[Path, Path, dict]]:
    """(scratch folder, the example repo, the servers' environment), the repo applied and
    materialized on Redis; the folder, the private Redis or the project's keys go on exit."""
    from featurestore.config import load_config
    from featurestore.online.entity_keys import entity_key_encoder
    from featurestore.scaffold import init_repo
    from featurestore.store import FeatureStore

    # The raw endpoints build entity keys by hand: the layout they assume.
    assert entity_key_encoder(("driver_id",))((1001,)) == b"\x01\x09driver_idi" + (1001).to_bytes(8, "little")
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    redis_proc, redis_url = _start_redis(folder)
    project = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        now = datetime.now(timezone.utc)
        repo = init_repo(folder / "repo", project=project, now=now)
        env = {**os.environ, "FEATURESTORE_REDIS_URL": redis_url, "BENCH_REDIS_URL": redis_url,
               "BENCH_PROJECT": project}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        # On shared cores one read can miss the production 0.25 s deadline, and the breaker's
        # 503s would end the run; the deadline's cost does not depend on its length.
        env.setdefault("FEATURESTORE_READ_TIMEOUT", "5")
        with FeatureStore(config=load_config(repo, env=env)) as store:
            store.apply()
            store.materialize_incremental(now)
        yield folder, repo, env
    finally:
        if redis_proc is not None:
            stop(redis_proc)
        else:
            import redis

            client = redis.Redis.from_url(redis_url)
            keys = list(client.scan_iter(match=f"{project}:*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
        shutil.rmtree(folder, ignore_errors=True)


def serve_ours(repo: Path, port: int, workers: int, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from featurestore.cli.main import main; main()", "--repo", str(repo), "serve",
           "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    # cwd: not bench/, whose http.py would shadow the standard library's http for `python -c`.
    proc = subprocess.Popen(cmd, env=env, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: _http_get_ok(port, "/ready"), "featurestore serve")
    return proc


def serve_raw(folder: Path, source: str, port: int, workers: int, env: dict) -> subprocess.Popen:
    """``source`` (a module defining ``app``) under uvicorn, launched exactly as ``featurestore
    serve`` launches it (run_uvicorn)."""
    (folder / "bench_raw_app.py").write_text(source)
    launch = ("from featurestore.cli.serve_command import run_uvicorn; "
              f"run_uvicorn('bench_raw_app:app', port={port}, workers={workers}, log_level='warning', access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", launch], env={**env, "PYTHONPATH": str(folder)}, cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait(lambda: _http_get_ok(port, "/openapi.json"), "the raw endpoint")
    return proc
