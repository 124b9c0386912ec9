"""The command line as a user runs it, on real files: the installed script in a process
of its own for the quickstart and the example training script; the other commands run
in this process (tests/cli_in_process.py), as that script's ``main`` runs them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

from ..cli_in_process import featurestore

BIN = Path(sys.executable).parent / "featurestore"


def run(*args, cwd=None, check=True):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    proc = subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_quickstart_runs_end_to_end(tmp_path):
    out = run("quickstart", str(tmp_path / "demo")).stdout
    assert "Applied its definitions" in out and "+ feature_view driver_hourly_stats" in out
    assert "Materialized 10 rows into the online store (sqlite)" in out
    assert "9999" in out and "null" in out
    assert "registered it as driver_model/1, alias champion" in out


def test_init_apply_materialize_and_the_example_training_script(tmp_path):
    repo = tmp_path / "my_repo"
    assert "Created a feature repo" in featurestore("init", repo).stdout
    plan = featurestore("plan", cwd=repo).stdout
    assert "+ feature_view driver_hourly_stats" in plan
    assert "Applied 6 change(s)" in featurestore("apply", cwd=repo).stdout
    assert "No changes" in featurestore("-r", repo, "plan", cwd=tmp_path).stdout
    out = featurestore("materialize-incremental", "now", cwd=repo).stdout
    assert "driver_hourly_stats: 5 rows" in out and "rows/s" in out
    script = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr
    assert "Training set:" in script.stdout and "Online features:" in script.stdout
    assert "trip_completed" in script.stdout
    assert "Registered driver_model/1 (champion)" in script.stdout and "P(trip completed):" in script.stdout
    shown = featurestore("registry", "show", cwd=repo).stdout
    assert "feature_view" in shown and "driver_hourly_stats" in shown
    assert "v1" in featurestore("registry", "history", "feature_view", "driver_hourly_stats", cwd=repo).stdout
    lineage = featurestore("registry", "lineage", "feature_view", "driver_hourly_stats", cwd=repo).stdout
    assert "data_source:driver_hourly_stats_source -> feature_view:driver_hourly_stats" in lineage


@pytest.mark.parametrize("args, message", [
    (["apply"], "no featurestore.yaml"),
    (["materialize", "yesterday", "now"], "not an ISO 8601 time"),
    (["materialize", "0001-01-01T00:00:00+14:00", "now"], "outside the years 1..9999 in UTC"),
    (["materialize", "2024-01-01", "9999-12-31T00:00:00"], "more than 1d after now"),
    (["materialize-incremental", "9999-12-31T00:00:00"], "more than 1d after now"),
    (["backfill", "--view", "driver_hourly_stats", "--start", "2024-01-01", "--end", "9999-12-31"],
     "--end is 9999-12-31T00:00:00Z: more than 1d after now"),
])
def test_user_errors_are_one_line_without_traceback(tmp_path, args, message):
    if args[0] != "apply":
        cwd = init_repo(tmp_path / "r")
        if args[0] == "backfill":
            with FeatureStore(repo_path=cwd) as store:
                store.apply()
    else:
        cwd = tmp_path
    proc = featurestore(*args, cwd=cwd, check=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


def test_init_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file.txt").write_text("x")
    proc = featurestore("init", tmp_path / "taken", check=False)
    assert proc.returncode == 1 and "is not empty" in proc.stderr


def test_datasets_list_shows_saved_training_sets(tmp_path):
    from datetime import datetime, timezone

    import polars as pl

    from featurestore import FeatureStore

    repo = tmp_path / "r"
    featurestore("init", repo)
    with FeatureStore(repo_path=repo) as store:
        store.apply()
        entity = pl.DataFrame({"driver_id": [1001, 1002], "event_timestamp": [datetime.now(timezone.utc)] * 2})
        store.get_historical_features(entity, ["driver_hourly_stats:conv_rate"]).save("ranking_train")
    out = featurestore("datasets", "list", cwd=repo).stdout
    assert "ranking_train" in out and "2 rows" in out and "driver_hourly_stats:conv_rate" in out
