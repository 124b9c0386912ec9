"""``featurestore monitor ...``: run a model's drift and skew monitor, list past runs,
write the HTML report (docs/monitoring.md). The monitors live in ``monitoring``; the CLI,
as the composition root, may import it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from featurestore.cli.data_commands import parse_time
from featurestore.cli.group import cli, open_store, pass_repo
from featurestore.cli.model_commands import table

__all__ = ["monitor"]


@cli.group(short_help="Drift and skew monitors: run, history, report.")
def monitor() -> None:
    """Judge the served rows of a model against its training set (drift) and against the
    features recomputed offline (skew). MODEL is name/3, name@alias or name (its
    `champion`, else its latest version)."""


@monitor.command("run", short_help="Judge a window of served rows now.")
@click.argument("model")
@click.option("--start", metavar="TIME", help="Window start (ISO 8601; naive: UTC). Default: END minus the window.")
@click.option("--end", metavar="TIME", help="Window end (ISO 8601 or `now`). Default: now.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@pass_repo
def run(repo: Path, model: str, start: str | None, end: str | None, as_json: bool) -> None:
    """Run MODEL's monitor over [START, END) of its serving log and store the result."""
    from monitoring.runs import run_monitor

    begin = parse_time(start, "--start") if start else None
    finish = parse_time(end, "--end") if end else None
    with open_store(repo) as store:
        result = run_monitor(store, model, begin, finish)
    if as_json:
        click.echo(json.dumps(result.to_dict(), default=str))
        return
    _print_result(result)


@monitor.command(short_help="List stored monitor runs, newest first.")
@click.argument("model", required=False)
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1), help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
@pass_repo
def history(repo: Path, model: str | None, limit: int, as_json: bool) -> None:
    """Stored monitor runs of MODEL (or of every model), newest first."""
    from monitoring.runs import history as runs

    with open_store(repo) as store:
        results = runs(store, model, limit)
    if as_json:
        for result in results:
            click.echo(json.dumps(result.to_dict(), default=str))
        return
    if not results:
        click.echo("No monitor runs yet: `featurestore monitor run MODEL` runs one.")
        return
    table([[f"{r.model}/{r.version}", str(r.run), r.trigger, f"{r.start:%Y-%m-%d %H:%M} .. {r.end:%Y-%m-%d %H:%M}",
            str(r.rows), r.status, _drifted(r), _dataset_drift(r)] for r in results],
          ["VERSION", "RUN", "TRIGGER", "WINDOW (UTC)", "ROWS", "STATUS", "DRIFTED", "DATASET DRIFT"])


@monitor.command(short_help="Write the latest run of a model as one HTML page.")
@click.argument("model")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The HTML file to write.")
@pass_repo
def report(repo: Path, model: str, out: Path) -> None:
    """Write MODEL's latest monitor run (running one when it has none) as a self-contained
    HTML page: summary, distributions drawn one over the other, skew table."""
    from monitoring.report import model_report

    with open_store(repo) as store:
        page = model_report(store, model)
    out.write_text(page, encoding="utf-8")
    click.echo(f"wrote {out}")


def _dataset_drift(result) -> str:
    # A run with too few rows judged nothing: "no" would read as a clean bill of health.
    if result.status == "not_enough_data":
        return "-"
    return "yes" if result.dataset_drift else "no"


def _drifted(result) -> str:
    names = [d["feature"] for d in result.drift if d["drifted"]]
    return ", ".join(names) if names else "-"


def _print_result(result) -> None:
    click.echo(f"{result.model}/{result.version}: {result.rows} row(s) served {result.start:%Y-%m-%d %H:%M} .. "
               f"{result.end:%Y-%m-%d %H:%M} UTC (run {result.run})")
    if result.drift:
        table([[d["feature"], d["method"], "-" if d["statistic"] is None else f"{d['statistic']:.4g}",
                f"{d['threshold']:g}", "not enough data" if d["status"] == "not_enough_data" else
                ("DRIFT" if d["drifted"] else "ok"), f"{d['current_null_rate']:.1%}", f"{d['outside_training']:.1%}"]
               for d in result.drift],
              ["FEATURE", "METHOD", "STATISTIC", "THRESHOLD", "VERDICT", "NULLS", "OUTSIDE TRAINING"])
    if result.status == "not_enough_data":
        click.echo("dataset drift: not judged (too few served rows in the window; docs/monitoring.md#drift)")
    else:
        click.echo(f"dataset drift: {_dataset_drift(result)} ({result.drifted_share:.0%} of the features drifted)")
    if result.skew:
        table([[s["feature"], f"{s['mismatch_ratio']:.2%}", str(s["compared"])] for s in result.skew],
              ["FEATURE", "SKEW MISMATCH", "COMPARED"])
