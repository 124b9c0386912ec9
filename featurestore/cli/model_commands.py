"""``featurestore models ...``: the model registry from the terminal.

Read commands print a table for people and the same records as JSON with ``--json``.
A model is named by a URI everywhere: ``name/3``, ``name@alias`` or ``name`` (its
``champion``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from featurestore.cli.group import cli, open_store, pass_repo

__all__ = ["models", "table"]

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


def table(rows: list[list[str]], header: list[str]) -> None:
    """Print ``rows`` under ``header`` in aligned columns."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def _pairs(values: tuple[str, ...], what: str, parse=str) -> dict:
    from featurestore.errors import InputError

    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--{what} {item!r} must look like key=value")
        try:
            out[key] = parse(value)
        except ValueError:
            raise InputError(f"--{what} {item!r}: {value!r} is not a number") from None
    return out


def _param(value: str):
    """A JSON value when the text is one (3, 0.5, true, [1,2]), else the text itself."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@cli.group(short_help="Register, alias, inspect and archive models.")
def models() -> None:
    """The model registry: versions, aliases, lineage (docs/models.md).

    URI is name/3 (a version), name@alias, or name (its `champion` alias).
    """


@models.command("list")
@_JSON
@pass_repo
def models_list(repo: Path, as_json: bool) -> None:
    """Registered models with their latest version and aliases."""
    with open_store(repo) as store:
        found = store.models.list()
        if as_json:
            return _echo_json([m.to_dict() for m in found])
        if not found:
            click.echo("No models yet; `featurestore models register NAME PATH` or store.models.register(...).")
            return
        table([[m.name, str(m.latest_version or "-"), _aliases(m.aliases), m.description] for m in found],
              ["MODEL", "LATEST", "ALIASES", "DESCRIPTION"])


def _aliases(aliases: dict[str, int]) -> str:
    return ", ".join(f"{a}->{v}" for a, v in aliases.items()) or "-"


@models.command("versions")
@click.argument("name")
@_JSON
@pass_repo
def models_versions(repo: Path, name: str, as_json: bool) -> None:
    """Every version of model NAME with its status and aliases."""
    with open_store(repo) as store:
        found = store.models.versions(name)
        if as_json:
            return _echo_json([v.to_dict() for v in found])
        table([[v.uri, v.status, ", ".join(v.aliases) or "-", v.flavor, _dataset(v),
                f"{v.created_at:%Y-%m-%d %H:%M:%S}"] for v in found],
              ["VERSION", "STATUS", "ALIASES", "FLAVOR", "TRAINING SET", "CREATED"])


def _dataset(version) -> str:
    ds = version.training_dataset
    return f"{ds['name']}/{ds['version']}" if ds else "-"


@models.command("show")
@click.argument("uri")
@_JSON
@pass_repo
def models_show(repo: Path, uri: str, as_json: bool) -> None:
    """One version: what made it, its signature and aliases."""
    with open_store(repo) as store:
        v = store.models.get(uri)
        if as_json:
            return _echo_json(v.to_dict())
        service = v.feature_service
        rows = [
            ["version", v.uri], ["status", v.status], ["aliases", ", ".join(v.aliases) or "-"],
            ["flavor", v.flavor], ["artifact", v.artifact],
            ["features", f"{service['name']} (v{service['version']})" if service else ", ".join(v.features)],
            ["training set", _dataset(v)],
            ["inputs", ", ".join(f"{c.name}:{c.dtype}" + ("" if c.default is None else f"={c.default}")
                                 for c in v.signature.inputs) if v.signature else "-"],
            ["on missing", v.on_missing],
            ["outputs", ", ".join(f"{c.name}:{c.dtype}" for c in v.signature.outputs) if v.signature else "-"],
            ["metrics", _kv(v.metrics)], ["params", _kv(v.params)], ["tags", _kv(v.tags)],
            ["code", f"{v.code['commit'][:12]}{' (dirty)' if v.code['dirty'] else ''}" if v.code else "-"],
            ["created", f"{v.created_at:%Y-%m-%d %H:%M:%S} UTC"], ["description", v.description or "-"],
        ]
        table(rows, ["FIELD", "VALUE"])


def _kv(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items()) or "-"


@models.command("register", short_help="Register a model file, MLflow directory or python class.")
@click.argument("name")
@click.argument("path")
@click.option("--flavor", help="python, sklearn, onnx, xgboost or lightgbm (default: from the file).")
@click.option("--features", metavar="SERVICE", help="The feature service the model reads.")
@click.option("--training-dataset", metavar="DS", help="A saved dataset: NAME or NAME/VERSION.")
@click.option("--description", help="What this version is.")
@click.option("--tag", multiple=True, metavar="K=V", help="A tag (repeatable).")
@click.option("--metric", multiple=True, metavar="K=V", help="A metric, a number (repeatable).")
@click.option("--param", multiple=True, metavar="K=V", help="A training parameter (repeatable).")
@click.option("--request-field", multiple=True, metavar="NAME", help="A request-time input column (repeatable).")
@click.option("--output", metavar="COLUMN", help="The label column of the training set.")
@click.option("--trusted", is_flag=True, help="Allow a pickle/joblib file (it can run code: only yours).")
@click.option("--on-missing", type=click.Choice(["error", "null", "default"]), default="null", show_default=True,
              help="What predictions do when an input feature is missing (docs/predict.md).")
@click.option("--default", "defaults", multiple=True, metavar="NAME=VALUE",
              help="An input's value when missing, under --on-missing default (repeatable).")
@pass_repo
def models_register(repo: Path, name: str, path: str, flavor, features, training_dataset, description, tag,
                    metric, param, request_field, output, trusted, on_missing, defaults) -> None:
    """Register PATH as the next version of model NAME.

    PATH is a native model file (.skops, .onnx, .ubj, .lgb, ...), an MLflow model directory,
    or, with --flavor python, a class's import path (module:Class) in the repo.
    """
    with open_store(repo) as store:
        model = Path(path) if Path(path).exists() else path
        version = store.models.register(
            name, model, flavor=flavor, features=features, training_dataset=training_dataset,
            description=description, tags=_pairs(tag, "tag"), metrics=_pairs(metric, "metric", float),
            params=_pairs(param, "param", _param), request_fields=list(request_field) or None, output=output,
            trusted=trusted, on_missing=on_missing, defaults=_pairs(defaults, "default", _param),
        )
        click.echo(f"Registered {version.uri} ({version.flavor}, artifact {version.artifact[:19]}...).")


@models.command("alias")
@click.argument("name")
@click.argument("alias")
@click.argument("version", type=click.IntRange(min=1))
@click.option("--reason", help="Why (kept in the alias's history).")
@pass_repo
def models_alias(repo: Path, name: str, alias: str, version: int, reason) -> None:
    """Point NAME@ALIAS at VERSION."""
    with open_store(repo) as store:
        store.models.set_alias(name, alias, version, reason=reason)
        click.echo(f"{name}@{alias} -> {name}/{version}")


@models.command("unalias")
@click.argument("name")
@click.argument("alias")
@click.option("--reason", help="Why (kept in the alias's history).")
@pass_repo
def models_unalias(repo: Path, name: str, alias: str, reason) -> None:
    """Delete NAME@ALIAS (its history stays)."""
    with open_store(repo) as store:
        move = store.models.delete_alias(name, alias, reason=reason)
        click.echo(f"Deleted {name}@{alias} (it pointed at {name}/{move.previous}).")


@models.command("history")
@click.argument("name")
@click.argument("alias")
@_JSON
@pass_repo
def models_history(repo: Path, name: str, alias: str, as_json: bool) -> None:
    """Every move of NAME@ALIAS: when, from, to and why."""
    with open_store(repo) as store:
        moves = store.models.alias_history(name, alias)
        if as_json:
            return _echo_json([m.to_dict() for m in moves])
        table([[f"{m.at:%Y-%m-%d %H:%M:%S}", str(m.previous or "-"), str(m.version or "deleted"), m.reason or ""]
               for m in moves], ["WHEN", "FROM", "TO", "REASON"])


@models.command("archive")
@click.argument("uri")
@pass_repo
def models_archive(repo: Path, uri: str) -> None:
    """Archive a version (refused while an alias or a rollout uses it)."""
    with open_store(repo) as store:
        version = store.models.archive(uri)
        click.echo(f"Archived {version.uri}.")


@models.command("lineage")
@click.argument("uri")
@click.option("--direction", type=click.Choice(["both", "upstream", "downstream"]), default="both",
              show_default=True, help="upstream: what made it; downstream: the aliases on it.")
@_JSON
@pass_repo
def models_lineage(repo: Path, uri: str, direction: str, as_json: bool) -> None:
    """What a version was made from (sources, views, service, training set) and its aliases."""
    with open_store(repo) as store:
        version = store.models.get(uri)
        edges = store.registry.lineage(store.project, "model_version", version.uri, direction)
        if as_json:
            return _echo_json([{"from": f"{e.from_kind}:{e.from_name}", "to": f"{e.to_kind}:{e.to_name}"}
                               for e in edges])
        for edge in edges:
            click.echo(f"{edge.from_kind}:{edge.from_name} -> {edge.to_kind}:{edge.to_name}")
