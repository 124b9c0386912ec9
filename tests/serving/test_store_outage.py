"""The online store goes away: reads and /ready answer 503 with the reason, and the server
recovers by itself when the store is back. Uses a private redis-server it can stop."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis
from fastapi.testclient import TestClient

from serving import create_app

from .conftest import REFS, open_store

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")

READ = {"features": REFS, "entities": {"driver_id": [1001]}}
KEY = "k-outage"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(port: int, folder) -> subprocess.Popen:
    """redis-server on ``port``, answering. The test needs one port with Redis down, then
    up, then down again, so the port is free while Redis is down: should another process
    take it meanwhile, say so rather than time out later or talk to someone else's server."""
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    try:
        wait_for(lambda: proc.poll() is not None or _pings(client), f"redis-server on port {port}")
    finally:
        client.close()
    if proc.poll() is not None:
        pytest.fail(f"redis-server could not listen on port {port}: another process took it meanwhile")
    return proc


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def wait_for(check, what: str, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def test_reads_answer_503_while_redis_is_down_and_recover(repo, clock, tmp_path):
    port = free_port()
    with open_store(repo, clock, env={"FEATURESTORE_REDIS_URL": f"redis://127.0.0.1:{port}/0"},
                    api_keys=(KEY,)) as store:
        store.apply()  # the registry is SQLite: applying needs no Redis
        app = create_app(store, watch_interval=0)
        app.state.serving.probe_interval = 0.05
        with TestClient(app, headers={"X-API-Key": KEY}) as client:  # a key holder sees the details
            # Liveness is not readiness: /health stays up, so an orchestrator does not
            # restart a server that only waits for its store.
            assert client.get("/health").status_code == 200
            ready = client.get("/ready")
            assert ready.status_code == 503
            assert "online store is unavailable" in ready.json()["error"]["message"]
            assert f"127.0.0.1:{port}" in ready.json()["error"]["message"]
            for _ in range(2):  # the second one is answered by the open breaker
                down = client.post("/get-online-features", json=READ)
                assert down.status_code == 503
                assert down.json()["error"]["type"] == "StoreUnavailableError"
                assert "Redis" in down.json()["error"]["message"]

            redis = start_redis(port, tmp_path)
            try:
                wait_for(lambda: client.get("/ready").status_code == 200, "/ready after Redis started")
                up = client.post("/get-online-features", json=READ)
                assert up.status_code == 200
                assert up.json()["results"][1]["statuses"] == ["NOT_FOUND"]  # an empty Redis
            finally:
                stop(redis)

            assert client.post("/get-online-features", json=READ).status_code == 503
            redis = start_redis(port, tmp_path)
            try:  # this time only the background probe notices the return
                wait_for(lambda: client.post("/get-online-features", json=READ).status_code == 200,
                         "reads after Redis restarted")
            finally:
                stop(redis)
