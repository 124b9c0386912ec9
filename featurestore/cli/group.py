"""The ``featurestore`` command group, what commands share (the repo, the store) and the
one place user errors become one-line messages. Commands register on ``cli`` from their
own modules; ``main.py`` loads them all."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import click

from featurestore.errors import FeatureStoreError

__all__ = ["check_views", "cli", "one_line", "open_store", "pass_repo", "unknown"]


class _Group(click.Group):
    """A user error prints ``error: ...`` and exits 1, never a traceback."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None:
            args = _repo_first(args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FeatureStoreError as exc:
            message = one_line(str(exc))
        # Exit outside the ``except`` block, with the traceback's frames (and the stores they
        # hold) released first: a DuckDB connection still alive at interpreter exit makes
        # its bindings print a page of "leaked instance" lines after the error.
        gc.collect()
        click.secho(f"error: {message}", fg="red", err=True)
        sys.exit(1)


def _repo_first(args: list[str]) -> list[str]:
    """``featurestore apply -r my_repo`` as ``featurestore -r my_repo apply``: the group's
    ``--repo``/``-r`` is taken anywhere before a ``--`` (no command has an option of its own
    by that name)."""
    moved, rest, i = [], [], 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg in ("-r", "--repo") and i + 1 < len(args):
            moved += args[i:i + 2]
            i += 2
            continue
        (moved if arg.startswith("--repo=") else rest).append(arg)
        i += 1
    return moved + rest


def one_line(message: str) -> str:
    """A message on one line: a multi-line one (a YAML parser's, say) joined with spaces."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]}, epilog="New here? `featurestore quickstart` runs the whole loop on a demo repo; "
              "`featurestore init my_repo` makes one of your own. `featurestore COMMAND --help` tells more.")
@click.option("--repo", "-r", "repo", default=".", envvar="FEATURESTORE_REPO", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The feature repo (the folder that holds featurestore.yaml); also FEATURESTORE_REPO.")
@click.version_option(package_name="featurestore")
@click.pass_context
def cli(ctx: click.Context, repo: Path) -> None:
    """Define features in Python, train on point-in-time-correct data, serve them online.

    Every command works on the repo in the current folder, or the one --repo/-r names
    (before or after the command: `featurestore -r my_repo apply`, `featurestore apply -r my_repo`).
    """
    if isinstance(ctx.obj, dict):  # backends to inject, from a caller of cli.main(obj=...) (tests)
        ctx.meta[_BACKENDS] = ctx.obj
    ctx.obj = repo


pass_repo = click.make_pass_decorator(Path)
_BACKENDS = "featurestore.backends"


def open_store(repo: Path):
    """The store a command works on; backends given as ``cli``'s ``obj`` are injected into it."""
    from featurestore.store import FeatureStore

    ctx = click.get_current_context(silent=True)
    return FeatureStore(repo_path=repo, **(ctx.meta.get(_BACKENDS, {}) if ctx is not None else {}))


def check_views(store, names) -> None:
    """Fail on the first name that is not a registered feature view, listing the known ones."""
    known = sorted(store.contents.feature_views)
    for name in names:
        if name not in store.contents.feature_views:
            raise unknown("feature view", name, known)


def unknown(kind: str, name: str, known: list[str]):
    """A NotFoundError that lists the known names when none is close (or says to apply)."""
    from featurestore.errors import NotFoundError

    hint = f"known: {', '.join(known[:20])}{', ...' if len(known) > 20 else ''}" if known else \
        "the registry has none; run `featurestore apply` first"
    return NotFoundError(kind, name, known, hint=hint)
