"""`featurestore serve` plumbing: the metrics folder and the workers' listening socket."""

from __future__ import annotations

import asyncio
import os
import socket

import uvicorn

from featurestore.cli.serve_command import nodelay_socket, prepare_metrics_dir


def test_metrics_dir_is_made_for_several_workers_only(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert prepare_metrics_dir(1) is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    folder = prepare_metrics_dir(2)
    assert os.path.isdir(folder) and os.environ["PROMETHEUS_MULTIPROC_DIR"] == folder
    own = tmp_path / "mine"
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(own))
    assert prepare_metrics_dir(4) == str(own) and own.is_dir()


async def _accepted_nodelay(sock: socket.socket) -> int:
    accepted: asyncio.Future = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            raw = transport.get_extra_info("socket")
            accepted.set_result(raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
    try:
        _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        value = await accepted
        writer.close()
        return value
    finally:
        server.close()


def test_workers_socket_gets_tcp_nodelay_on_accepted_connections():
    # What uvicorn binds for --workers N, then our fix: accepted connections must not wait
    # on Nagle's algorithm (a ~40 ms stall per keep-alive answer).
    sock = nodelay_socket(uvicorn.Config("x:y", host="127.0.0.1", port=0).bind_socket())
    assert sock.proto == socket.IPPROTO_TCP
    assert asyncio.run(_accepted_nodelay(sock)) != 0
