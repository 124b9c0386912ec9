"""``featurestore stream``: the Redis Stream worker (featurestore/streaming/worker.py)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click

from featurestore.cli.group import cli, open_store, pass_repo
from featurestore.errors import ConfigError

__all__: list[str] = []


@cli.command(short_help="Consume Redis Streams into the stores.")
@click.option("--stream", "streams", multiple=True, metavar="STREAM=PUSH_SOURCE",
              help="A stream and the push source its entries feed (repeatable; default: streaming.streams).")
@click.option("--redis-url", help="The streams' Redis (default: streaming.redis_url, else the online store's).")
@click.option("--group", help="Consumer group; workers in one group share the streams (default: featurestore).")
@click.option("--consumer", help="This worker's name in the group (default: HOSTNAME-PID). Restarting under "
                                 "the same name re-applies its own pending entries at once.")
@click.option("--batch-size", type=click.IntRange(1), help="Entries per read (default: 2000).")
@click.option("--block-ms", type=click.IntRange(1), help="How long a read waits for new entries (default: 100).")
@click.option("--claim-idle", "claim_idle_seconds", type=click.FloatRange(0, min_open=True),
              help="Seconds an entry may sit pending on a consumer before another claims it (default: 60).")
@click.option("--flush-seconds", type=click.FloatRange(0, min_open=True),
              help="How often buffered rows are appended to the offline store and acknowledged (default: 5).")
@click.option("--flush-events", type=click.IntRange(1), help="...or after this many rows (default: 100000).")
@click.option("--start", type=click.Choice(["earliest", "latest"]),
              help="Where a new consumer group starts (default: earliest).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9108, show_default=True,
              help="Serve Prometheus metrics on this port (0: do not).")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Interface the metrics listen on (0.0.0.0: all, for a Prometheus on another host).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
@pass_repo
def stream(repo: Path, streams: tuple[str, ...], metrics_port: int, metrics_host: str, log_level: str,
           **settings) -> None:
    """Consume Redis Streams into the online and offline stores until SIGTERM or Ctrl-C.

    Each entry is a row of the stream's push source (fields are columns, as text).
    Aggregation views get the events online at once; rows are appended to the offline
    store every --flush-seconds, and only then acknowledged. See docs/streaming.md.
    """
    from featurestore.streaming.config import StreamSettings, parse_streams
    from featurestore.streaming.worker import StreamWorker

    if not logging.getLogger().handlers:
        logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with open_store(repo) as store:
        config = StreamSettings.from_config(store.config, streams=parse_streams(streams) or None, **settings)
        observer = None
        if metrics_port:
            # The CLI is where the layers meet: metrics live in `monitoring`, which depends on featurestore.
            from monitoring.streaming import PrometheusStreamObserver, serve_stream_metrics

            try:
                serve_stream_metrics(metrics_port, config, addr=metrics_host)
            except OSError as exc:
                raise ConfigError(f"cannot serve metrics on {metrics_host}:{metrics_port} ({exc}); pass another "
                                  "--metrics-port (or 0 for none; each worker on a host needs its own) or "
                                  "--metrics-host") from None
            observer = PrometheusStreamObserver()
        worker = StreamWorker(store, config, observer=observer)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        names = ", ".join(f"{s.stream} -> {s.push_source}" for s in config.streams)
        click.echo(f"Consuming {names} as {worker.consumer!r} in group {config.group!r}"
                   f"{f'; metrics on {metrics_host}:{metrics_port}/metrics' if metrics_port else ''}", err=True)
        worker.run(stop)
        click.echo("Stopped.", err=True)
