"""``featurestore models ...`` as a user runs it (in this process: tests/cli_in_process.py):
the example repo, trained by its train.py."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from featurestore.scaffold import init_repo

from ...cli_in_process import featurestore


def run(repo, *args, check=True):
    return featurestore("-r", repo, *args, check=check)


@pytest.fixture(scope="module")
def trained_repo(tmp_path_factory):
    repo = init_repo(tmp_path_factory.mktemp("cli") / "repo")
    run(repo, "apply")
    run(repo, "materialize-incremental", "now")
    script = subprocess.run([sys.executable, "train.py"], cwd=repo, capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr
    return repo


def test_list_show_and_json(trained_repo):
    listed = run(trained_repo, "models", "list").stdout
    assert "driver_model" in listed and "champion->1" in listed
    shown = run(trained_repo, "models", "show", "driver_model").stdout
    assert "driver_model/1" in shown and "driver_activity_v1 (v1)" in shown and "driver_training/1" in shown
    assert "conv_rate:Float32" in shown and "trip_completed:Int64" in shown
    data = json.loads(run(trained_repo, "models", "show", "driver_model@champion", "--json").stdout)
    assert data["uri"] == "driver_model/1" and data["aliases"] == ["champion"]
    assert json.loads(run(trained_repo, "models", "list", "--json").stdout)[0]["aliases"] == {"champion": 1}


def test_lineage_from_the_model_and_from_the_training_set(trained_repo):
    lineage = run(trained_repo, "models", "lineage", "driver_model/1").stdout
    assert "saved_dataset:driver_training -> model_version:driver_model/1" in lineage
    assert "feature_service:driver_activity_v1 -> model_version:driver_model/1" in lineage
    assert "data_source:driver_hourly_stats_source -> feature_view:driver_hourly_stats" in lineage
    assert "model_version:driver_model/1 -> model_alias:driver_model@champion" in lineage
    down = run(trained_repo, "registry", "lineage", "saved_dataset", "driver_training", "--direction",
               "downstream").stdout
    assert "model_version:driver_model/1 -> model_alias:driver_model@champion" in down


def test_register_alias_history_unalias_and_archive(trained_repo, tmp_path):
    import pyarrow.parquet as pq
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    saved = next(p for p in (trained_repo / "data").rglob("*.parquet") if "driver_training" in str(p))
    table = pq.read_table(saved)
    x = table.select(["conv_rate", "acc_rate", "avg_daily_trips"]).to_pandas().fillna(0).to_numpy()
    sio.dump(LogisticRegression().fit(x, table.column("trip_completed").to_numpy()), tmp_path / "lr.skops")
    out = run(trained_repo, "models", "register", "driver_model", str(tmp_path / "lr.skops"), "--features",
              "driver_activity_v1", "--training-dataset", "driver_training", "--output", "trip_completed",
              "--metric", "auc=0.8", "--param", "C=1.0", "--tag", "kind=sklearn").stdout
    assert "Registered driver_model/2 (sklearn" in out
    assert "driver_model@challenger -> driver_model/2" in run(trained_repo, "models", "alias", "driver_model",
                                                              "challenger", "2", "--reason", "try it").stdout
    versions = run(trained_repo, "models", "versions", "driver_model").stdout
    assert "driver_model/2" in versions and "challenger" in versions
    run(trained_repo, "models", "unalias", "driver_model", "challenger", "--reason", "done")
    history = json.loads(run(trained_repo, "models", "history", "driver_model", "challenger", "--json").stdout)
    assert [(m["previous"], m["version"], m["reason"]) for m in history] == [(None, 2, "try it"), (2, None, "done")]
    assert "Archived driver_model/2." in run(trained_repo, "models", "archive", "driver_model/2").stdout


@pytest.mark.parametrize("args, message", [
    (["models", "archive", "driver_model@champion"], "cannot archive driver_model/1: driver_model@champion"),
    (["datasets", "delete", "driver_training"], "cannot remove saved_dataset 'driver_training' (used by"),
    (["models", "show", "driver_modl"], "did you mean 'driver_model'"),
    (["models", "show", "driver_model/x"], "not a version number"),
    (["models", "alias", "driver_model", "champion", "99"], "it has versions 1 to"),
    (["models", "register", "m", "missing.onnx", "--features", "driver_activity_v1"], "no such file"),
    (["models", "register", "m", "model.bin", "--features", "driver_activity_v1"], "cannot tell the flavor"),
])
def test_user_errors_are_one_line(trained_repo, args, message):
    proc = run(trained_repo, *args, check=False)
    assert proc.returncode == 1, proc.stdout
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0
