"""A hung Redis (SIGSTOP: connections stay open, nothing answers) under a real uvicorn
server: /health answers at once, reads answer 503 within the read timeout without holding
up other requests, /ready reports the store, and everything recovers after SIGCONT."""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import httpx
import pytest

from featurestore.scaffold import init_repo

from ..conftest import _redis_answers as redis_answers
from .conftest import REFS, Clock, open_store
from .served import Server, free_port, wait_for
from .test_store_outage import start_redis, stop

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server on PATH")]

READ = {"features": REFS, "entities": {"driver_id": [1001]}}
READ_TIMEOUT = 0.3


def timed(send):
    began = time.monotonic()
    answer = send()
    return answer.status_code, time.monotonic() - began


@pytest.fixture
def hung_setup(tmp_path):
    """A private redis-server holding the example repo's values, and a server on it."""
    port = free_port()
    redis = start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    clock = Clock(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0))
    repo = init_repo(tmp_path / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=clock.now)
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text().replace("  path: data/online.db\n",
                                                 f"  path: data/online.db\n  read_timeout: {READ_TIMEOUT}\n"))
    env = {"FEATURESTORE_REDIS_URL": url, "FEATURESTORE_READ_TIMEOUT": str(READ_TIMEOUT)}
    wait_for(lambda: redis_answers(url), "redis-server to start", 30)
    with open_store(repo, clock, env=env) as store:
        store.apply()
        store.materialize_incremental(clock.now)
    server = Server(repo, "--workers", "1", "--no-access-log", "--watch-interval", "0", env=env)
    try:
        wait_for(lambda: server.client.get("/ready").status_code == 200, "the server to be ready")
        yield server.client, redis
    finally:
        os.kill(redis.pid, signal.SIGCONT)
        server.stop()
        stop(redis)


def test_a_hung_redis_costs_reads_a_short_timeout_and_nothing_else(hung_setup):
    client, redis = hung_setup
    base = str(client.base_url)
    assert client.post("/get-online-features", json=READ).status_code == 200

    os.kill(redis.pid, signal.SIGSTOP)

    def read(_):
        with httpx.Client(base_url=base, timeout=10) as own:
            return timed(lambda: own.post("/get-online-features", json=READ))

    def health(_):
        with httpx.Client(base_url=base, timeout=10) as own:
            return timed(lambda: own.get("/health"))

    with ThreadPoolExecutor(16) as pool:
        reads = pool.map(read, range(8))
        healths = pool.map(health, range(8))
        reads, healths = list(reads), list(healths)
    assert [status for status, _ in reads] == [503] * 8
    # Bounds far below the 25 s a blocked event loop took, with room for a busy test machine.
    assert max(seconds for _, seconds in reads) < READ_TIMEOUT + 1.5, reads
    assert [status for status, _ in healths] == [200] * 8
    assert max(seconds for _, seconds in healths) < 1.0, healths

    ready = timed(lambda: client.get("/ready"))
    assert ready[0] == 503 and ready[1] < READ_TIMEOUT + 1.5, ready
    assert "online store" in client.get("/ready").json()["error"]["message"]
    status, seconds = timed(lambda: client.get("/health"))
    assert status == 200 and seconds < 1.0

    os.kill(redis.pid, signal.SIGCONT)
    wait_for(lambda: client.post("/get-online-features", json=READ).status_code == 200, "reads after SIGCONT", 15)
    assert client.get("/ready").status_code == 200
