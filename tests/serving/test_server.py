"""A real server: `featurestore serve --workers 2` under uvicorn, on a real Redis."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest

from featurestore.scaffold import init_repo

from .conftest import REFS, Clock, open_store, redis_cleanup
from .served import wait_for

pytestmark = pytest.mark.integration

KEY = "integration-key"


def start_server(repo, env: dict, attempts: int = 3) -> tuple[subprocess.Popen, httpx.Client]:
    """`featurestore serve --workers 2` on a free port, ready. A port is only known free
    until someone binds it, and the server binds it a moment after we looked: when another
    process took it meanwhile, the server exits saying so, and we try another."""
    for _ in range(attempts):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = subprocess.Popen(
            [sys.executable, "-c", "from featurestore.cli.main import main; main()",
             "--repo", str(repo), "serve", "--port", str(port), "--workers", "2", "--no-access-log",
             "--watch-interval", "0.2", "--log-level", "warning"],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        wait_for(lambda: proc.poll() is not None or client.get("/ready").status_code == 200, "the server to be ready")
        if proc.poll() is None:
            return proc, client
        client.close()
        output = proc.communicate()[0].decode(errors="replace")
        if "in use" not in output:
            pytest.fail(f"the server exited before it was ready:\n{output[-3000:]}")
    pytest.fail(f"no free port in {attempts} attempts")


@pytest.fixture
def clock():
    return Clock(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0))


@pytest.fixture
def repo(tmp_path, clock):
    """The example repo with data up to this hour: the server's clock is the real one."""
    return init_repo(tmp_path / "live", project=f"test_{uuid.uuid4().hex[:10]}", now=clock.now)


@pytest.fixture
def server(repo, clock, redis_url, tmp_path):
    """The example repo materialized into Redis, served by two workers."""
    env = {"FEATURESTORE_REDIS_URL": redis_url}
    with open_store(repo, clock, env=env) as store:
        store.apply()
        store.materialize_incremental(clock.now)
        project = store.project
    metrics_dir = tmp_path / "metrics"
    proc, client = start_server(repo, {**env, "FEATURESTORE_API_KEYS": KEY,
                                       "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)})
    try:
        yield client, metrics_dir
    finally:
        client.close()
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        redis_cleanup(redis_url, project)
    assert proc.returncode == 0, output.decode(errors="replace")[-3000:]


def test_two_workers_serve_reads_pushes_metrics_and_new_applies(server, repo, clock, redis_url):
    client, metrics_dir = server
    body = {"features": REFS, "entities": {"driver_id": [1001, 1002, 4242]}}
    n = 40

    def send_ten(_):  # four connections at once, so both workers take some
        with httpx.Client(base_url=client.base_url, timeout=30) as own:
            return [own.post("/get-online-features", json=body) for _ in range(n // 4)]

    with ThreadPoolExecutor(4) as pool:
        answers = [a for batch in pool.map(send_ten, range(4)) for a in batch]
    assert [a.status_code for a in answers] == [200] * n
    results = answers[-1].json()["results"]
    assert results[0]["values"] == [1001, 1002, 4242]
    assert [r["statuses"] for r in results[1:]] == [["PRESENT", "PRESENT", "NOT_FOUND"]] * 3
    assert results[1]["event_timestamps"][:2] == [clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")] * 2

    # Writes need the key; a push to one worker is read back through any worker (Redis).
    push = {"push_source_name": "driver_stats_push", "df": {
        "driver_id": [1005], "event_timestamp": [datetime.now(timezone.utc).isoformat()], "conv_rate": [0.125],
        "acc_rate": [0.5], "avg_daily_trips": [9]}}
    assert client.post("/push", json=push).status_code == 401
    assert client.post("/push", json=push, headers={"X-API-Key": KEY}).status_code == 200
    fresh = {"features": ["driver_hourly_stats_fresh:conv_rate"], "entities": {"driver_id": [1005]}}
    for _ in range(6):
        assert client.post("/get-online-features", json=fresh).json()["results"][1]["values"] == [0.125]

    # /metrics sums both workers: every request above is counted, whichever worker served it
    # (each adds its counts every quarter second: monitoring.metric_batches).
    line = 'featurestore_http_requests_total{endpoint="/get-online-features",method="POST",status="200"}'

    def counted() -> list[float]:
        return [float(l.split()[-1]) for l in client.get("/metrics").text.splitlines() if l.startswith(line)]

    wait_for(lambda: counted() == [n + 6], f"a scrape to count the {n + 6} requests", 10)
    text = client.get("/metrics").text
    assert "featurestore_online_read_duration_seconds_bucket" in text
    assert any(metrics_dir.iterdir())

    # An apply made elsewhere is served by both workers without a restart.
    definitions = repo / "features" / "driver_stats.py"
    definitions.write_text(definitions.read_text() + textwrap.dedent("""
        driver_conv_only = FeatureView(
            name="driver_conv_only", entities=[driver], ttl=timedelta(days=1),
            schema=[Field(name="conv_rate", dtype=Float32)], source=driver_stats_source,
        )
    """))
    with open_store(repo, clock, env={"FEATURESTORE_REDIS_URL": redis_url}) as store:
        store.apply()
    new = {"features": ["driver_conv_only:conv_rate"], "entities": {"driver_id": [1001]}}
    wait_for(lambda: all(client.post("/get-online-features", json=new).status_code == 200 for _ in range(10)),
             "both workers to serve the new view")
