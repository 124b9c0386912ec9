"""``featurestore``: the command group and the one place user errors become one-line messages."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from featurestore.errors import FeatureStoreError

__all__ = ["cli", "main", "open_store", "pass_repo"]


class _Group(click.Group):
    """A user error prints ``error: ...`` and exits 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FeatureStoreError as exc:
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.option("--repo", "-r", "repo", default=".", envvar="FEATURESTORE_REPO", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="The feature repo (holds featurestore.yaml).")
@click.version_option(package_name="featurestore")
@click.pass_context
def cli(ctx: click.Context, repo: Path) -> None:
    """Define features in Python, train on point-in-time-correct data, serve them online."""
    ctx.obj = repo


pass_repo = click.make_pass_decorator(Path)


def open_store(repo: Path):
    from featurestore.store import FeatureStore

    return FeatureStore(repo_path=repo)


def main() -> None:
    from featurestore.cli import data_commands, job_commands, repo_commands, serve_command  # noqa: F401 - registers commands
    from featurestore.cli import stream_command  # noqa: F401 - registers `featurestore stream`

    cli(prog_name="featurestore")
