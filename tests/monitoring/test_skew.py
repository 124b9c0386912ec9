"""The skew monitor on rows logged through the real app: zero on consistent data, and
each injected skew caught (a value pushed online only, a stale online store, a transform
that computes differently online), with counts, largest differences and entity keys."""

from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.clock import to_micros
from featurestore.config import load_config
from featurestore.scaffold import init_repo
from featurestore.serving_log import LogEntry, ServingLogWriter
from monitoring.skew import feature_skew
from serving import create_app

NOW = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
DRIVERS = [1001, 1002, 1003, 1004, 1005, 99999]  # the last is unknown: null on both sides

SERVICE = '''

import os

from featurestore import LoggingConfig, on_demand_feature_view
from featurestore.types import Float64


@on_demand_feature_view(sources=[driver_hourly_stats[["conv_rate"]]], schema=[Field("conv_pct", Float64)],
                        mode="python")
def conv_pct(columns: dict) -> dict:
    scale = float(os.environ.get("CONV_SCALE", "100"))  # a setting a deployment might not share
    return {"conv_pct": [None if v is None else scale * v for v in columns["conv_rate"]]}


skew_v1 = FeatureService(
    name="skew_v1",
    features=[driver_hourly_stats[["conv_rate", "acc_rate"]], driver_hourly_stats_fresh[["avg_daily_trips"]], conv_pct],
    logging_config=LoggingConfig(sample_rate=1.0),
)
'''


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def store(tmp_path):
    repo = init_repo(tmp_path / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=NOW)
    with open(repo / "features" / "driver_stats.py", "a") as f:
        f.write(SERVICE)
    with FeatureStore(config=load_config(repo, env={}), clock=Clock(NOW)) as s:
        s.apply()
        yield s


def serve(store: FeatureStore, times: list[datetime]) -> None:
    """One /get-online-features request for every driver at each of ``times``."""
    app = create_app(store, watch_interval=0)
    with TestClient(app) as client:
        for t in times:
            store.clock.now = t
            answer = client.post("/get-online-features",
                                 json={"feature_service": "skew_v1", "entities": {"driver_id": DRIVERS}})
            assert answer.status_code == 200, answer.text
        assert app.state.serving.serving_log.writer.flush(10)
    store.clock.now = NOW


def by_feature(results: list[dict]) -> dict[str, dict]:
    return {r["feature"]: r for r in results}


def test_consistent_data_has_no_skew(store):
    store.materialize_incremental(NOW)
    serve(store, [NOW, NOW + timedelta(minutes=30)])
    results = by_feature(feature_skew(store, "skew_v1"))
    assert set(results) == {"conv_rate", "acc_rate", "avg_daily_trips", "conv_pct"}
    for r in results.values():
        assert (r["mismatch_ratio"], r["compared"], r["mismatched"]) == (0.0, 12, 0), r
        assert r["examples"] == []


def test_a_value_pushed_online_only_is_caught_with_its_entity_key(store):
    store.materialize_incremental(NOW)
    store.push("driver_stats_push", pd.DataFrame({
        "driver_id": [1003], "event_timestamp": [NOW + timedelta(minutes=5)], "created": [NOW],
        "conv_rate": [0.5], "acc_rate": [0.5], "avg_daily_trips": [777]}), to="online")
    serve(store, [NOW + timedelta(minutes=10)])
    results = by_feature(feature_skew(store, "skew_v1"))
    trips = results["avg_daily_trips"]
    assert (trips["compared"], trips["value_mismatches"], trips["mismatched"]) == (6, 1, 1)
    assert trips["mismatch_ratio"] == pytest.approx(1 / 6)
    [example] = trips["examples"]
    assert example["entity"] == {"driver_id": 1003} and example["served"] == 777
    assert example["abs_diff"] == abs(777 - example["offline"]) == trips["max_abs_diff"]
    assert results["conv_rate"]["mismatched"] == 0  # the other view was not pushed to


def test_a_stale_online_store_is_caught(store):
    store.materialize_incremental(NOW - timedelta(hours=3))  # the last three hours never reached it
    serve(store, [NOW])
    results = by_feature(feature_skew(store, "skew_v1"))
    rate = results["conv_rate"]
    assert rate["compared"] == 6 and rate["value_mismatches"] >= 4  # random rates: a tie is unlikely
    assert rate["served_null_offline_present"] == rate["offline_null_served_present"] == 0
    diffs = [e["abs_diff"] for e in rate["examples"]]
    assert diffs == sorted(diffs, reverse=True) and diffs[0] == rate["max_abs_diff"] > 0
    assert {e["entity"]["driver_id"] for e in rate["examples"]} <= set(DRIVERS[:5])


def test_a_stale_online_store_past_ttl_shows_as_served_null(store):
    store.materialize_incremental(NOW - timedelta(days=2))  # older than the views' one-day ttl
    serve(store, [NOW])
    rate = by_feature(feature_skew(store, "skew_v1"))["conv_rate"]
    assert (rate["served_null_offline_present"], rate["value_mismatches"], rate["mismatched"]) == (5, 0, 5)
    assert all(e["served"] is None and e["offline"] is not None for e in rate["examples"])


def test_a_transform_computing_differently_online_is_caught(store, monkeypatch):
    store.materialize_incremental(NOW)
    monkeypatch.setenv("CONV_SCALE", "1")  # the server computes conv_pct as a share, training as a percentage
    serve(store, [NOW])
    monkeypatch.delenv("CONV_SCALE")
    results = by_feature(feature_skew(store, "skew_v1"))
    assert results["conv_pct"]["value_mismatches"] == 5 and results["conv_pct"]["mismatch_ratio"] == pytest.approx(5 / 6)
    assert results["conv_rate"]["mismatched"] == 0


def test_floats_compare_within_a_tolerance(store, monkeypatch):
    store.materialize_incremental(NOW)
    monkeypatch.setenv("CONV_SCALE", "100.00001")  # off by one part in ten million
    serve(store, [NOW])
    monkeypatch.delenv("CONV_SCALE")
    assert by_feature(feature_skew(store, "skew_v1"))["conv_pct"]["mismatched"] == 0
    strict = by_feature(feature_skew(store, "skew_v1", rel_tol=1e-9))["conv_pct"]
    assert strict["value_mismatches"] == 5 and 0 < strict["max_abs_diff"] < 1e-4


def test_only_the_window_is_compared(store):
    store.materialize_incremental(NOW)
    serve(store, [NOW, NOW + timedelta(hours=1)])
    assert {r["compared"] for r in feature_skew(store, "skew_v1", start=NOW + timedelta(minutes=1))} == {6}
    assert {r["compared"] for r in feature_skew(store, "skew_v1", end=NOW + timedelta(hours=1))} == {6}
    assert feature_skew(store, "skew_v1", start=NOW + timedelta(hours=2)) == []


def test_a_models_log_is_compared_with_the_features_of_each_logged_version(store):
    store.materialize_incremental(NOW)
    events = pa.table({"driver_id": [d for _ in range(24) for d in DRIVERS[:5]],
                       "event_timestamp": [NOW - timedelta(hours=h) for h in range(24) for _ in DRIVERS[:5]],
                       "trip_completed": [i % 2 for i in range(120)]})
    job = store.get_historical_features(events, "driver_activity_v1")
    model = sys.modules["driver_model"].DriverModel.fit(job.to_arrow(), ["conv_rate", "acc_rate", "avg_daily_trips"],
                                                        "trip_completed", steps=5)
    version = store.models.register("driver_model", model, flavor="python", features="driver_activity_v1",
                                    training_dataset=job.save("driver_training"), output="trip_completed")
    store.push("driver_stats_push", pd.DataFrame({
        "driver_id": [1002], "event_timestamp": [NOW + timedelta(minutes=5)], "created": [NOW],
        "conv_rate": [0.5], "acc_rate": [0.5], "avg_daily_trips": [5]}), to="online")
    # What /predict logs: the online answer named as the signature's inputs, and the predictions.
    store.clock.now = NOW + timedelta(minutes=10)
    answer = store.get_online_features("driver_activity_v1", {"driver_id": DRIVERS})
    entry = LogEntry(answer, 1, log_time_us=to_micros(store.clock.now), request_id="r1",
                     model="driver_model", version=version.version, predictions=[1] * len(DRIVERS))
    writer = ServingLogWriter(store.config.offline_store, folder=store.serving_log_folder)
    writer.write_entry("driver_model", entry)
    writer.close()
    assert store.get_logs("driver_model").column("prediction").to_pylist() == [1] * 6

    results = by_feature(feature_skew(store, "driver_model"))
    assert results["avg_daily_trips"]["mismatched"] == 1
    assert results["avg_daily_trips"]["examples"][0]["entity"] == {"driver_id": 1002}
    assert results["conv_rate"]["mismatched"] == results["acc_rate"]["mismatched"] == 0
    assert {r["compared"] for r in results.values()} == {6}
