"""``featurestore serve`` in a subprocess, for tests that need a real uvicorn and real sockets."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

__all__ = ["Server", "free_port", "wait_for"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, what: str, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"gave up waiting for {what}")


def _listens(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the listening socket on ``port``: a server that took
    the port first would answer ``/health`` too. Without /proc, trust the answer."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
        with open("/proc/net/tcp") as table:
            lines = table.read().splitlines()[1:]
    except OSError:
        return not os.path.isdir("/proc")
    inodes = set()
    for fd in fds:
        try:
            inodes.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:  # closed since the listing
            pass
    for line in lines:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            return f"socket:[{fields[9]}]" in inodes
    return False


class Server:
    """``featurestore --repo REPO serve ARGS`` on a free port, ready (``/health`` answers:
    ``/ready`` may rightly fail in a test). A port is only known free until someone binds
    it: when another process took it meanwhile, the server exits saying so, and the next
    port is tried. ``stop()`` returns everything the server wrote."""

    def __init__(self, repo, *args: str, env: dict | None = None, attempts: int = 3):
        for _ in range(attempts):
            self.port = free_port()
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from featurestore.cli.main import main; main()", "--repo", str(repo), "serve",
                 "--port", str(self.port), *args],
                env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)
            self.output: str | None = None
            wait_for(lambda: self.proc.poll() is not None
                     or (self.client.get("/health").status_code == 200 and _listens(self.proc.pid, self.port)),
                     "the server to start")
            if self.proc.poll() is None:
                return
            output = self.stop()
            if "in use" not in output:
                pytest.fail(f"the server exited before it was ready:\n{output[-3000:]}")
        pytest.fail(f"no free port in {attempts} attempts")

    def stop(self) -> str:
        if self.output is None:
            self.client.close()
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
            try:
                out, _ = self.proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                out, _ = self.proc.communicate()
            self.output = out.decode(errors="replace")
        return self.output
