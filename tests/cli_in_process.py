"""The ``featurestore`` command run in the test's own process: the group ``main()`` runs,
with every command module loaded as ``main()`` loads them, under click's CliRunner (its
arguments, stdin and environment; stdout and stderr captured apart) in a given folder.

A process per command spends a second or two importing before it does anything; tests
that check what a command prints and its exit code run it here instead. The installed
script itself (and what only a real process shows: output at interpreter exit, ``serve``)
keeps true subprocess tests in tests/cli. As a subprocess would, a run here sees no
``FEATURESTORE_*`` variable of the test session, and an exception the command lets escape
fails the test with its traceback rather than being turned into an exit code.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pkgutil
import subprocess

from click.testing import CliRunner

from featurestore import cli as commands
from featurestore.cli.main import cli

__all__ = ["featurestore"]


def _load_every_command() -> None:
    for module in pkgutil.iter_modules(commands.__path__):
        importlib.import_module(f"featurestore.cli.{module.name}")


def featurestore(*args, cwd=None, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """``featurestore *args`` in ``cwd`` (else the current folder): a CompletedProcess with
    the exit code and the text written to stdout and stderr; ``check`` raises on an exit
    code other than 0, with both."""
    _load_every_command()
    args = [str(a) for a in args]
    unset = {name: None for name in os.environ if name.startswith("FEATURESTORE_")}
    with contextlib.chdir(cwd or os.getcwd()):
        result = CliRunner().invoke(cli, args, input=input, env=unset, prog_name="featurestore",
                                    catch_exceptions=False)
    done = subprocess.CompletedProcess(["featurestore", *args], result.exit_code, result.stdout, result.stderr)
    if check and done.returncode != 0:
        raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done
