"""Commands that run unattended work: scheduler, backfill, and the jobs history."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

import click

from featurestore.cli.data_commands import parse_time
from featurestore.cli.group import check_views, cli, open_store, pass_repo

__all__ = ["print_jobs"]


def _log_to_stderr() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command(short_help="Materialize each scheduled view on its schedule.")
@click.option("--once", is_flag=True, help="Run each scheduled view's due window once, then exit.")
@click.option("--poll", metavar="DURATION", help="How often to look for a new apply, e.g. 30s (default: scheduler.poll).")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1),
              help="Views materialized at the same time.")
@pass_repo
def scheduler(repo: Path, once: bool, poll: str | None, workers: int) -> None:
    """Materialize each scheduled view on its schedule until SIGTERM or Ctrl-C.

    A view is scheduled by its definition's `schedule` (cron string or timedelta) or by
    `scheduler.views` in featurestore.yaml. Applies are picked up without a restart.
    Model monitors with a `schedule` under `monitoring.models` in featurestore.yaml run
    here too, and running model rollouts are judged and stepped (docs/rollouts.md).
    """
    from featurestore.jobs import JobSettings, Scheduler, parse_duration
    from monitoring.rollout_controller import rollout_task
    from monitoring.scheduled import monitor_tasks

    _log_to_stderr()
    with open_store(repo) as store:
        settings = JobSettings.from_config(store.config)
        if poll:
            settings = settings.with_(poll=parse_duration(poll, "--poll").total_seconds())
        tasks = {**monitor_tasks(store), "rollouts": rollout_task(store)}
        runner = Scheduler(store, settings=settings, workers=workers, tasks=tasks)
        if not runner.wanted():
            click.echo(f"No view of project {store.project!r} has a schedule: give a FeatureView "
                       "`schedule=\"0 * * * *\"` (or a timedelta) and apply, or list it under scheduler.views "
                       "in featurestore.yaml." + ("" if once else " Waiting for an apply that adds one (model "
                                                 "monitors and rollouts run meanwhile)."), err=True)
        if once:
            records = runner.run_due()
            runner.stop(grace=0)
            if records or runner.schedules:
                print_jobs(records, empty="No runs: every scheduled view was up to date or busy.")
            return
        runner.run_forever()


@cli.command(short_help="Materialize a view's past range in chunks.")
@click.option("--view", "-v", "view", required=True, help="The feature view to backfill.")
@click.option("--start", required=True, metavar="TIME", help="Start of the range (ISO 8601; naive: UTC).")
@click.option("--end", required=True, metavar="TIME", help="End of the range (ISO 8601 or `now`).")
@click.option("--chunk", default="1d", show_default=True, metavar="DURATION", help="Chunk length, e.g. 1d, 6h, 30m.")
@click.option("--parallel", default=1, show_default=True, type=click.IntRange(1), help="Chunks run at the same time.")
@click.option("--retries", type=click.IntRange(0), help="Extra attempts per failed chunk (default: scheduler.retries).")
@click.option("--backoff", metavar="DURATION",
              help="Wait before the first retry, doubling after (default: scheduler.retry_backoff).")
@click.option("--force", is_flag=True, help="Rerun chunks that already succeeded.")
@pass_repo
def backfill(repo: Path, view: str, start: str, end: str, chunk: str, parallel: int, retries: int | None,
             backoff: str | None, force: bool) -> None:
    """Materialize VIEW from START to END in chunks; a rerun skips the chunks already done.

    Ctrl-C or SIGTERM once: running chunks finish, no new ones start. Twice: running
    chunks stop at their next batch and are recorded as interrupted.
    """
    from featurestore.errors import InputError, JobError
    from featurestore.jobs import backfill as run_backfill
    from featurestore.jobs import parse_duration
    from featurestore.jobs.backfill import chunk_windows

    begin, finish = parse_time(start, "--start"), parse_time(end, "--end")
    if begin >= finish:
        raise InputError(f"--start {begin:%Y-%m-%d %H:%M:%S} must be before --end {finish:%Y-%m-%d %H:%M:%S} (UTC)")
    size = parse_duration(chunk, "--chunk")
    wait = None if backoff is None else parse_duration(backoff, "--backoff").total_seconds()
    stop, cancel = threading.Event(), threading.Event()

    def on_signal(signum, _frame) -> None:
        (cancel if stop.is_set() else stop).set()
        click.echo(f"\n{'stopping the running chunks' if cancel.is_set() else 'finishing the running chunks'}"
                   " (again to interrupt them)", err=True)

    with open_store(repo) as store:
        check_views(store, [view])  # an unknown name fails here, before the progress bar
        begin, finish = store.times.check(begin, "--start"), store.times.check(finish, "--end")  # before chunking
        total = len(chunk_windows(begin, finish, size))
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            with click.progressbar(length=total, label=f"{view} {begin:%Y-%m-%d %H:%M} .. {finish:%Y-%m-%d %H:%M}",
                                   file=sys.stderr, show_pos=True) as bar:
                report = run_backfill(store, view, begin, finish, size, parallel=parallel, retries=retries,
                                      backoff=wait, force=force, progress=lambda _outcome: bar.update(1),
                                      stop=stop, cancel=cancel)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    click.echo(f"{report.view}: {len(report.chunks)} chunk(s): {report.count('succeeded')} ran, "
               f"{report.count('skipped')} already done, {len(report.failed)} not done; "
               f"{report.rows:,} rows written (batch {report.batch})")
    for outcome in report.failed:
        click.echo(f"  {outcome.status} {outcome.start.isoformat()} .. {outcome.end.isoformat()} after "
                   f"{outcome.attempts} attempt(s): {outcome.error}")
    if not report.ok:
        raise JobError(f"{len(report.failed)} chunk(s) of {report.view} did not finish; fix the cause and run "
                       "the same command again: it runs only those")


@cli.command(short_help="List materialization runs, newest first.")
@click.option("--view", "-v", "view", help="Only this feature view's runs.")
@click.option("--failed", is_flag=True, help="Only failed or interrupted runs.")
@click.option("--trigger", type=click.Choice(["scheduled", "backfill", "manual"]),
              help="Only runs started this way (manual: the CLI, HTTP API or Python).")
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(1), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@pass_repo
def jobs(repo: Path, view: str | None, failed: bool, trigger: str | None, limit: int, as_json: bool) -> None:
    """List materialization runs, newest first: scheduled, backfill chunks and manual."""
    with open_store(repo) as store:
        records = store.registry.jobs.list(
            store.project, target=view, trigger=trigger, limit=limit,
            statuses=("failed", "interrupted") if failed else None,
        )
        if view and not records and view not in store.contents.feature_views:
            check_views(store, [view])  # a view removed since keeps its history; a typo fails
    if as_json:
        from featurestore.jobs.runner import record_json

        for record in records:
            click.echo(json.dumps(record_json(record)))
        return
    print_jobs(records)


def print_jobs(records, empty: str = "No jobs.") -> None:
    if not records:
        click.echo(empty)
        return
    colors = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "running": "cyan"}
    click.echo(f"{'ID':>5}  {'VIEW':28} {'TRIGGER':9} {'WINDOW (UTC)':36} {'STATUS':11} {'ROWS':>9} "
               f"{'SECONDS':>8}  STARTED")
    for r in records:
        start = f"{r.window_start:%Y-%m-%d %H:%M}" if r.window_start else "beginning"
        window = f"{start} .. {r.window_end:%Y-%m-%d %H:%M}"
        rows = "" if r.rows is None else f"{r.rows:,}"
        seconds = "" if r.seconds is None else f"{r.seconds:.2f}"
        attempt = f" #{r.attempt}" if r.attempt > 1 else ""
        status = click.style(f"{r.status:11}", fg=colors.get(r.status))
        click.echo(f"{r.id:>5}  {r.target:28} {r.trigger + attempt:9} {window:36} {status} {rows:>9} "
                   f"{seconds:>8}  {r.started_at:%Y-%m-%d %H:%M:%S}")
        if r.error:
            click.echo(f"       {r.error.splitlines()[0][:160]}")
