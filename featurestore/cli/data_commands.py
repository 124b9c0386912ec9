"""Commands that move data: materialize and materialize-incremental."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import click

from featurestore.cli.main import cli, open_store, pass_repo

__all__ = ["parse_time"]


def parse_time(text: str) -> datetime:
    """An ISO 8601 time, or ``now``; naive times are UTC."""
    if text.lower() == "now":
        return datetime.now(timezone.utc)
    from featurestore.materialize import utc

    return utc(text, "time")


class _Progress:
    """A one-line live counter per view: rows written and the running rate."""

    def __init__(self) -> None:
        self.began: dict[str, float] = {}

    def __call__(self, view: str, rows: int) -> None:
        began = self.began.setdefault(view, time.perf_counter())
        rate = rows / max(time.perf_counter() - began, 1e-9)
        click.echo(f"\r  {view}: {rows:,} rows  ({rate:,.0f} rows/s)", nl=False, err=True)


def _report(results) -> None:
    click.echo("", err=True)
    total_rows = sum(r.rows for r in results)
    total_seconds = sum(r.seconds for r in results)
    for r in results:
        start = r.start.isoformat() if r.start else "the beginning"
        click.echo(f"{r.view}: {r.rows:,} rows from {start} to {r.end.isoformat()} "
                   f"in {r.seconds:.2f} s ({r.rows_per_second:,.0f} rows/s)")
    click.echo(f"Materialized {total_rows:,} rows in {total_seconds:.2f} s "
               f"({total_rows / total_seconds if total_seconds else 0:,.0f} rows/s).")


@cli.command()
@click.argument("start")
@click.argument("end")
@click.option("--views", "-v", multiple=True, help="Only these views (repeatable).")
@pass_repo
def materialize(repo: Path, start: str, end: str, views: tuple[str, ...]) -> None:
    """Load each entity's latest row between START and END (ISO 8601 or `now`) online."""
    with open_store(repo) as store:
        _report(store.materialize(parse_time(start), parse_time(end), list(views) or None, _Progress()))


@cli.command("materialize-incremental")
@click.argument("end")
@click.option("--views", "-v", multiple=True, help="Only these views (repeatable).")
@pass_repo
def materialize_incremental(repo: Path, end: str, views: tuple[str, ...]) -> None:
    """Load rows since each view's last materialization, up to END (ISO 8601 or `now`)."""
    with open_store(repo) as store:
        _report(store.materialize_incremental(parse_time(end), list(views) or None, _Progress()))
