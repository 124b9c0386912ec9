"""Feast's own SDK (pinned, in its own virtualenv) with ``online_store: type: remote``
pointed at our server, unchanged: materialize, get_online_features (features and a
feature service), push, write_to_online_store and materialize_incremental."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

from .feast_env import feast_python
from .served import Server

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
    docs = _documents_view(repo, data_end)
    with FeatureStore(repo_path=repo) as store:
        store.apply()
    server = Server(repo)
    try:
        end = data_end + timedelta(minutes=30)
        run = subprocess.run(
            [str(python), str(CLIENT), str(tmp / "feast_repo"), f"http://127.0.0.1:{server.port}",
             str(repo / "data" / "driver_stats.parquet"), str(docs), end.isoformat()],
            capture_output=True, text=True, timeout=300, cwd=tmp,
        )
    finally:
        log = server.stop()
    assert run.returncode == 0, f"{run.stderr[-4000:]}\nserver:\n{log[-2000:]}"
    return {s["step"]: s for s in map(json.loads, run.stdout.splitlines())}, repo


DOCS_VIEW = """
from datetime import timedelta
from featurestore import FeatureView, Field, FileSource
from featurestore.types import Int64, Json, Map, String, Struct
from features.driver_stats import driver

driver_docs = FeatureView(
    name="driver_docs", entities=[driver], ttl=timedelta(days=1),
    source=FileSource(name="driver_docs_source", path="data/driver_docs.parquet"),
    schema=[Field("driver_metadata", Map), Field("driver_config", Json),
            Field("driver_profile", Struct({"name": String, "age": Int64}))])
"""


def _documents_view(repo, at):
    """A view of Feast's Map, Json and Struct types in our repo (one row of data)."""
    from featurestore.types import Int64, Json, Map, String, Struct

    table = pa.table({"driver_id": pa.array([1002], pa.int64()),
                      "event_timestamp": pa.array([at], pa.timestamp("us", tz="UTC")),
                      "driver_metadata": pa.array([[("team", "south")]], Map.to_arrow()),
                      "driver_config": pa.array(['{"max_trips": 3}'], Json.to_arrow()),
                      "driver_profile": pa.array([{"name": "Bo", "age": 7}],
                                                 Struct({"name": String, "age": Int64}).to_arrow())})
    path = repo / "data" / "driver_docs.parquet"
    pq.write_table(table, path)
    (repo / "features" / "docs.py").write_text(DOCS_VIEW)
    return path


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


def test_map_json_and_struct_values_through_feasts_client(steps):
    seen, _ = steps
    docs = seen["documents"]["docs"]
    assert docs["driver_metadata"] == [{"team": "north"}]
    assert docs["driver_config"] == [{"max_trips": 12}]
    assert docs["driver_profile"] == [{"name": "Ann", "age": 41}]
