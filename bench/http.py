"""HTTP serving benchmark: ``POST /get-online-features`` against a raw redis-py endpoint.

    .venv/bin/python bench/http.py [--workers 1,2] [--seconds 10] [--c1-requests 3000]

Sets up the example repo (``featurestore init``'s data, ending now) on a Redis online store
(``REDIS_URL`` if it answers, else a private ``redis-server`` on a free port), applies
and materializes it, then for each worker count starts two servers side by side:

- ``ours``: ``featurestore serve --workers N --no-access-log``;
- ``raw``: the physical-limit proxy, a minimal FastAPI app under the same uvicorn, started
  the same way (``featurestore.cli.serve_command.run_uvicorn``), that parses the same
  request body, does the same Redis lookup itself with redis-py (one HMGET, or a pipeline
  of them) and returns the decoded values as JSON; no registry, no statuses, no metrics,
  no validation.

Per request shape (1 entity x 3 features, 10 entities x 3 features), after checking that
both serve the same values: p50/p99 latency at concurrency 1 (``--c1-requests`` per
server), then requests/s (and p50/p99) at concurrency 16 for ``--seconds`` per server.
The load is split into ``--rounds`` rounds that alternate between the two servers, so a
shift in the machine's background load hits both alike; figures pool all rounds. Every
run is bounded by a request count and a time limit. The load generator is asyncio over
keep-alive loopback sockets with a hand-written HTTP/1.1 exchange (so the client costs
little); any answer but a 200 stops the run. Prints one JSON object. Targets (issue 4):
p99 <= 1.5x raw at concurrency 1, requests/s >= 0.7x raw at concurrency 16.
"""

from __future__ import annotations

# Run as a script, this file's folder comes first on sys.path, and its name would hide the
# standard library's ``http`` package from everything imported below.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from datetime import datetime, timezone  # noqa: E402

REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]
DRIVERS = [1001, 1002, 1003, 1004, 1005]
SHAPES = {"1x3": DRIVERS[:1], "10x3": (DRIVERS * 2)[:10]}

RAW_APP = '''
"""The raw endpoint: the same Redis lookup as the online store, done by hand with redis-py."""
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


@app.post("/get-online-features")
async def raw(request: Request) -> Response:
    ids = json.loads(await request.body())["entities"]["driver_id"]
    keys = [PREFIX + KEY_HEAD + struct.pack("<q", i) for i in ids]
    if len(keys) == 1:
        replies = [client.hmget(keys[0], FIELDS)]
    else:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, FIELDS)
        replies = pipe.execute()
    out = {"driver_id": ids,
           "conv_rate": [F32(r[1])[0] if r[1] is not None else None for r in replies],
           "acc_rate": [F32(r[2])[0] if r[2] is not None else None for r in replies],
           "avg_daily_trips": [I64(r[3])[0] if r[3] is not None else None for r in replies]}
    return Response(json.dumps(out), media_type="application/json")
'''


# --- load generator --------------------------------------------------------------------


def request_bytes(port: int, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    head = (f"POST /get-online-features HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n")
    return head.encode() + payload


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"non-200 answer: {head[:200]!r}")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return await reader.readexactly(length)


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


def summary(latencies: list[float], elapsed: float) -> dict:
    q = statistics.quantiles(sorted(latencies), n=100, method="inclusive")
    return {"requests": len(latencies), "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(q[49] * 1000, 3), "p99_ms": round(q[98] * 1000, 3)}


def compare(ports: dict[str, int], ids: list[int], args) -> dict:
    """Both servers under the same load, in alternating rounds (the order flipping each
    round), so a change in the machine's background load hits both alike."""
    requests = {name: request_bytes(port, {"features": REFS, "entities": {"driver_id": ids}})
                for name, port in ports.items()}
    for name, port in ports.items():
        asyncio.run(load(port, requests[name], 4, args.warmup, 10))
    pooled = {name: {"c1": ([], 0.0), "c16": ([], 0.0)} for name in ports}
    for round_ in range(args.rounds):
        order = list(ports) if round_ % 2 == 0 else list(reversed(ports))
        for name in order:
            for kind, concurrency, count, seconds in (
                ("c1", 1, args.c1_requests // args.rounds, args.seconds),
                ("c16", 16, args.c16_max_requests // args.rounds, args.seconds / args.rounds),
            ):
                latencies, elapsed = asyncio.run(load(ports[name], requests[name], concurrency, count, seconds))
                all_latencies, total = pooled[name][kind]
                pooled[name][kind] = (all_latencies + latencies, total + elapsed)
    out = {}
    for name in ports:
        c1, c16 = summary(*pooled[name]["c1"]), summary(*pooled[name]["c16"])
        out[name] = {"c1_p50_ms": c1["p50_ms"], "c1_p99_ms": c1["p99_ms"], "c1_requests": c1["requests"],
                     "c16_rps": c16["rps"], "c16_p50_ms": c16["p50_ms"], "c16_p99_ms": c16["p99_ms"],
                     "c16_requests": c16["requests"]}
    return out


# --- processes -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(url: str) -> bool:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


def start_redis(folder: Path) -> tuple[subprocess.Popen | None, str]:
    url = os.environ.get("REDIS_URL")
    if url and redis_answers(url):
        return None, url
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("no Redis: set REDIS_URL or put redis-server on PATH")
    port = free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    wait(lambda: redis_answers(url), "redis-server")
    return proc, url


def wait(check, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit(f"gave up waiting for {what}")


def http_get_ok(port: int, path: str) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        return sock.recv(64).startswith(b"HTTP/1.1 200")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def serve_ours(repo: Path, port: int, workers: int, env: dict) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "from featurestore.cli.main import main; main()", "--repo", str(repo), "serve",
           "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    # cwd: not bench/, whose http.py would shadow the standard library's http for `python -c`.
    proc = subprocess.Popen(cmd, env=env, cwd=repo, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(lambda: http_get_ok(port, "/ready"), "featurestore serve")
    return proc


def serve_raw(folder: Path, port: int, workers: int, env: dict) -> subprocess.Popen:
    # Launched exactly as ``featurestore serve`` launches uvicorn (run_uvicorn), so the two
    # differ only in the app.
    (folder / "bench_raw_app.py").write_text(RAW_APP)
    launch = ("from featurestore.cli.serve_command import run_uvicorn; "
              f"run_uvicorn('bench_raw_app:app', port={port}, workers={workers}, log_level='warning', access_log=False)")
    proc = subprocess.Popen([sys.executable, "-c", launch], env={**env, "PYTHONPATH": str(folder)}, cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait(lambda: http_get_ok(port, "/openapi.json"), "the raw endpoint")
    return proc


def answer(port: int, ids: list[int]) -> bytes:
    async def once() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            request = request_bytes(port, {"features": REFS, "entities": {"driver_id": ids}})
            return await exchange(reader, writer, request)
        finally:
            writer.close()
    return asyncio.run(once())


def check_same_values(ours: bytes, raw: bytes) -> None:
    """Both endpoints must serve the same materialized values (else the comparison is moot)."""
    ours_json, raw_json = json.loads(ours), json.loads(raw)
    names = ours_json["metadata"]["feature_names"]
    served = {name: result["values"] for name, result in zip(names, ours_json["results"])}
    if served != raw_json or any(s != "PRESENT" for r in ours_json["results"] for s in r["statuses"]):
        sys.exit(f"ours and raw disagree:\n{served}\n{raw_json}")


# --- main ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="time limit of each concurrency-16 run")
    parser.add_argument("--c1-requests", type=int, default=3000, help="requests of each concurrency-1 run")
    parser.add_argument("--c16-max-requests", type=int, default=200_000, help="request cap of each concurrency-16 run")
    parser.add_argument("--rounds", type=int, default=20, help="alternating ours/raw rounds the load is split into")
    parser.add_argument("--warmup", type=int, default=300)
    args = parser.parse_args()

    from featurestore.config import load_config
    from featurestore.online.entity_keys import entity_key_encoder
    from featurestore.scaffold import init_repo
    from featurestore.store import FeatureStore

    assert entity_key_encoder(("driver_id",))((1001,)) == b"\x01\x09driver_idi" + (1001).to_bytes(8, "little")
    folder = Path(tempfile.mkdtemp(prefix="featurestore-bench-http-"))
    redis_proc, redis_url = start_redis(folder)
    project = f"bench_{uuid.uuid4().hex[:8]}"
    servers: list[subprocess.Popen] = []
    try:
        now = datetime.now(timezone.utc)
        repo = init_repo(folder / "repo", project=project, now=now)
        env = {**os.environ, "FEATURESTORE_REDIS_URL": redis_url, "BENCH_REDIS_URL": redis_url,
               "BENCH_PROJECT": project}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        with FeatureStore(config=load_config(repo, env=env)) as store:
            store.apply()
            store.materialize_incremental(now)

        results: dict = {}
        for workers in [int(w) for w in args.workers.split(",")]:
            ports = {"ours": free_port(), "raw": free_port()}
            servers.append(serve_ours(repo, ports["ours"], workers, env))
            servers.append(serve_raw(folder, ports["raw"], workers, env))
            per_shape = {}
            for shape, ids in SHAPES.items():
                check_same_values(answer(ports["ours"], ids), answer(ports["raw"], ids))
                both = compare(ports, ids, args)
                ours, raw = both["ours"], both["raw"]
                both["p99_vs_raw"] = round(ours["c1_p99_ms"] / raw["c1_p99_ms"], 3)
                both["rps_vs_raw"] = round(ours["c16_rps"] / raw["c16_rps"], 3)
                both["target_met"] = both["p99_vs_raw"] <= 1.5 and both["rps_vs_raw"] >= 0.7
                per_shape[shape] = both
            for proc in servers:
                stop(proc)
            servers.clear()
            results[f"workers_{workers}"] = per_shape
        print(json.dumps({
            "benchmark": "POST /get-online-features, Redis online store, loopback",
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "settings": {"c1_requests": args.c1_requests, "c16_seconds": args.seconds, "rounds": args.rounds,
                         "warmup": args.warmup},
            "results": results,
        }, indent=2))
    finally:
        for proc in servers:
            stop(proc)
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


if __name__ == "__main__":
    main()
