"""The Spark offline engine as a store uses it: chosen by featurestore.yaml, running the
on-demand transforms after its training set like DuckDB's, and materializing from its
executors. (The join, aggregation and materialization rules themselves are pinned for
both engines by the parametrized tests: test_pit_property, test_aggregate_sql,
test_online_offline_parity, streaming/test_parity.)"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pandas as pd
import pytest

from featurestore import FeatureStore
from featurestore.config import load_config
from featurestore.errors import ConfigError, StoreUnavailableError
from featurestore.offline.base import ExecutorWrites
from featurestore.scaffold import init_repo

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
SPARK = "offline_store:\n  path: data/offline\n  engine: spark\n  master: local[2]\n"


def spark_repo(tmp_path, extra: str = ""):
    repo = init_repo(tmp_path / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=NOW)
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text().replace("offline_store: data/offline\n", SPARK))
    if extra:
        defs = repo / "features" / "driver_stats.py"
        defs.write_text(defs.read_text() + extra)
    return repo


def test_the_yaml_names_the_engine_its_master_and_conf(tmp_path):
    repo = spark_repo(tmp_path)
    config = repo / "featurestore.yaml"
    config.write_text(config.read_text().replace("  master: local[2]\n",
                                                 "  master: local[2]\n  conf:\n    spark.executor.memory: 2g\n"))
    engine = load_config(repo, env={}).offline_engine
    assert (engine.engine, engine.master, dict(engine.conf)) == ("spark", "local[2]", {"spark.executor.memory": "2g"})
    config.write_text(config.read_text().replace("engine: spark", "engine: flink"))
    with pytest.raises(ConfigError, match="offline_store.engine must be duckdb or spark, not 'flink'"):
        load_config(repo, env={})


def test_a_materialization_is_written_by_the_executors_and_served_online(tmp_path, spark_session):
    repo = spark_repo(tmp_path)
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        store.apply()
        assert isinstance(store.offline, ExecutorWrites)
        [result] = store.materialize(None, NOW, views=["driver_hourly_stats"])
        assert result.rows == 5
        drivers = [1001, 1002, 9999]
        online = store.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": drivers}).to_dict()
        entities = pd.DataFrame({"driver_id": drivers, "event_timestamp": [NOW] * 3})
        offline = store.get_historical_features(entities, ["driver_hourly_stats:conv_rate"]).to_arrow()
        assert online["conv_rate"] == offline.column("conv_rate").to_pylist()
        assert online["conv_rate"][2] is None and online["conv_rate"][0] is not None


def test_an_executor_that_cannot_write_says_what_it_met(tmp_path, spark_session):
    repo = spark_repo(tmp_path)
    config = repo / "featurestore.yaml"
    # Under a file, not a folder: the driver never opens it, each executor fails to.
    config.write_text(config.read_text().replace("path: data/online.db", "path: featurestore.yaml/online.db"))
    with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
        store.apply()
        with pytest.raises(StoreUnavailableError) as raised:
            store.materialize(None, NOW, views=["driver_hourly_stats"])
    message = str(raised.value)
    assert message.startswith("view 'driver_hourly_stats': writing the latest rows from the Spark executors failed: ")
    # The executor's own error, not only Spark's "an exception was thrown from the Python worker"
    assert f"SQLite online store at {repo}/featurestore.yaml/online.db failed" in message
    assert "Python worker" not in message and "\n" not in message


ON_DEMAND = '''

from featurestore import Field, RequestSource, on_demand_feature_view
from featurestore.types import Float64 as _Float64

trip = RequestSource(name="trip", schema=[Field("trip_km", _Float64)])


@on_demand_feature_view(sources=[driver_hourly_stats, trip], schema=[Field("km_conv", _Float64)])
def km_features(inputs):
    return {"km_conv": inputs["trip_km"] * inputs["conv_rate"]}
'''


def test_on_demand_transforms_give_the_same_training_set_on_both_engines(tmp_path, spark_session):
    repo = spark_repo(tmp_path, ON_DEMAND)
    entities = pd.DataFrame({"driver_id": [1001, 9999, 1001], "event_timestamp": [NOW] * 3,
                             "trip_km": [2.0, 3.0, 0.5]})
    refs = ["driver_hourly_stats:conv_rate", "km_features:km_conv"]
    tables = []
    for section in (SPARK, "offline_store: data/offline\n"):
        config = repo / "featurestore.yaml"
        config.write_text(config.read_text().replace(SPARK, section))
        with FeatureStore(repo_path=repo, clock=lambda: NOW.timestamp()) as store:
            store.apply()
            tables.append(store.get_historical_features(entities, refs).to_arrow())
    spark, duckdb = tables
    assert spark.schema == duckdb.schema
    assert repr(spark.to_pylist()) == repr(duckdb.to_pylist())  # NaN where the transform made one
    conv = spark.column("conv_rate").to_pylist()
    assert spark.column("km_conv").to_pylist()[::2] == [2.0 * conv[0], 0.5 * conv[2]]
