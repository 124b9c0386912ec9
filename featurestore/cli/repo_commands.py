"""Commands about definitions: init, quickstart, plan, apply, registry, datasets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from featurestore.cli.group import cli, open_store, pass_repo, unknown
from featurestore.serialization import DEFINITION_KINDS

__all__ = ["KINDS", "print_changes"]

#: What the registry keeps, as `featurestore registry` spells it.
KINDS = ("entity", "data_source", "feature_view", "on_demand_feature_view", "feature_service", "saved_dataset",
         "model", "model_version", "model_alias", "rollout", "monitor_run")


@cli.command(short_help="Create an example feature repo.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", help="Project name: letters, digits, _ and - (default: the folder's name).")
def init(directory: Path, project: str | None) -> None:
    """Create an example feature repo in DIRECTORY (new or empty)."""
    import yaml

    from featurestore.scaffold import check_project_name, init_repo

    if project is not None:
        check_project_name(project, "--project")
    path = init_repo(directory, project)
    name = (yaml.safe_load((path / "featurestore.yaml").read_text()) or {}).get("project")
    click.echo(f"Created a feature repo in {path} (project {name!r})\n\nNext:\n  cd {directory}\n"
               "  featurestore plan\n  featurestore apply\n  featurestore materialize-incremental now\n"
               "  python train.py")


def print_changes(changes) -> None:
    if not changes:
        click.echo("No changes: the registry matches the repo.")
        return
    marks = {"add": ("+", "green"), "change": ("~", "yellow"), "remove": ("-", "red")}
    for change in changes:
        mark, color = marks[change.action]
        detail = f" ({', '.join(change.fields)})" if change.fields else ""
        click.secho(f"  {mark} {change.kind} {change.name}{detail}", fg=color)


@cli.command(short_help="Show what `apply` would change.")
@pass_repo
def plan(repo: Path) -> None:
    """Show what `apply` would change, without changing anything."""
    with open_store(repo) as store:
        changes = store.plan()
        print_changes(changes)
        if changes:
            click.echo(f"{len(changes)} change(s); run `featurestore apply` to make them.")


@cli.command(short_help="Check the definitions and register them.")
@click.option("--force", is_flag=True,
              help="Apply even if another apply changed the registry while this one was prepared.")
@pass_repo
def apply(repo: Path, force: bool) -> None:
    """Import the repo's definitions, check each against its data, and register them.

    All or nothing: when any check fails, nothing is written. When another apply changes
    the registry meanwhile, this one stops with a conflict (plan again) unless --force.
    """
    with open_store(repo) as store:
        result = store.apply(force=force)
        print_changes(result.changes)
        if result.changes:
            click.echo(f"Applied {len(result.changes)} change(s); registry revision {result.revision}.")


@cli.group(short_help="Browse definitions, history and lineage.")
def registry() -> None:
    """Browse the registry: objects, their history and lineage."""


_KINDS = click.Choice(KINDS)


@registry.command("show")
@click.argument("kind", required=False, type=_KINDS, metavar="[KIND]")
@click.argument("name", required=False)
@pass_repo
def registry_show(repo: Path, kind: str | None, name: str | None) -> None:
    """List current objects (of one KIND), or show one object's spec as JSON (KIND NAME).

    KIND is entity, data_source, feature_view, on_demand_feature_view, feature_service,
    saved_dataset, model, model_version (NAME: model/3), model_alias (NAME: model@alias),
    rollout (NAME: the model) or monitor_run.
    """
    with open_store(repo) as store:
        if kind and name:
            obj = store.registry.get(store.project, kind, name)
            if obj is None:
                raise _unknown_object(store, kind, name)
            click.echo(json.dumps({"kind": obj.kind, "name": obj.name, "version": obj.version,
                                   "spec": obj.spec}, indent=2, default=str))
            return
        objects = store.registry.list(store.project, kind)
        if not objects:
            # Only definitions come from apply; models, rollouts and runs come from their own commands.
            hint = "; run `featurestore apply` to register the repo's definitions" \
                if kind in (None, *DEFINITION_KINDS) else ""
            click.echo(f"No {f'{kind} objects' if kind else 'objects'} in project {store.project!r}{hint}.")
        for obj in objects:
            click.echo(f"{obj.kind:16} {obj.name:32} v{obj.version}  {obj.created_at:%Y-%m-%d %H:%M:%S}")


def _unknown_object(store, kind: str, name: str):
    return unknown(kind.replace("_", " "), name, [o.name for o in store.registry.list(store.project, kind)])


@registry.command("history")
@click.argument("kind", type=_KINDS, metavar="KIND")
@click.argument("name")
@pass_repo
def registry_history(repo: Path, kind: str, name: str) -> None:
    """Every version of one object, oldest first (removed ones too).

    KIND is entity, data_source, feature_view, on_demand_feature_view, feature_service,
    saved_dataset, model, model_version (NAME: model/3), model_alias (NAME: model@alias),
    rollout (NAME: the model) or monitor_run.
    """
    with open_store(repo) as store:
        versions = store.registry.history(store.project, kind, name)
        if not versions:
            raise _unknown_object(store, kind, name)
        for obj in versions:
            state = "removed" if obj.removed else "current" if obj is versions[-1] else ""
            click.echo(f"v{obj.version}  {obj.created_at:%Y-%m-%d %H:%M:%S}  revision {obj.revision}  {state}".rstrip())


@registry.command("lineage", short_help="What an object reads from and what reads from it.")
@click.argument("kind", type=_KINDS, metavar="KIND")
@click.argument("name")
@click.option("--direction", type=click.Choice(["both", "upstream", "downstream"]), default="both",
              show_default=True, help="upstream: what it reads from; downstream: what reads from it.")
@pass_repo
def registry_lineage(repo: Path, kind: str, name: str, direction: str) -> None:
    """What an object reads from (upstream) and what reads from it (downstream), transitively.

    KIND is entity, data_source, feature_view, on_demand_feature_view, feature_service,
    saved_dataset, model, model_version (NAME: model/3), model_alias (NAME: model@alias),
    rollout (NAME: the model) or monitor_run.
    """
    with open_store(repo) as store:
        if store.registry.get(store.project, kind, name) is None:
            raise _unknown_object(store, kind, name)
        edges = store.registry.lineage(store.project, kind, name, direction)
        if not edges:
            click.echo(f"No lineage: nothing links to {kind} {name!r}.")
        for edge in edges:
            click.echo(f"{edge.from_kind}:{edge.from_name} -> {edge.to_kind}:{edge.to_name}")


@cli.group()
def datasets() -> None:
    """Saved training sets."""


@datasets.command("list")
@pass_repo
def datasets_list(repo: Path) -> None:
    """Saved training sets with their row counts and feature references."""
    with open_store(repo) as store:
        saved = store.list_saved_datasets()
        if not saved:
            click.echo("No saved training sets; `store.get_historical_features(...).save(name)` makes one.")
        for ds in saved:
            click.echo(f"{ds['name']:24} v{ds['version']}  {ds['rows']:>10,} rows  {ds['path']}")
            click.echo(f"{'':24} features: {', '.join(ds['features'])}")


@datasets.command("delete")
@click.argument("name")
@pass_repo
def datasets_delete(repo: Path, name: str) -> None:
    """Remove saved training set NAME (refused while a model version was trained on it)."""
    with open_store(repo) as store:
        store.delete_saved_dataset(name)
        click.echo(f"Deleted saved dataset {name!r} (its versions stay in `featurestore registry history`).")


@cli.command(short_help="Run the whole loop on a demo repo.")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
def quickstart(directory: Path | None) -> None:
    """Create a demo repo, apply it, print a training set and an online lookup, then train,
    register and score its model.

    The repo goes into DIRECTORY (new or empty), or a new temporary folder.
    """
    import tempfile

    import polars as pl

    from featurestore.scaffold import init_repo
    from featurestore.store import FeatureStore

    directory = directory or Path(tempfile.mkdtemp(prefix="featurestore-quickstart-")) / "driver_repo"
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    path = init_repo(directory, now=now, command="featurestore quickstart")
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
        version, _ = _example_training(path).train(store)
        champion = store.models.load("driver_model@champion")
        scores = champion.predict(store.get_online_features("driver_activity_v1", [{"driver_id": 1001}]).to_arrow())
        click.secho(f"5. Trained the repo's model (train.py) on a saved training set and registered it as "
                    f"{version.uri}, alias champion (train accuracy {version.metrics['train_accuracy']:.2f}); "
                    f"the champion scores driver 1001 online at {scores[0]:.3f}", bold=True)
    python, featurestore = _command("python"), _command("featurestore")
    click.echo(f"\nNext: cd {path} && {featurestore} models show driver_model  (its lineage: "
               f"`{featurestore} models lineage driver_model`)\n"
               f"      {python} train.py registers the next version; `{featurestore} -r {path} serve` serves it\n"
               f"Your own repo: {featurestore} init my_repo")


def _example_training(repo: Path):
    """The example repo's own train.py as a module (its model class imports from the repo)."""
    import importlib.util
    import sys

    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    spec = importlib.util.spec_from_file_location("featurestore_example_train", repo / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _command(name: str) -> str:
    """``name`` when the shell finds this installation's copy, else its full path (an
    inactive virtualenv: the README's quickstart runs `.venv/bin/featurestore`)."""
    import shutil
    import sys

    here = Path(sys.executable).parent / name
    found = shutil.which(name)
    return name if found and Path(found).absolute() == here.absolute() else str(here)
