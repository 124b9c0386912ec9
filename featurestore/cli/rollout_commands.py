"""``featurestore rollout ...``: start, watch and steer a model's canary or shadow rollout.

``status --json`` prints the shape docs/rollouts.md pins: ``{state, stable, candidate,
weight, history: [...]}`` (plus the mode, settings and failure).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from featurestore.cli.group import cli, open_store, pass_repo
from featurestore.cli.model_commands import table

__all__ = ["rollout"]

_REASON = click.option("--reason", help="Why (kept in the rollout's history).")
# A share of traffic: click names the flag and the range when a value is outside it.
_PERCENT = click.IntRange(1, 100)


@cli.group(short_help="Canary and shadow rollouts of new model versions.")
def rollout() -> None:
    """Send a share of a model's traffic to a candidate version, judged each interval,
    promoted step by step or rolled back (docs/rollouts.md)."""


@rollout.command("start")
@click.argument("name")
@click.option("--candidate", required=True, type=click.IntRange(min=1), help="The version to roll out.")
@click.option("--mode", type=click.Choice(["canary", "shadow"]), default="canary", show_default=True,
              help="canary: a share of entities is answered by the candidate; shadow: it scores a mirrored "
                   "share and is only logged.")
@click.option("--step", "step_weight", type=_PERCENT, default=10, show_default=True,
              help="Percent added per passing interval.")
@click.option("--max", "max_weight", type=_PERCENT, default=50, show_default=True, help="Percent before promotion.")
@click.option("--interval", default="60s", show_default=True, help="How often the candidate is judged (30s, 5m).")
@click.option("--threshold", type=click.IntRange(min=1), default=3, show_default=True,
              help="Failed intervals before rollback.")
@click.option("--min-requests", type=click.IntRange(min=1), default=100, show_default=True,
              help="Requests per variant and interval below which an analysis is inconclusive.")
@click.option("--check", "checks", multiple=True, metavar="NAME=LIMIT",
              help="A check's limit (success_rate, p99_ms, p99_ratio, js_distance, null_rate; LIMIT 'off' skips it).")
@click.option("--promql", "promql", multiple=True, metavar="'QUERY <= LIMIT'",
              help="A check asked of monitoring.prometheus_url: a PromQL query giving one number, then <= or >= "
                   "and the limit; {model}, {stable}, {candidate}, {variant}, {interval} are filled in.")
@_REASON
@pass_repo
def rollout_start(repo: Path, name: str, candidate: int, mode: str, step_weight: int, max_weight: int,
                  interval: str, threshold: int, min_requests: int, checks: tuple[str, ...],
                  promql: tuple[str, ...], reason) -> None:
    """Start rolling out version CANDIDATE of model NAME against its champion."""
    from featurestore.clock import parse_duration
    from featurestore.errors import InputError

    # Checked here too so that the message names the flags typed, not the settings' keys.
    if step_weight > max_weight:
        raise InputError(f"--step {step_weight} is above --max {max_weight}; lower --step or raise --max")
    seconds = parse_duration(interval, "--interval").total_seconds()
    limits = _limits(checks)
    if promql:
        limits["promql"] = [_promql(item) for item in promql]
    with open_store(repo) as store:
        r = store.models.rollouts.start(name, candidate, mode=mode, step_weight=step_weight, max_weight=max_weight,
                                        interval=seconds, threshold=threshold, min_requests=min_requests,
                                        checks=limits, reason=reason)
        click.echo(f"Rolling out {name}/{r.candidate} against {name}/{r.stable} ({r.mode}, {r.weight}%).")


@rollout.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_repo
def rollout_status(repo: Path, name: str, as_json: bool) -> None:
    """Where NAME's rollout stands: state, weight, checks and history."""
    with open_store(repo) as store:
        r = store.models.rollouts.get(name)
        if as_json:
            click.echo(json.dumps(r.to_dict(), indent=2, default=str))
            return
        click.echo(f"{name}: {r.state}, {r.mode} of {name}/{r.candidate} against {name}/{r.stable}, weight "
                   f"{r.weight}% (step {r.step_weight}, max {r.max_weight}), failed intervals "
                   f"{r.failed_checks}/{r.threshold}")
        if r.failure:
            click.echo(f"failed: {json.dumps(r.failure, default=str)}")
        table([[e.at.isoformat(timespec="seconds"), e.decision, f"{e.weight}%", e.reason or "",
                json.dumps(e.measured, default=str) if e.measured else ""] for e in r.history],
              ["AT", "DECISION", "WEIGHT", "REASON", "MEASURED"])


def _steer(command: str, doc: str):
    @rollout.command(command, help=doc)
    @click.argument("name")
    @_REASON
    @pass_repo
    def run(repo: Path, name: str, reason) -> None:
        with open_store(repo) as store:
            r = getattr(store.models.rollouts, command)(name, reason=reason)
            click.echo(f"{name}: {r.state}, weight {r.weight}% ({name}/{r.candidate} against {name}/{r.stable}).")

    return run


_steer("pause", "Hold NAME's rollout at its weight; no analysis steps it until resume.")
_steer("resume", "Let NAME's paused rollout be judged and stepped again.")
_steer("promote", "Move NAME's champion to the candidate now and end the rollout.")
_steer("rollback", "Send NAME's candidate no more traffic and mark it failed.")


def _promql(item: str) -> dict:
    """``QUERY <= LIMIT`` or ``QUERY >= LIMIT`` (the last comparison in the text) as a check."""
    from featurestore.errors import InputError

    at = max(item.rfind("<="), item.rfind(">="))
    query, limit = item[:at].strip(), item[at + 2:].strip()
    try:
        bound = float(limit)
    except ValueError:
        bound = None
    if at < 0 or not query or bound is None:
        raise InputError(f"--promql {item!r} must end with <= or >= and a number: 'QUERY <= 0.01'")
    return {"query": query, ("max" if item[at] == "<" else "min"): bound}


def _limits(items: tuple[str, ...]) -> dict[str, float | None]:
    from featurestore.errors import InputError

    out: dict[str, float | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--check {item!r} must look like name=limit (success_rate=0.99)")
        try:
            out[key] = None if value.lower() == "off" else float(value)
        except ValueError:
            raise InputError(f"--check {item!r}: {value!r} is not a number (or 'off')") from None
    return out
