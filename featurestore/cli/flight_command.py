"""``featurestore flight`` and ``featurestore serve --flight-port``: the Arrow Flight server
(serving/flight, docs/remote.md) for ``FeatureStore.remote`` and Feast's remote offline store."""

from __future__ import annotations

from pathlib import Path

import click

from featurestore.cli.group import cli, pass_repo
from featurestore.cli.serve_command import start_flight

__all__ = ["flight"]


@cli.command(short_help="Serve training sets and scoring over Arrow Flight.")
@click.option("--host", default=None, help="Interface to listen on (default: flight.host, 127.0.0.1).")
@click.option("--port", "-p", default=None, type=click.IntRange(0, 65535),
              help="Port (default: flight.port, 8815).")
@pass_repo
def flight(repo: Path, host: str | None, port: int | None) -> None:
    """Serve training sets, saved datasets, batch scoring and online reads over Arrow Flight,
    for FeatureStore.remote(...) and Feast's remote offline store (docs/remote.md).
    Runs until stopped (Ctrl-C)."""
    running = start_flight(repo, host, port)
    try:
        running.wait()
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
