"""The command line as a new user meets it: help that reads whole, and one clear line for
every common mistake (no traceback, no noise after it)."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from featurestore.cli import data_commands, job_commands, repo_commands, serve_command, stream_command  # noqa: F401
from featurestore.cli import model_commands, predict_command  # noqa: F401 - every command, as main() loads them
from featurestore.cli.main import cli, one_line
from featurestore.errors import InputError
from featurestore.scaffold import init_repo

from ..cli_in_process import featurestore

BIN = Path(sys.executable).parent / "featurestore"


@pytest.fixture(autouse=True)
def _no_featurestore_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("FEATURESTORE_"):
            monkeypatch.delenv(name)


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def run(*args, cwd=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    return subprocess.run([str(BIN), *map(str, args)], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120)


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "my_repo"
    assert CliRunner().invoke(cli, ["init", str(path)]).exit_code == 0
    assert CliRunner().invoke(cli, ["-r", str(path), "apply"]).exit_code == 0
    return path


def test_top_level_help_lists_every_command_whole_and_says_where_to_start():
    out = featurestore("--help").stdout  # every command loaded, as main() loads them
    commands = out.split("Commands:")[1]
    names = ("apply", "backfill", "datasets", "flight", "init", "jobs", "materialize", "materialize-incremental",
             "models", "monitor", "plan", "predict", "quickstart", "registry", "rollout", "scheduler", "serve",
             "stream", "teardown")
    for name in names:
        assert re.search(rf"^  {re.escape(name)} ", commands, re.M), name
    listing = commands.split("New here?")[0]
    assert "..." not in listing
    # one line per command: no wrapped descriptions
    assert len([line for line in listing.splitlines() if line.strip()]) == len(names)
    assert "featurestore quickstart" in out and "featurestore init my_repo" in out


def test_unknown_view_names_list_the_known_ones(repo):
    for args in (["materialize-incremental", "now", "-v", "nope"],
                 ["materialize", "2024-01-01", "now", "-v", "nope"],
                 ["backfill", "--view", "nope", "--start", "2024-01-01", "--end", "2024-01-02"],
                 ["jobs", "--view", "nope"]):
        assert_one_line_error(invoke("-r", repo, *args), "unknown feature view 'nope'",
                              "known: driver_hourly_stats, driver_hourly_stats_fresh")
    assert_one_line_error(invoke("-r", repo, "materialize-incremental", "now", "-v", "driver_hourly_stat"),
                          "did you mean 'driver_hourly_stats'")


def test_bad_times_name_the_argument(repo):
    assert_one_line_error(invoke("-r", repo, "materialize", "yesterday", "now"),
                          "START 'yesterday' is not an ISO 8601 time", "or `now`")
    assert_one_line_error(invoke("-r", repo, "materialize-incremental", "2024-13-01"), "END '2024-13-01'")
    assert_one_line_error(invoke("-r", repo, "backfill", "--view", "driver_hourly_stats", "--start", "2024-01-01",
                                 "--end", "soon"), "--end 'soon'")


def test_backfill_range_backwards_fails_before_any_progress_bar(repo):
    result = invoke("-r", repo, "backfill", "--view", "driver_hourly_stats", "--start", "2024-02-01",
                    "--end", "2024-01-01")
    assert_one_line_error(result, "--start 2024-02-01 00:00:00 must be before --end 2024-01-01 00:00:00")


@pytest.mark.parametrize("args", [
    ["backfill", "--view", "driver_hourly_stats", "--start", "2024-01-01", "--end", "2024-01-02", "--parallel", "0"],
    ["backfill", "--view", "driver_hourly_stats", "--start", "2024-01-01", "--end", "2024-01-02", "--retries", "-1"],
    ["jobs", "-n", "0"],
    ["scheduler", "--once", "--workers", "0"],
    ["registry", "show", "widget"],
])
def test_out_of_range_options_are_usage_errors(repo, args):
    result = invoke("-r", repo, *args)
    assert result.exit_code == 2 and "Invalid value" in result.stderr


def test_registry_commands_refuse_unknown_names_instead_of_printing_nothing(repo):
    for sub in ("show", "history", "lineage"):
        assert_one_line_error(invoke("-r", repo, "registry", sub, "feature_view", "nope"),
                              "unknown feature view 'nope'")
    assert "Invalid value for 'KIND'" in invoke("-r", repo, "registry", "history", "view", "x").stderr


def test_every_registry_kind_can_be_listed_and_only_definitions_point_at_apply(tmp_path):
    from featurestore.serialization import DEFINITION_KINDS

    path = tmp_path / "r"
    invoke("init", path)  # not applied: every kind is empty
    for kind in repo_commands.KINDS:
        out = invoke("-r", path, "registry", "show", kind).output
        assert out.startswith(f"No {kind} objects in project 'r'"), out
        assert ("featurestore apply" in out) == (kind in DEFINITION_KINDS), out
    assert set(DEFINITION_KINDS) < set(repo_commands.KINDS)
    assert {"rollout", "monitor_run", "on_demand_feature_view"} < set(repo_commands.KINDS)


def test_registry_history_marks_only_the_newest_version_current(tmp_path):
    path = tmp_path / "r"
    invoke("init", path)
    invoke("-r", path, "apply")
    module = path / "features" / "driver_stats.py"
    module.write_text(module.read_text().replace('tags={"team": "driver_performance"}', 'tags={"team": "ranking"}'))
    assert "Applied 1 change(s)" in invoke("-r", path, "apply").output
    lines = invoke("-r", path, "registry", "history", "feature_view", "driver_hourly_stats").output.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("v1") and not lines[0].endswith("current")
    assert lines[1].startswith("v2") and lines[1].endswith("current")


def test_plan_says_what_to_run_next(tmp_path):
    path = tmp_path / "r"
    invoke("init", path)
    out = invoke("-r", path, "plan").output
    assert "+ feature_view driver_hourly_stats" in out and "6 change(s); run `featurestore apply`" in out


def test_init_checks_the_project_name_and_keeps_a_valid_one_as_typed(tmp_path):
    assert_one_line_error(invoke("init", tmp_path / "a", "--project", "bad name!"), "--project 'bad name!'",
                          "use letters, digits, _ and -")
    assert not (tmp_path / "a").exists()
    out = invoke("init", tmp_path / "b", "--project", "my-proj").output
    assert "(project 'my-proj')" in out and "featurestore plan" in out
    assert "project: my-proj" in (tmp_path / "b" / "featurestore.yaml").read_text()
    assert "Applied" in invoke("-r", tmp_path / "b", "apply").output  # featurestore.yaml takes the name
    # Without --project the folder's name is used, made valid where it must be.
    assert "(project 'my-repo_2')" in invoke("init", tmp_path / "my-repo 2").output
    assert "(project 'feature_repo')" in invoke("init", tmp_path / "9lives").output
    with pytest.raises(InputError, match="project 'a b' is not a valid project name"):  # not replaced silently
        init_repo(tmp_path / "c", project="a b")


def test_scheduler_once_without_schedules_explains_how_to_add_one(repo):
    result = invoke("-r", repo, "scheduler", "--once")
    assert result.exit_code == 0
    assert "has a schedule" in result.stderr and "scheduler.views" in result.stderr
    assert "No jobs." not in result.output


def test_empty_listings_say_what_would_fill_them(repo, tmp_path):
    assert "No saved training sets" in invoke("-r", repo, "datasets", "list").output
    path = tmp_path / "fresh"
    invoke("init", path)
    assert "run `featurestore apply`" in invoke("-r", path, "registry", "show").output
    assert_one_line_error(invoke("-r", path, "materialize-incremental", "now", "-v", "x"),
                          "the registry has none; run `featurestore apply` first")


def test_multi_line_errors_print_on_one_line(tmp_path):
    path = tmp_path / "r"
    invoke("init", path)
    with open(path / "featurestore.yaml", "a") as f:
        f.write("online_store: [\n")
    assert_one_line_error(invoke("-r", path, "plan"), "is not valid YAML")
    assert one_line("a\n  b\n\nc ") == "a b c"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("lock", ["auto", "registry"])
def test_redis_not_running_is_one_line_with_nothing_after_it(tmp_path, lock):
    path = tmp_path / "r"
    invoke("init", path)
    config = path / "featurestore.yaml"
    port = _closed_port()
    config.write_text(config.read_text().replace("  type: sqlite", f"  type: redis\n  connection_string: "
                                                 f"redis://127.0.0.1:{port}/0")
                      + f"scheduler:\n  lock: {lock}\n")
    invoke("-r", path, "apply")
    proc = run("-r", path, "materialize", "2020-01-01", "now")
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    # No traceback, and none of the "leaked instance" lines DuckDB's bindings print when a
    # connection is still alive at exit.
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ") and f"127.0.0.1:{port}" in lines[0]


def test_serve_on_a_taken_port_is_one_line(repo):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        proc = run("-r", repo, "serve", "--port", port)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: port {port} on 127.0.0.1 is in use; stop what holds it or pass another --port"


def test_serve_on_an_address_not_of_this_machine_is_one_line(repo):
    proc = run("-r", repo, "serve", "--host", "192.0.2.1", "--port", _closed_port())
    assert proc.returncode == 1
    assert "--host 192.0.2.1 is not an address of this machine" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
