"""``featurestore serve``: the HTTP API under uvicorn."""

from __future__ import annotations

import atexit
import errno
import os
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import click

from featurestore.cli.group import cli, open_store, pass_repo
from featurestore.errors import ConfigError

__all__ = ["FlightThread", "check_port", "nodelay_socket", "prepare_metrics_dir", "run_uvicorn", "start_flight"]


def prepare_metrics_dir(workers: int) -> str | None:
    """Settle ``PROMETHEUS_MULTIPROC_DIR`` before anything imports prometheus_client.

    Several workers must share their metrics through files: when the variable is unset,
    use a fresh temporary folder, removed at exit. A folder the user set is used as it is
    (it should be emptied between runs; Prometheus's client docs say why).
    """
    current = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if current:
        Path(current).mkdir(parents=True, exist_ok=True)
        return current
    if workers <= 1:
        return None
    folder = tempfile.mkdtemp(prefix="featurestore-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def nodelay_socket(sock: socket.socket) -> socket.socket:
    """The listening socket, re-wrapped as ``IPPROTO_TCP`` if it was made with protocol 0:
    asyncio sets ``TCP_NODELAY`` on accepted connections only when the listening socket
    says it is TCP."""
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
        return socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    return sock


def run_uvicorn(app: str, *, factory: bool = False, host: str = "127.0.0.1", port: int = 6566, workers: int = 1,
                log_level: str = "info", access_log: bool = True, http: str = "auto",
                timeout_keep_alive: float = 5) -> None:
    """``uvicorn.run`` for an import string, with one fix for several workers.

    For ``workers > 1`` uvicorn binds the listening socket itself with protocol 0, which
    asyncio does not take for TCP, so the workers' connections keep Nagle's algorithm on;
    together with the client's delayed ACKs every keep-alive answer then waits about
    40 ms. The same descriptor, re-wrapped as ``IPPROTO_TCP``, gets ``TCP_NODELAY`` on
    every accepted connection, as a single worker's sockets do.
    """
    import uvicorn

    options = dict(factory=factory, host=host, port=port, workers=workers, log_level=log_level, access_log=access_log,
                   http=http, timeout_keep_alive=timeout_keep_alive)
    if workers <= 1:
        uvicorn.run(app, **options)
        return
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(app, **options)
    sock = nodelay_socket(config.bind_socket())
    try:
        Multiprocess(config, sockets=[sock]).run()
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def check_port(host: str, port: int) -> None:
    """Fail with one line when ``host:port`` cannot be bound (taken, or not this machine's
    address), before uvicorn starts workers and logs a traceback-like page about it."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host!r} is not a known address ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                message = f"port {port} on {host} is in use; stop what holds it or pass another --port"
            elif exc.errno == errno.EADDRNOTAVAIL:
                message = f"--host {host} is not an address of this machine; use 127.0.0.1, or 0.0.0.0 for all"
            elif exc.errno == errno.EACCES:
                message = f"port {port} needs more privileges than this process has; pass a --port above 1023"
            else:
                message = f"cannot listen on {host}:{port} ({exc.strerror})"
            raise ConfigError(message) from None


class FlightThread:
    """A Flight server on a thread of its own, with the store it opened; ``stop()`` ends both."""

    def __init__(self, server, store):
        self.server, self.store = server, store
        self._thread = threading.Thread(target=server.serve, name="featurestore-flight", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        """Until the server stops; a signal (Ctrl-C, SIGTERM as KeyboardInterrupt) reaches this thread."""
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(timeout=10)
        self.store.close()


def start_flight(repo: Path, host: str | None, port: int | None) -> FlightThread:
    """Open the repo's store and serve it over Flight (``flight:`` settings, then these overrides)."""
    from serving.flight import FeatureFlightServer, flight_settings

    store = open_store(repo)
    try:
        settings = flight_settings(store.config, host=host, port=port)
        check_port(settings.host, settings.port)
        server = FeatureFlightServer(store, settings)
    except BaseException:
        store.close()
        raise
    click.echo(f"Serving project {store.project!r} over Arrow Flight on {server.url} "
               f"({settings.slots} engine slot{'s' if settings.slots > 1 else ''})", err=True)
    return FlightThread(server, store)


@cli.command(short_help="Serve features, predictions and push over HTTP.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option("--port", "-p", default=6566, show_default=True, type=click.IntRange(0, 65535),
              help="Port (6566 as feast serve).")
@click.option("--workers", "-w", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Worker processes; about one per CPU core.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="Log every request (costs throughput at high request rates).")
@click.option("--watch-interval", default=1.0, show_default=True, type=click.FloatRange(0),
              help="Seconds between checks for a new apply (0: never reload).")
@click.option("--flight-port", default=None, type=click.IntRange(0, 65535),
              help="Also serve Arrow Flight on this port (training sets for FeatureStore.remote and Feast; "
                   "docs/remote.md).")
@pass_repo
def serve(repo: Path, host: str, port: int, workers: int, log_level: str, access_log: bool,
          watch_interval: float, flight_port: int | None) -> None:
    """Serve online features, predictions, push and materialization over HTTP (Feast-compatible).

    Run it from the repo folder (or pass --repo before `serve`). Endpoints and examples:
    docs/http-api.md; interactive API docs at /docs once it runs.
    """
    from featurestore.config import load_config

    config = load_config(repo)  # a bad featurestore.yaml is one line here, not a worker traceback
    check_port(host, port)
    os.environ["FEATURESTORE_REPO"] = str(config.repo_path)
    os.environ["FEATURESTORE_WATCH_INTERVAL"] = str(watch_interval)
    prepare_metrics_dir(workers)

    click.echo(f"Serving project {config.project!r} from {config.repo_path} on http://{host}:{port} "
               f"({workers} worker{'s' if workers > 1 else ''}; API docs at /docs)", err=True)
    # Imported after prepare_metrics_dir (prometheus_client reads its folder on import);
    # uvicorn gets the factory as an import string, which several workers need.
    from serving.app import app_from_env
    from serving.protocol import HEADER_TIMEOUT_ENV, GuardedHttpProtocol

    os.environ[HEADER_TIMEOUT_ENV] = str(config.serving.header_timeout)  # every worker's protocol reads it

    flight = None
    if flight_port is not None:  # beside uvicorn, in this process (a thread), sharing no state with the workers
        flight = start_flight(repo, host, flight_port)
    try:
        run_uvicorn(f"{app_from_env.__module__}:{app_from_env.__qualname__}", factory=True, host=host, port=port,
                    workers=workers, log_level=log_level, access_log=access_log,
                    http=f"{GuardedHttpProtocol.__module__}:{GuardedHttpProtocol.__qualname__}",
                    timeout_keep_alive=config.serving.keep_alive_timeout)
    finally:
        if flight is not None:
            flight.stop()
