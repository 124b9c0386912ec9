"""Feast's Map, Json and Struct types: declared, checked at apply, stored in the registry,
read into training sets, materialized, served online (Python and HTTP) and pushed."""

import json
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.errors import SchemaError
from featurestore.scaffold import init_repo
from featurestore.types import Int64, Json, Map, String, Struct, parse_type
from serving import create_app

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
PROFILE = Struct({"name": String, "age": Int64})
REFS = ["driver_docs:driver_metadata", "driver_docs:driver_config", "driver_docs:driver_profile"]

DEFINITIONS = '''
from datetime import timedelta
from featurestore import FeatureView, Field, FileSource, PushSource
from featurestore.types import Int64, Json, Map, String, Struct
from features.driver_stats import driver

docs_source = FileSource(name="driver_docs_source", path="data/driver_docs.parquet", timestamp_field="event_timestamp")
docs_push = PushSource(name="driver_docs_push", batch_source=docs_source)
schema = [Field("driver_metadata", Map), Field("driver_config", Json),
          Field("driver_profile", Struct({"name": String, "age": Int64}))]
driver_docs = FeatureView(name="driver_docs", entities=[driver], ttl=timedelta(days=1), schema=schema,
                          source=docs_source)
driver_docs_fresh = FeatureView(name="driver_docs_fresh", entities=[driver], ttl=timedelta(days=1), schema=schema,
                                source=docs_push)
'''


@pytest.fixture
def store(tmp_path):
    repo = init_repo(tmp_path / "repo", project="documents", now=NOW)
    table = pa.table({
        "driver_id": pa.array([1001, 1002], pa.int64()),
        "event_timestamp": pa.array([NOW - timedelta(hours=1)] * 2, pa.timestamp("us", tz="UTC")),
        "driver_metadata": pa.array([[("team", "north"), ("tier", "gold")], None], pa.map_(pa.string(), pa.string())),
        "driver_config": pa.array(['{"max_trips": 12, "zones": [1, 2]}', "null"], pa.large_string()),
        "driver_profile": pa.array([{"name": "Ann", "age": 41}, {"name": "Bo", "age": None}], PROFILE.to_arrow()),
    })
    pq.write_table(table, repo / "data" / "driver_docs.parquet")
    (repo / "features" / "docs.py").write_text(DEFINITIONS)
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as s:
        s.apply()
        yield s


def test_types_spell_and_parse_back():
    for t in (Map, Json, PROFILE):
        assert parse_type(str(t)) == t
    assert str(PROFILE) == "Struct({name: String, age: Int64})"


def test_definitions_read_back_from_the_registry_unchanged(store):
    assert store.plan() == []
    schema = {f.name: f.dtype for f in store.get_feature_view("driver_docs").schema}
    assert schema["driver_metadata"] == Map and schema["driver_config"] == Json and schema["driver_profile"] == PROFILE


def test_training_sets_and_online_reads_agree(store):
    entity_df = pa.table({"driver_id": [1001, 1002], "event_timestamp": [NOW, NOW]})
    offline = store.get_historical_features(entity_df, REFS).to_arrow().to_pylist()
    assert offline[0]["driver_metadata"] == [("team", "north"), ("tier", "gold")]
    assert json.loads(offline[0]["driver_config"]) == {"max_trips": 12, "zones": [1, 2]}
    assert offline[1]["driver_profile"] == {"name": "Bo", "age": None}

    store.materialize(NOW - timedelta(days=1), NOW)
    online = store.get_online_features(REFS, [{"driver_id": 1001}, {"driver_id": 1002}])
    values = online.to_dict()
    assert values["driver_metadata"] == [{"team": "north", "tier": "gold"}, None]
    assert values["driver_config"] == [{"max_trips": 12, "zones": [1, 2]}, None]  # parsed, as Feast
    assert values["driver_profile"] == [{"name": "Ann", "age": 41}, {"name": "Bo", "age": None}]
    assert online.to_arrow().column("driver_profile").type == PROFILE.to_arrow()
    assert online.to_arrow().column("driver_config").to_pylist()[0] == '{"max_trips": 12, "zones": [1, 2]}'


def test_pushed_documents_are_served_over_http(store):
    rows = {"driver_id": [7001], "event_timestamp": [NOW.isoformat()],
            "driver_metadata": [{"team": "south", "rank": 3}], "driver_config": [{"dark_mode": True}],
            "driver_profile": [{"name": "Cy", "age": 30}]}
    with TestClient(create_app(store, watch_interval=0)) as client:
        response = client.post("/push", json={"push_source_name": "driver_docs_push", "df": rows})
        assert response.status_code == 200, response.text
        refs = [r.replace("driver_docs:", "driver_docs_fresh:") for r in REFS]
        answer = client.post("/get-online-features", json={"features": refs, "entities": {"driver_id": [7001]}})
        results = answer.json()["results"]
        assert [r["values"][0] for r in results[1:]] == [
            {"team": "south", "rank": "3"}, {"dark_mode": True}, {"name": "Cy", "age": 30}]
        bad = client.post("/push", json={"push_source_name": "driver_docs_push",
                                         "df": {**rows, "driver_config": ["{not json"]}})
        assert bad.status_code == 422 and "driver_config" in bad.json()["error"]["message"]


def test_a_source_column_of_another_shape_fails_apply(store, tmp_path):
    path = store.repo_path / "data" / "driver_docs.parquet"
    table = pq.read_table(path)
    table = table.set_column(table.column_names.index("driver_profile"), "driver_profile",
                             pa.array([{"name": "Ann"}, {"name": "Bo"}]))
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match="driver_profile"):
        store.apply()
