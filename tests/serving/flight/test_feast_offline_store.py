"""Feast's own SDK (0.67, in its own virtualenv) with ``offline_store: {type: remote}``
pointed at ``featurestore serve --flight-port``, unchanged: its training sets are the ones
our store returns locally, by feature references and by feature service, and its key is
checked as ours is."""

from __future__ import annotations

import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore
from featurestore.scaffold import init_repo

from ..feast_env import feast_python
from ..served import Server, free_port

pytestmark = pytest.mark.integration
CLIENT = Path(__file__).with_name("feast_offline_client.py")
KEY = "feast-offline-key"
REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]


@pytest.fixture(scope="module")
def feast_run(tmp_path_factory):
    """Our example repo served (HTTP and Flight, keys needed for reads), and what Feast's client got."""
    python = feast_python()
    tmp = tmp_path_factory.mktemp("feast_offline")
    data_end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    repo = init_repo(tmp / "ours", project=f"feast_{uuid.uuid4().hex[:8]}", now=data_end)
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text() + "serving:\n  auth_reads: true\n")
    with FeatureStore(repo_path=repo) as store:
        store.apply()
    entities = pa.table({"driver_id": pa.array([1001, 1002, 1003, 1001, 4242], pa.int64()),
                         "event_timestamp": pa.array([data_end - timedelta(hours=h) for h in (1, 5, 20, 40, 2)],
                                                     pa.timestamp("us", "UTC"))})
    pq.write_table(entities, tmp / "entities.parquet")
    flight_port = free_port()
    server = Server(repo, "--flight-port", str(flight_port), env={"FEATURESTORE_API_KEYS": KEY})
    out = tmp / "out"
    out.mkdir()
    try:
        run = subprocess.run([str(python), str(CLIENT), str(tmp / "feast_repo"), "127.0.0.1", str(flight_port),
                              str(repo / "data" / "driver_stats.parquet"), str(tmp / "entities.parquet"), str(out), KEY],
                             capture_output=True, text=True, timeout=300, cwd=tmp)
    finally:
        log = server.stop()
    assert run.returncode == 0, f"{run.stderr[-4000:]}\nserver:\n{log[-2000:]}"
    steps = {s["step"]: s for s in map(json.loads, run.stdout.splitlines())}
    return steps, repo, out, tmp / "entities.parquet"


def local(repo, entities_path, features, full_feature_names=False) -> pa.Table:
    entity_df = pq.read_table(entities_path).to_pandas()  # as Feast's client sends it: from pandas
    with FeatureStore(repo_path=repo) as store:
        return store.get_historical_features(entity_df, features, full_feature_names).to_arrow()


def test_feasts_training_set_by_references_is_ours(feast_run):
    steps, repo, out, entities = feast_run
    got = pq.read_table(out / "refs.parquet").replace_schema_metadata(None)
    expected = local(repo, entities, REFS).replace_schema_metadata(None)
    assert steps["refs"]["rows"] == 5
    assert got.column_names == expected.column_names
    assert got.to_pydict() == expected.to_pydict()
    assert got["conv_rate"].null_count == 1  # driver 4242 is unknown: null, as locally


def test_feasts_training_set_by_feature_service_is_ours(feast_run):
    steps, repo, out, entities = feast_run
    got = pq.read_table(out / "service.parquet").replace_schema_metadata(None)
    expected = local(repo, entities, "driver_activity_v1", full_feature_names=True)
    assert steps["service"]["columns"] == expected.column_names
    assert got.drop_columns(["event_timestamp"]).to_pydict() == expected.drop_columns(["event_timestamp"]).to_pydict()


def test_feasts_create_saved_dataset_saves_ours_on_the_server(feast_run):
    steps, repo, out, entities = feast_run
    assert "persist" in steps
    with FeatureStore(repo_path=repo) as store:
        saved = store.get_saved_dataset("feast_training")  # named after the storage's file
        assert saved.to_arrow().replace_schema_metadata(None).to_pydict() == \
            local(repo, entities, REFS).replace_schema_metadata(None).to_pydict()


def test_feasts_client_without_a_key_is_refused_saying_so(feast_run):
    steps, *_ = feast_run
    assert "needs an API key for reads" in steps["no_key"]["error"]
