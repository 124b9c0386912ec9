"""``featurestore serve``: the HTTP API under uvicorn."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import click

from featurestore.cli.main import cli, pass_repo

__all__ = ["prepare_metrics_dir"]


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


@cli.command()
@click.option("--host", "-h", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
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
@pass_repo
def serve(repo: Path, host: str, port: int, workers: int, log_level: str, access_log: bool,
          watch_interval: float) -> None:
    """Serve online features, push and materialization over HTTP (Feast-compatible)."""
    from featurestore.config import load_config

    config = load_config(repo)  # a bad featurestore.yaml is one line here, not a worker traceback
    os.environ["FEATURESTORE_REPO"] = str(config.repo_path)
    os.environ["FEATURESTORE_WATCH_INTERVAL"] = str(watch_interval)
    prepare_metrics_dir(workers)

    import uvicorn

    click.echo(f"Serving project {config.project!r} from {config.repo_path} on http://{host}:{port} "
               f"({workers} worker{'s' if workers > 1 else ''}; API docs at /docs)", err=True)
    uvicorn.run("serving.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=log_level, access_log=access_log)
