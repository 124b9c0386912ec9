"""`featurestore backfill`, `featurestore jobs` and `featurestore scheduler --once`."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

import featurestore.cli.data_commands  # noqa: F401 - registers commands
import featurestore.cli.job_commands  # noqa: F401
from featurestore.cli.main import cli

from featurestore.config import load_config

from .conftest import NOW, VIEW, days, faulty_engine, make_repo, open_store


@pytest.fixture
def run(monkeypatch):
    for key in [k for k in os.environ if k.startswith("FEATURESTORE_")]:
        monkeypatch.delenv(key)

    def run(repo, *args, backends=None):
        """Run the CLI; ``backends`` (FeatureStore keywords) are injected into its stores."""
        return CliRunner().invoke(cli, ["--repo", str(repo), *args], obj=backends, catch_exceptions=False)

    return run


@pytest.fixture
def applied_repo(tmp_path):
    repo = make_repo(tmp_path / "repo", scheduler_yaml="scheduler:\n  views:\n    driver_hourly_stats: 1h\n")
    with open_store(repo) as store:
        store.apply()
    return repo


def test_backfill_then_rerun_then_jobs(run, applied_repo):
    args = ["backfill", "--view", VIEW, "--start", (NOW - days(3)).isoformat(), "--end", NOW.isoformat(),
            "--chunk", "1d"]
    first = run(applied_repo, *args)
    assert first.exit_code == 0, first.output
    assert f"{VIEW}: 3 chunk(s): 3 ran, 0 already done, 0 not done; 15 rows written" in first.output
    again = run(applied_repo, *args, "--parallel", "2")
    assert "0 ran, 3 already done" in again.output

    table = run(applied_repo, "jobs", "--view", VIEW)
    assert table.exit_code == 0
    lines = table.output.splitlines()
    assert lines[0].split()[:4] == ["ID", "VIEW", "TRIGGER", "WINDOW"]
    assert len(lines) == 4 and all("backfill" in line and "succeeded" in line for line in lines[1:])
    assert "2024-04-30 12:00 .. 2024-05-01 12:00" in lines[1]  # newest first

    rows = [json.loads(line) for line in run(applied_repo, "jobs", "--json", "-n", "2").output.splitlines()]
    assert [r["view"] for r in rows] == [VIEW, VIEW] and rows[0]["rows"] == 5 and rows[0]["batch"]
    assert run(applied_repo, "jobs", "--failed").output.strip() == "No jobs."


def test_a_backfill_with_a_failed_chunk_reports_it_and_exits_1(run, applied_repo):
    engine = faulty_engine(load_config(applied_repo, env={}))  # every store the command opens reads through it
    engine.fail[(NOW - days(1), NOW)] = 99
    result = run(applied_repo, "backfill", "-v", VIEW, "--start", (NOW - days(2)).isoformat(),
                 "--end", NOW.isoformat(), "--retries", "1", "--backoff", "0.01s", backends={"offline": engine})
    assert result.exit_code == 1
    assert "1 ran, 0 already done, 1 not done" in result.output
    assert "failed 2024-04-30T12:00:00+00:00 .. 2024-05-01T12:00:00+00:00 after 2 attempt(s)" in result.output
    assert "error: 1 chunk(s) of driver_hourly_stats did not finish" in result.output
    assert "Traceback" not in result.output
    failed = run(applied_repo, "jobs", "--failed")
    assert failed.output.count("failed") == 2 and "source unavailable" in failed.output


def test_user_errors_are_one_line(run, applied_repo):
    result = run(applied_repo, "backfill", "-v", "driver_hourly_stat", "--start", "2024-04-01", "--end", "now")
    assert result.exit_code == 1
    assert result.output.startswith("error: unknown feature view 'driver_hourly_stat'; did you mean")
    bad_chunk = run(applied_repo, "backfill", "-v", VIEW, "--start", "2024-04-01", "--end", "now", "--chunk", "x")
    assert bad_chunk.exit_code == 1 and "--chunk 'x' is not a duration" in bad_chunk.output
    assert run(applied_repo, "jobs", "-v", "nope").output.startswith("error: unknown feature view 'nope'")


def test_scheduler_once_runs_the_due_windows(run, applied_repo):
    result = run(applied_repo, "scheduler", "--once")
    assert result.exit_code == 0, result.output
    assert VIEW in result.output and "scheduled" in result.output and "succeeded" in result.output
    with open_store(applied_repo) as store:
        [record] = store.registry.jobs.list(store.project)
        assert record.trigger == "scheduled" and record.target == VIEW
