"""Run by the Feast SDK's own interpreter (tests/feast_sdk/feast_env.py), not by pytest:
a Feast repo whose online store is ``type: remote`` pointing at our server, driven
through Feast's FeatureStore API exactly as a Feast user would. Prints one JSON object
per step on stdout.

    python feast_client.py FEAST_REPO SERVER_URL DATA_PARQUET DOCS_PARQUET END_ISO
"""

import json
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, PushSource
from feast.data_source import PushMode
from feast.types import Float32, Int64, Json, Map, String, Struct

repo, url, data, docs_data = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
end = datetime.fromisoformat(sys.argv[5])
repo.mkdir(parents=True, exist_ok=True)
(repo / "feature_store.yaml").write_text(f"""
project: feast_client
registry: {repo / 'registry.db'}
provider: local
online_store:
  type: remote
  path: {url}
offline_store:
  type: file
entity_key_serialization_version: 3
""")

driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="driver_hourly_stats_source", path=data, timestamp_field="event_timestamp",
                    created_timestamp_column="created")
schema = [Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32),
          Field(name="avg_daily_trips", dtype=Int64)]
stats = FeatureView(name="driver_hourly_stats", entities=[driver], ttl=timedelta(days=1), schema=schema,
                    source=source, online=True)
push_source = PushSource(name="driver_stats_push", batch_source=source)
fresh = FeatureView(name="driver_hourly_stats_fresh", entities=[driver], ttl=timedelta(days=1), schema=schema,
                    source=push_source)
service = FeatureService(name="driver_activity_v1", features=[stats[["conv_rate", "acc_rate"]],
                                                               fresh[["avg_daily_trips"]]])

docs_source = FileSource(name="driver_docs_source", path=docs_data, timestamp_field="event_timestamp")
docs = FeatureView(name="driver_docs", entities=[driver], ttl=timedelta(days=1), source=docs_source,
                   schema=[Field(name="driver_metadata", dtype=Map), Field(name="driver_config", dtype=Json),
                           Field(name="driver_profile", dtype=Struct({"name": String, "age": Int64}))])

store = FeatureStore(repo_path=str(repo))
store.apply([driver, source, push_source, stats, fresh, service, docs_source, docs])


def step(name, **out):
    print(json.dumps({"step": name, **out}, default=str), flush=True)


def read(features, drivers):
    return store.get_online_features(features=features, entity_rows=[{"driver_id": d} for d in drivers]).to_dict()


STATS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]
FRESH = ["driver_hourly_stats_fresh:avg_daily_trips"]

store.materialize(start_date=end - timedelta(days=2), end_date=end, feature_views=["driver_hourly_stats"])
step("materialize", stats=read(STATS, [1001, 1002]), fresh=read(FRESH, [1002]))

step("feature_service", values=store.get_online_features(features=service, entity_rows=[{"driver_id": 1001}],
                                                         full_feature_names=True).to_dict())

pushed = pd.DataFrame({"driver_id": [1001], "conv_rate": [0.5], "acc_rate": [0.25], "avg_daily_trips": [777],
                       "event_timestamp": [pd.Timestamp(end)], "created": [pd.Timestamp(end)]})
store.push("driver_stats_push", pushed, to=PushMode.ONLINE)
step("push", fresh=read(FRESH, [1001]))

written = pushed.assign(avg_daily_trips=[888], conv_rate=[0.75])
store.write_to_online_store("driver_hourly_stats", written)
step("write_to_online_store", stats=read(STATS, [1001]))

store.materialize_incremental(end_date=end, feature_views=["driver_hourly_stats_fresh"])
step("materialize_incremental", fresh=read(FRESH, [1001, 1002]))

DOCS = ["driver_docs:driver_metadata", "driver_docs:driver_config", "driver_docs:driver_profile"]
store.write_to_online_store("driver_docs", pd.DataFrame({
    "driver_id": [1001], "event_timestamp": [pd.Timestamp(end)],
    "driver_metadata": [{"team": "north"}], "driver_config": ['{"max_trips": 12}'],
    "driver_profile": [{"name": "Ann", "age": 41}]}))
step("documents", docs=read(DOCS, [1001]))
