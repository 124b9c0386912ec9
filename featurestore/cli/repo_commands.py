"""Commands about definitions: init, quickstart, plan, apply, registry, datasets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from featurestore.cli.main import cli, open_store, pass_repo

__all__ = ["print_changes"]


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", help="Project name (default: the folder's name).")
def init(directory: Path, project: str | None) -> None:
    """Create an example feature repo in DIRECTORY."""
    from featurestore.scaffold import init_repo

    path = init_repo(directory, project)
    click.echo(f"Created a feature repo in {path}\n\nNext:\n  cd {directory}\n  featurestore apply\n"
               "  featurestore materialize-incremental now\n  python train.py")


def print_changes(changes) -> None:
    if not changes:
        click.echo("No changes: the registry matches the repo.")
        return
    marks = {"add": ("+", "green"), "change": ("~", "yellow"), "remove": ("-", "red")}
    for change in changes:
        mark, color = marks[change.action]
        detail = f" ({', '.join(change.fields)})" if change.fields else ""
        click.secho(f"  {mark} {change.kind} {change.name}{detail}", fg=color)


@cli.command()
@pass_repo
def plan(repo: Path) -> None:
    """Show what `apply` would change, without changing anything."""
    with open_store(repo) as store:
        print_changes(store.plan())


@cli.command()
@pass_repo
def apply(repo: Path) -> None:
    """Validate the repo's definitions against their data and register them."""
    with open_store(repo) as store:
        result = store.apply()
        print_changes(result.changes)
        if result.changes:
            click.echo(f"Applied {len(result.changes)} change(s); registry revision {result.revision}.")


@cli.group()
def registry() -> None:
    """Browse the registry: objects, their history and lineage."""


@registry.command("show")
@click.argument("kind", required=False)
@click.argument("name", required=False)
@pass_repo
def registry_show(repo: Path, kind: str | None, name: str | None) -> None:
    """List current objects, or show one object's spec (KIND NAME)."""
    with open_store(repo) as store:
        if kind and name:
            obj = store.registry.get(store.project, kind, name)
            if obj is None:
                from featurestore.errors import NotFoundError

                raise NotFoundError(kind.replace("_", " "), name, [o.name for o in store.registry.list(store.project, kind)])
            click.echo(json.dumps({"kind": obj.kind, "name": obj.name, "version": obj.version,
                                   "spec": obj.spec}, indent=2, default=str))
            return
        for obj in store.registry.list(store.project, kind):
            click.echo(f"{obj.kind:16} {obj.name:32} v{obj.version}  {obj.created_at:%Y-%m-%d %H:%M:%S}")


@registry.command("history")
@click.argument("kind")
@click.argument("name")
@pass_repo
def registry_history(repo: Path, kind: str, name: str) -> None:
    """Every version of one object, oldest first."""
    with open_store(repo) as store:
        for obj in store.registry.history(store.project, kind, name):
            state = "removed" if obj.removed else "current" if obj is not None else ""
            click.echo(f"v{obj.version}  {obj.created_at:%Y-%m-%d %H:%M:%S}  revision {obj.revision}  {state}")


@registry.command("lineage")
@click.argument("kind")
@click.argument("name")
@click.option("--direction", type=click.Choice(["both", "upstream", "downstream"]), default="both")
@pass_repo
def registry_lineage(repo: Path, kind: str, name: str, direction: str) -> None:
    """What an object reads from (upstream) and what reads from it (downstream)."""
    with open_store(repo) as store:
        for edge in store.registry.lineage(store.project, kind, name, direction):
            click.echo(f"{edge.from_kind}:{edge.from_name} -> {edge.to_kind}:{edge.to_name}")


@cli.group()
def datasets() -> None:
    """Saved training sets."""


@datasets.command("list")
@pass_repo
def datasets_list(repo: Path) -> None:
    """Saved training sets with their row counts and feature references."""
    with open_store(repo) as store:
        for ds in store.list_saved_datasets():
            click.echo(f"{ds['name']:24} v{ds['version']}  {ds['rows']:>10,} rows  {ds['path']}")
            click.echo(f"{'':24} features: {', '.join(ds['features'])}")


@cli.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def quickstart(directory: Path | None) -> None:
    """Create a demo repo, apply it, and print a training set and an online lookup."""
    import tempfile

    import polars as pl

    from featurestore.scaffold import init_repo
    from featurestore.store import FeatureStore

    directory = directory or Path(tempfile.mkdtemp(prefix="featurestore-quickstart-")) / "driver_repo"
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    path = init_repo(directory, now=now)
    click.secho(f"1. Created the example repo in {path}", bold=True)
    with FeatureStore(repo_path=path) as store:
        result = store.apply()
        click.secho("2. Applied its definitions:", bold=True)
        print_changes(result.changes)
        entity_df = pl.DataFrame({
            "driver_id": [1001, 1002, 1003, 1001],
            "event_timestamp": [now - timedelta(hours=h) for h in (1, 5, 30, -26)],
        })
        refs = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate",
                "driver_hourly_stats:avg_daily_trips"]
        training = store.get_historical_features(entity_df, refs).to_polars()
        click.secho("3. A point-in-time-correct training set (the last row is 26 h after the newest data, "
                    "past the view's 1-day ttl, so its features are null):", bold=True)
        click.echo(training)
        results = store.materialize_incremental(now)
        rows = sum(r.rows for r in results)
        click.secho(f"4. Materialized {rows} rows into the online store ({store.config.online_store.type}):", bold=True)
        online = store.get_online_features(refs, [{"driver_id": 1001}, {"driver_id": 1002}, {"driver_id": 9999}])
        click.echo(online.to_polars())
    click.echo(f"\nNext: cd {path} && python train.py  (or `featurestore -r {path} serve`)")
