"""``featurestore monitor run / history / report`` and the scheduler's monitors, as a user
runs them over a repo whose serving log holds rows: ``monitor`` in this process
(tests/cli_in_process.py), ``scheduler --once`` as the console script in a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from monitoring.monitor_metrics import render_monitor_metrics

from ..cli_in_process import featurestore
from .conftest import FEATURES, NOW, served_rows, write_log

BIN = Path(sys.executable).parent / "featurestore"


def run(repo, *args, check=True):
    """``featurestore -r repo monitor *args`` in this process (tests/cli_in_process.py)."""
    return featurestore("-r", repo, "monitor", *args, check=check)


@pytest.fixture(scope="module")
def logged(monitored):
    store, table, model = monitored
    write_log(store, served_rows(table, model, 300, 21), NOW + timedelta(hours=1))
    write_log(store, served_rows(table, model, 300, 22, shift=2.0), NOW + timedelta(hours=3))
    return store


def test_monitor_run_json_is_one_object_with_drift_dataset_drift_and_skew(logged):
    start, end = NOW + timedelta(hours=3), NOW + timedelta(hours=4)
    out = run(logged.repo_path, "run", "driver_model", "--start", start.isoformat(), "--end", end.isoformat(),
              "--json").stdout
    result = json.loads(out)
    assert {"drift", "dataset_drift", "skew"} <= set(result) and result["dataset_drift"] is True
    assert [d["feature"] for d in result["drift"]] == [*FEATURES, "prediction"]
    for d in result["drift"]:
        assert {"feature", "method", "statistic", "threshold", "drifted"} <= set(d)
    # Skew over the same rows: the resampled values are not what offline has at those times.
    assert [(s["feature"], s["compared"]) for s in result["skew"]] == [(f, 300) for f in FEATURES]
    assert all(0 < s["mismatch_ratio"] <= 1 for s in result["skew"])
    assert result["rows"] == 300 and result["window"] == {"start": start.isoformat(), "end": end.isoformat()}
    calm = json.loads(run(logged.repo_path, "run", "driver_model/1", "--start", (NOW + timedelta(hours=1)).isoformat(),
                          "--end", (NOW + timedelta(hours=2)).isoformat(), "--json").stdout)
    assert calm["dataset_drift"] is False and not any(d["drifted"] for d in calm["drift"])
    # store.monitor answers the same as an object
    again = logged.monitor("driver_model", start, end)
    assert [(d["feature"], d["statistic"], d["drifted"]) for d in again.drift] == \
        [(d["feature"], d["statistic"], d["drifted"]) for d in result["drift"]]
    conv = next(s for s in again.skew if s["feature"] == "conv_rate")
    assert f'featurestore_skew_mismatch_ratio{{feature="conv_rate",model="driver_model"}} {conv["mismatch_ratio"]!r}' \
        in render_monitor_metrics(logged).decode()


def test_history_table_and_report_file(logged, tmp_path):
    run(logged.repo_path, "run", "driver_model", "--start", (NOW + timedelta(hours=3)).isoformat(), "--end",
        (NOW + timedelta(hours=4)).isoformat())
    lines = run(logged.repo_path, "history", "driver_model", "--json").stdout.splitlines()
    assert len(lines) >= 2 and json.loads(lines[0])["run"] > json.loads(lines[-1])["run"]
    assert "DATASET DRIFT" in run(logged.repo_path, "history").stdout
    out = tmp_path / "report.html"
    assert "wrote" in run(logged.repo_path, "report", "driver_model", "--out", str(out)).stdout
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<svg") == len(FEATURES) + 1


def test_a_window_with_too_few_rows_is_not_judged_rather_than_called_clean(logged):
    start = NOW + timedelta(days=30)
    out = run(logged.repo_path, "run", "driver_model", "--start", start.isoformat(), "--end",
              (start + timedelta(hours=1)).isoformat()).stdout
    assert "0 row(s) served" in out and "dataset drift: not judged" in out and "dataset drift: no " not in out
    assert "FEATURE" not in out  # no table of no features
    newest = run(logged.repo_path, "history", "driver_model", "-n", "1").stdout.splitlines()[-1].split()
    assert newest[-3:] == ["not_enough_data", "-", "-"]


def test_bad_input_is_one_error_line(logged):
    for args, words in [(("run", "nosuch"), "unknown model 'nosuch'"),
                        (("run", "driver_model", "--start", "2024-05-02", "--end", "2024-05-01"), "must be before"),
                        (("run", "driver_model", "--start", "yesterday"), "--start")]:
        proc = run(logged.repo_path, *args, check=False)
        assert proc.returncode == 1 and proc.stderr.startswith("error:") and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_the_scheduler_runs_configured_monitors_once_per_fire(logged, monitored):
    store, table, model = monitored
    config = store.repo_path / "featurestore.yaml"
    before = config.read_text()
    settings = yaml.safe_load(before)
    settings["monitoring"] = {"models": {"driver_model": {"schedule": "0 * * * *", "window": "1d", "min_rows": 50}}}
    config.write_text(yaml.safe_dump(settings))
    now = datetime.now(timezone.utc)
    write_log(store, served_rows(table, model, 200, 31), now - timedelta(minutes=90))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
        for _ in range(2):
            proc = subprocess.run([str(BIN), "-r", str(store.repo_path), "scheduler", "--once"], capture_output=True,
                                  text=True, env=env, timeout=300)
            assert proc.returncode == 0, proc.stderr
        runs = [json.loads(line) for line in run(store.repo_path, "history", "driver_model", "--json").stdout.splitlines()]
        scheduled = [r for r in runs if r["trigger"] == "scheduled"]
        assert len(scheduled) == 1 and scheduled[0]["rows"] == 200
        start, end = (datetime.fromisoformat(scheduled[0]["window"][k]) for k in ("start", "end"))
        assert end - start == timedelta(days=1) and end.minute == end.second == 0  # the fire time: an hour's top
        assert now - timedelta(hours=1) < end <= datetime.now(timezone.utc)
        config.write_text(before.replace("project:", "monitoring: {models: {driver_model: {window: soon}}}\nproject:"))
        proc = run(store.repo_path, "run", "driver_model", check=False)
        assert proc.returncode == 1 and "monitoring.models.driver_model.window" in proc.stderr
    finally:
        config.write_text(before)
