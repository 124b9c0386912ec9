"""Feast's own SDK (pinned, in its own virtualenv) with ``online_store: type: remote``
pointed at our server, unchanged: materialize, get_online_features (features and a
feature service), push, write_to_online_store and materialize_incremental."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

from .served import Server
from .feast_env import feast_python

pytestmark = pytest.mark.integration
CLIENT = Path(__file__).with_name("feast_client.py")


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    """Our example repo served by uvicorn, and what Feast's client saw at each step."""
    python = feast_python()
    # The data ends an hour before now, so the pushed rows (half an hour later) are newer
    # than every stored row and still in the past of the server's wall clock.
    data_end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    tmp = tmp_path_factory.mktemp("feast_sdk")
    repo = init_repo(tmp / "ours", project=f"feast_{uuid.uuid4().hex[:8]}", now=data_end)
    with FeatureStore(repo_path=repo) as store:
        store.apply()
    server = Server(repo)
    try:
        end = data_end + timedelta(minutes=30)
        run = subprocess.run(
            [str(python), str(CLIENT), str(tmp / "feast_repo"), f"http://127.0.0.1:{server.port}",
             str(repo / "data" / "driver_stats.parquet"), end.isoformat()],
            capture_output=True, text=True, timeout=300, cwd=tmp,
        )
    finally:
        log = server.stop()
    assert run.returncode == 0, f"{run.stderr[-4000:]}\nserver:\n{log[-2000:]}"
    return {s["step"]: s for s in map(json.loads, run.stdout.splitlines())}, repo


def latest(repo, driver, column):
    table = pq.read_table(repo / "data" / "driver_stats.parquet")
    rows = table.filter(pc.equal(table["driver_id"], driver)).sort_by([("event_timestamp", "descending")])
    return rows[column][0].as_py()


def test_materialize_then_get_online_features_through_feasts_client(steps):
    seen, repo = steps
    stats = seen["materialize"]["stats"]
    assert stats["driver_id"] == [1001, 1002]
    assert stats["conv_rate"] == pytest.approx([latest(repo, d, "conv_rate") for d in (1001, 1002)], rel=1e-6)
    assert stats["avg_daily_trips"] == [latest(repo, d, "avg_daily_trips") for d in (1001, 1002)]
    # Only the view named was materialized.
    assert seen["materialize"]["fresh"]["avg_daily_trips"] == [None]


def test_a_feature_service_read_through_feasts_client(steps):
    seen, repo = steps
    values = seen["feature_service"]["values"]
    assert values["driver_hourly_stats__conv_rate"] == pytest.approx([latest(repo, 1001, "conv_rate")], rel=1e-6)
    assert values["driver_hourly_stats_fresh__avg_daily_trips"] == [None]


def test_push_and_write_to_online_store_through_feasts_client(steps):
    seen, _ = steps
    assert seen["push"]["fresh"]["avg_daily_trips"] == [777]
    assert seen["write_to_online_store"]["stats"]["avg_daily_trips"] == [888]
    assert seen["write_to_online_store"]["stats"]["conv_rate"] == [0.75]


def test_materialize_incremental_through_feasts_client_keeps_the_newer_push(steps):
    seen, repo = steps
    fresh = seen["materialize_incremental"]["fresh"]["avg_daily_trips"]
    assert fresh == [777, latest(repo, 1002, "avg_daily_trips")]
