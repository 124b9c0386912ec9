"""``featurestore serve`` (uvicorn, real sockets) on a real Redis Cluster: online features
and predictions answer as the store's own Python calls do on the same cluster."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from featurestore.scaffold import init_repo

from .conftest import Clock, open_store
from .prediction_server import _train
from .served import Server, wait_for

DRIVERS = list(range(1001, 1006))
FEATURES = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:acc_rate", "driver_hourly_stats:avg_daily_trips"]


def test_online_features_and_predictions_are_served_from_a_cluster(tmp_path, redis_cluster_url):
    clock = Clock(datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0))
    repo = init_repo(tmp_path / "repo", project=f"test_{uuid.uuid4().hex[:10]}", now=clock.now)
    env = {"FEATURESTORE_REDIS_URL": redis_cluster_url}
    with open_store(repo, clock, env=env) as store:
        assert store.config.online_store.connection_string == redis_cluster_url
        store.apply()
        store.materialize_incremental(clock.now)
        _train(repo, store)
        expected = store.get_online_features(FEATURES, {"driver_id": DRIVERS}).to_dict()
        predictions = store.predict_online("driver_model/1", {"driver_id": DRIVERS}).predictions
    assert all(v is not None for v in expected["conv_rate"])  # materialized into the cluster

    server = Server(repo, "--workers", "1", "--no-access-log", env=env)
    try:
        wait_for(lambda: server.client.get("/ready").status_code == 200, "the server to be ready")
        answer = server.client.post("/get-online-features",
                                    json={"features": FEATURES, "entities": {"driver_id": DRIVERS}})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        names = body["metadata"]["feature_names"]
        served = {name: result["values"] for name, result in zip(names, body["results"])}
        assert {k: served[k] for k in ("conv_rate", "acc_rate", "avg_daily_trips")} == {
            k: expected[k] for k in ("conv_rate", "acc_rate", "avg_daily_trips")}
        answer = server.client.post("/predict/driver_model", json={"entities": {"driver_id": DRIVERS}})
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == predictions and len(set(predictions)) > 1
    finally:
        server.stop()
