"""Commands that move data: materialize, materialize-incremental and teardown."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from featurestore.cli.group import check_views, cli, open_store, pass_repo
from featurestore.cli.progress import ProgressLine

__all__ = ["parse_time"]


def parse_time(text: str, what: str = "time") -> datetime:
    """An ISO 8601 time, or ``now``; naive times are UTC. ``what`` names the argument in errors."""
    if text.strip().lower() == "now":
        return datetime.now(timezone.utc)
    from featurestore.clock import parse_utc
    from featurestore.errors import InputError

    try:
        return parse_utc(text.strip(), what)
    except InputError as exc:
        raise InputError(f"{exc}, or `now`") from None


def _report(results) -> None:
    total_rows = sum(r.rows for r in results)
    total_seconds = sum(r.seconds for r in results)
    for r in results:
        start = r.start.isoformat() if r.start else "the beginning"
        click.echo(f"{r.view}: {r.rows:,} rows from {start} to {r.end.isoformat()} "
                   f"in {r.seconds:.2f} s ({r.rows_per_second:,.0f} rows/s)" + (f"; {r.note}" if r.note else ""))
    click.echo(f"Materialized {total_rows:,} rows in {total_seconds:.2f} s "
               f"({total_rows / total_seconds if total_seconds else 0:,.0f} rows/s).")


@cli.command(short_help="Load a time range's latest rows online.")
@click.argument("start", metavar="START")
@click.argument("end", metavar="END")
@click.option("--views", "-v", multiple=True, metavar="VIEW", help="Only this view (repeatable; default: every online view).")
@pass_repo
def materialize(repo: Path, start: str, end: str, views: tuple[str, ...]) -> None:
    """Load each entity's latest row between START and END online.

    START and END are ISO 8601 times (naive: UTC), e.g. 2024-05-01 or 2024-05-01T12:00:00,
    or `now`.
    """
    begin, finish = parse_time(start, "START"), parse_time(end, "END")
    with open_store(repo) as store:
        check_views(store, views)
        progress = ProgressLine()
        try:
            results = store.materialize(begin, finish, list(views) or None, progress)
        finally:
            progress.close()
        _report(results)


@cli.command("materialize-incremental", short_help="Load what is new since the last run online.")
@click.argument("end", metavar="END")
@click.option("--views", "-v", multiple=True, metavar="VIEW", help="Only this view (repeatable; default: every online view).")
@pass_repo
def materialize_incremental(repo: Path, end: str, views: tuple[str, ...]) -> None:
    """Load rows since each view's last materialization, up to END, online.

    END is an ISO 8601 time (naive: UTC) or `now`. A view's first run starts at END minus
    its ttl (a view without ttl: at its first row).
    """
    finish = parse_time(end, "END")
    with open_store(repo) as store:
        check_views(store, views)
        progress = ProgressLine()
        try:
            results = store.materialize_incremental(finish, list(views) or None, progress)
        finally:
            progress.close()
        _report(results)


@cli.command(short_help="Clear views' online values and watermarks.")
@click.argument("views", nargs=-1, metavar="[VIEW]...")
@click.option("--yes", "-y", is_flag=True, help="Clear without asking.")
@pass_repo
def teardown(repo: Path, views: tuple[str, ...], yes: bool) -> None:
    """Delete the online values of each VIEW (default: every feature view) from the
    configured online store and forget their watermarks there, so the next
    `materialize-incremental` fills them from scratch. Offline data and the registry stay.
    """
    with open_store(repo) as store:
        check_views(store, views)
        names = list(views) or sorted(store.contents.feature_views)
        if not names:
            click.echo("The registry has no feature views; nothing to clear.")
            return
        where = store.online.location
        if not yes:
            click.confirm(f"Delete the online values and watermarks of {', '.join(names)} in {where}?", abort=True)
        store.teardown(names)
        click.echo(f"Cleared {', '.join(names)} in {where}; `featurestore materialize-incremental now` "
                   "loads them again.")
