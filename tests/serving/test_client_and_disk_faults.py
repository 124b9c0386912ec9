"""Faults that are not the server's are not 500s: a full disk under the offline store is a
503 (as for the online store and the registry), a client that leaves mid-body is counted
apart and logged in one line at most, stalled clients are cut off, and what uvicorn
itself answers is JSON where it can be. Real uvicorn, real sockets, a real full disk."""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import time

import pytest
from fastapi.testclient import TestClient

from featurestore.errors import StoreUnavailableError
from serving import create_app

from .conftest import open_store
from .served import Server, wait_for

KEY = "disk-test-key"
PUSH = {"push_source_name": "driver_stats_push", "to": "offline", "df": {
    "driver_id": [1001], "event_timestamp": ["2024-05-01T11:00:00+00:00"], "conv_rate": [0.5],
    "acc_rate": [0.5], "avg_daily_trips": [3]}}


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a 64 KiB tmpfs, filled up: every write there fails with ENOSPC."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            with pytest.raises(OSError) as full:
                while True:
                    os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
        assert full.value.errno == errno.ENOSPC
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_under_the_offline_store_answers_503_without_its_path(repo, clock, full_disk):
    env = {"FEATURESTORE_OFFLINE_STORE": str(full_disk)}
    with open_store(repo, clock, env=env, api_keys=(KEY,)) as store:
        store.apply()
        with TestClient(create_app(store, watch_interval=0), headers={"X-API-Key": KEY}) as client:
            answer = client.post("/push", json=PUSH)
            assert answer.status_code == 503, answer.text
            error = answer.json()["error"]
            assert error["type"] == "StoreUnavailableError"
            # a key holder learns which folder and why, still without the absolute path
            assert "the offline store (folder pushed/driver_stats_push)" in error["message"]
            assert "No space left" in error["message"]
            assert str(full_disk) not in error["message"] and str(repo) not in error["message"]
            assert client.post("/push", json={**PUSH, "to": "online"}).status_code == 200
    with pytest.raises(StoreUnavailableError, match="No space left"):
        with open_store(repo, clock, env=env) as store:
            store.push("driver_stats_push", PUSH["df"], to="offline")
    assert [p.name for p in full_disk.iterdir()] == ["filler"] or not any(
        full_disk.glob("pushed/*/*")), "a failed write leaves no file behind"


# -- a real server ------------------------------------------------------------------------


@pytest.fixture
def live(repo, clock):
    """The example repo on SQLite, served by uvicorn with one-second client timeouts."""
    with open_store(repo, clock) as store:
        store.apply()
        store.materialize_incremental(clock.now)
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text() + "serving:\n  header_timeout: 1\n  body_timeout: 1\n"
                                           "  keep_alive_timeout: 1\n")
    server = Server(repo, "--no-access-log", "--watch-interval", "0")
    try:
        wait_for(lambda: server.client.get("/ready").status_code == 200, "the server to be ready")
        yield server
    finally:
        server.stop()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    return sock


def receive_all(sock: socket.socket, seconds: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection (or ``seconds`` pass)."""
    sock.settimeout(seconds)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        chunks.append(b"<still open>")
    return b"".join(chunks)


def test_a_client_that_leaves_mid_body_is_no_500_and_no_traceback(live):
    for path in ("/push", "/get-online-features") * 3:
        with connect(live.port) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         "Content-Length: 1000\r\n\r\n{\"push_source".encode())
            time.sleep(0.05)
    time.sleep(0.3)
    metrics = live.client.get("/metrics").text
    counted = [line for line in metrics.splitlines() if line.startswith("featurestore_http_requests_total{")]
    assert not [line for line in counted if 'status="500"' in line], counted
    gone = [line for line in counted if 'status="499"' in line]
    assert sum(float(line.split()[-1]) for line in gone) == 6, counted

    log = live.stop()
    assert "Traceback" not in log, log[-3000:]
    assert len([line for line in log.splitlines() if "disconnect" in line.lower()]) <= 6, log[-3000:]


def test_stalled_headers_and_bodies_are_cut_off(live):
    client, port = live.client, live.port
    began = time.monotonic()
    with connect(port) as idle, connect(port) as slow_headers, connect(port) as slow_body:
        slow_headers.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\n")
        slow_body.sendall(b"POST /get-online-features HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          b"Content-Length: 100\r\n\r\n{\"features\"")
        assert receive_all(idle) == b""
        assert receive_all(slow_headers) == b""
        answer = receive_all(slow_body)
    assert time.monotonic() - began < 4.0
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer
    assert b'"RequestTimeout"' in body and b"serving.body_timeout" in body
    # the server goes on answering
    assert client.get("/health").status_code == 200


def test_what_the_http_layer_refuses_by_itself_is_json(live):
    for request, status, kind in (
        (b"NOT HTTP AT ALL\r\n\r\n", b"400", b'"BadRequest"'),
        (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-Big-%d: %b\r\n" % (i, b"a" * 1000)
                                                          for i in range(200)) + b"\r\n",
         b"431", b'"RequestHeaderFieldsTooLarge"'),
    ):
        with connect(live.port) as sock:
            try:
                sock.sendall(request)
            except ConnectionResetError:  # closed while the rest was still being sent
                pass
            answer = receive_all(sock)
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 " + status), answer[:300]
        assert b"application/json" in head.lower()
        assert kind in body
    assert live.client.get("/health").status_code == 200
