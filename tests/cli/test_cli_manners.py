"""CLI manners: -h is help everywhere, --repo/-r also after the command, teardown asks
first, and commands that find nothing to do say why."""

import os
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import data_commands, job_commands, model_commands, repo_commands, serve_command  # noqa: F401
from featurestore.cli.main import cli
from featurestore.scaffold import init_repo

VIEW = "driver_hourly_stats"


@pytest.fixture(autouse=True)
def _no_featurestore_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("FEATURESTORE_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """The example repo, applied and materialized up to now."""
    repo = init_repo(tmp_path_factory.mktemp("manners") / "my_repo")
    with FeatureStore(repo_path=repo) as store:
        store.apply()
        store.materialize_incremental("now")
    return repo


def invoke(*args, input=None):
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def conv_rate(repo):
    with FeatureStore(repo_path=repo) as store:
        return store.get_online_features([f"{VIEW}:conv_rate"], [{"driver_id": 1001}]).to_dict()["conv_rate"][0]


@pytest.mark.parametrize("args", [["-h"], ["serve", "-h"], ["models", "list", "-h"], ["teardown", "-h"]])
def test_dash_h_is_help_everywhere(args):
    result = invoke(*args)
    assert result.exit_code == 0 and result.output.startswith("Usage: "), result.output
    assert "-h, --help" in result.output


def test_serve_keeps_host_as_a_long_option():
    out = invoke("serve", "--help").output
    assert "--host TEXT" in out and "-h, --host" not in out


@pytest.mark.parametrize("args", [["plan", "-r", "{repo}"], ["registry", "show", "--repo", "{repo}"],
                                  ["plan", "--repo={repo}"], ["-r", "{repo}", "plan"]])
def test_the_repo_option_goes_before_or_after_the_command(repo, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)  # no repo here: only the option can find it
    result = invoke(*(a.format(repo=repo) for a in args))
    assert result.exit_code == 0, result.output
    assert "driver_hourly_stats" in result.output or "No changes" in result.output


def test_quickstart_into_an_existing_repo_names_quickstart_and_the_repo_already_there(repo):
    result = CliRunner().invoke(cli, ["quickstart", str(repo)])
    assert result.exit_code == 1
    assert f"{repo} is not empty; pass a new folder to `featurestore quickstart`; " \
           f"`featurestore -r {repo} apply` works on the repo already there" in result.output


def test_teardown_asks_first_then_clears_and_materialize_incremental_refills(repo):
    assert conv_rate(repo) is not None
    refused = invoke("-r", repo, "teardown", VIEW, input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert f"Delete the online values and watermarks of {VIEW} in sqlite:{repo}/data/online.db?" in refused.output
    assert conv_rate(repo) is not None
    done = invoke("teardown", VIEW, "--yes", "-r", repo)
    assert done.exit_code == 0 and f"Cleared {VIEW} in sqlite:{repo}/data/online.db" in done.output
    assert conv_rate(repo) is None
    refill = invoke("-r", repo, "materialize-incremental", "now", "-v", VIEW)
    assert f"{VIEW}: 5 rows" in refill.output and conv_rate(repo) is not None


def test_teardown_of_an_unknown_view_lists_the_known_ones(repo):
    result = CliRunner().invoke(cli, ["-r", str(repo), "teardown", "-y", "driver_stats"])
    assert result.exit_code == 1 and "driver_stats" in result.output and VIEW in result.output


def test_materialize_of_a_range_without_data_says_where_the_data_is(repo):
    result = invoke("-r", repo, "materialize", "2020-01-01", "2020-02-01", "-v", VIEW)
    assert result.exit_code == 0
    assert f"{VIEW}: 0 rows from 2020-01-01T00:00:00+00:00" in result.output
    assert "; its source has events from " in result.output and "pick a window inside them" in result.output


def test_materialize_incremental_before_the_watermark_says_so(repo):
    result = CliRunner().invoke(cli, ["-r", str(repo), "materialize-incremental", "2020-01-01", "-v", VIEW])
    assert result.exit_code == 1
    assert f"feature view '{VIEW}' is already materialized up to {datetime.now(timezone.utc).year}" in result.output
    assert "after the end 2020-01-01T00:00:00+00:00" in result.output
