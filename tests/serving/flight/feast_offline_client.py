"""Run by the Feast SDK's own interpreter (tests/serving/feast_env.py), not by pytest: a
Feast repo whose offline store is ``type: remote`` pointing at our Flight server, driven
through Feast's FeatureStore API exactly as a Feast user would. Writes each training set
as Parquet into OUT and prints one JSON object per step.

    python feast_offline_client.py FEAST_REPO HOST PORT DATA_PARQUET ENTITIES_PARQUET OUT KEY
"""

import time

START = time.monotonic()

import json  # noqa: E402
import sys  # noqa: E402
from datetime import timedelta  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from feast import Entity, FeatureService, FeatureStore, FeatureView, Field, FileSource, PushSource
from feast.types import Float32, Int64  # noqa: E402

repo, host, port, data, entities_path, out, key = sys.argv[1:8]
repo, out = Path(repo), Path(out)


def feast_repo(folder: Path, token: str | None, registry: Path) -> FeatureStore:
    folder.mkdir(parents=True, exist_ok=True)
    auth = f"auth:\n  type: oidc\n  token: {token}\n" if token else ""
    (folder / "feature_store.yaml").write_text(f"""
project: feast_remote_offline
registry: {registry}
provider: local
offline_store:
  type: remote
  host: {host}
  port: {port}
online_store:
  type: sqlite
  path: {folder / 'online.db'}
entity_key_serialization_version: 3
{auth}""")
    return FeatureStore(repo_path=str(folder))


driver = Entity(name="driver", join_keys=["driver_id"])
source = FileSource(name="driver_hourly_stats_source", path=data, timestamp_field="event_timestamp",
                    created_timestamp_column="created")
schema = [Field(name="conv_rate", dtype=Float32), Field(name="acc_rate", dtype=Float32),
          Field(name="avg_daily_trips", dtype=Int64)]
stats = FeatureView(name="driver_hourly_stats", entities=[driver], ttl=timedelta(days=1), schema=schema,
                    source=source)
push_source = PushSource(name="driver_stats_push", batch_source=source)
fresh = FeatureView(name="driver_hourly_stats_fresh", entities=[driver], ttl=timedelta(days=1), schema=schema,
                    source=push_source)
service = FeatureService(name="driver_activity_v1", features=[stats[["conv_rate", "acc_rate"]],
                                                               fresh[["avg_daily_trips"]]])
OBJECTS = [driver, source, push_source, stats, fresh, service]


def step(name, **fields):
    print(json.dumps({"step": name, "seconds": round(time.monotonic() - START, 2), **fields}, default=str), flush=True)


step("imported")
store = feast_repo(repo, key, repo / "registry.db")
store.apply(OBJECTS)
step("applied")
entity_df = pd.read_parquet(entities_path)
REFS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]

table = store.get_historical_features(entity_df=entity_df, features=REFS).to_arrow()
pq.write_table(table, out / "refs.parquet")
step("refs", rows=table.num_rows)

frame = store.get_historical_features(entity_df=entity_df, features=service, full_feature_names=True).to_df()
pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out / "service.parquet")
step("service", rows=len(frame), columns=list(frame.columns))

from feast.infra.offline_stores.file_source import SavedDatasetFileStorage  # noqa: E402

job = store.get_historical_features(entity_df=entity_df, features=REFS)
store.create_saved_dataset(from_=job, name="feast_training", storage=SavedDatasetFileStorage(path=str(out / "feast_training.parquet")))
step("persist")

anonymous = feast_repo(repo.with_name(repo.name + "_anonymous"), None, repo / "registry.db")  # same definitions
try:
    anonymous.get_historical_features(entity_df=entity_df, features=REFS).to_arrow()
    step("no_key", error=None)
except Exception as exc:  # what a Feast user sees
    step("no_key", error=f"{type(exc).__name__}: {exc}")
