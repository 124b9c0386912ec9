"""An unreadable registry file is one ``error: ...`` line from every command that reads
it (exit code 1), never a traceback."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore.cli import job_commands, repo_commands  # noqa: F401 - registers the commands
from featurestore.cli.main import cli

BIN = Path(sys.executable).parent / "featurestore"


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """The example repo, applied once for the module; each test damages a copy."""
    path = tmp_path_factory.mktemp("applied") / "my_repo"
    with pytest.MonkeyPatch.context() as env:
        for name in list(os.environ):
            if name.startswith("FEATURESTORE_"):
                env.delenv(name)
        assert CliRunner().invoke(cli, ["init", str(path)]).exit_code == 0
        assert CliRunner().invoke(cli, ["-r", str(path), "apply"]).exit_code == 0
    return path


@pytest.fixture
def repo(applied, tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("FEATURESTORE_"):
            monkeypatch.delenv(name)
    return shutil.copytree(applied, tmp_path / "my_repo")


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: registry "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("command", [
    ["registry", "show"],
    ["registry", "show", "feature_view", "driver_hourly_stats"],
    ["registry", "history", "feature_view", "driver_hourly_stats"],
    ["registry", "lineage", "feature_view", "driver_hourly_stats"],
    ["datasets", "list"],
    ["jobs"],
    ["scheduler", "--once"],
    ["materialize-incremental", "now"],
    ["plan"],
    ["apply"],
])
def test_a_damaged_registry_is_one_error_line(repo, damage_registry, command):
    damage_registry(repo / "data" / "registry.db")
    result = CliRunner().invoke(cli, ["-r", str(repo), *command], catch_exceptions=False)
    assert_one_line_error(result, "malformed", "restore it from a backup")


def test_a_registry_file_of_garbage_bytes_is_one_error_line(repo):
    path = repo / "data" / "registry.db"
    for leftover in (path.with_name("registry.db-wal"), path.with_name("registry.db-shm")):
        leftover.unlink(missing_ok=True)
    path.write_bytes(os.urandom(8192))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    proc = subprocess.run([str(BIN), "-r", str(repo), "registry", "show"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: registry "), proc.stderr
    assert "not a database" in lines[0]
