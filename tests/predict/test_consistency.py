"""One model, one answer: online, batch and the training pipeline agree.

For ``trip_model`` (trained on a saved dataset of a plain view, an aggregation view and an
on-demand view together), at time T (the store's clock is pinned at ``world.now``):
``store.predict_online`` and ``store.predict(entity_df at T)`` give the same predictions,
equal to ``model.predict`` on the training pipeline's features for those rows
(``world.expected()``). The HTTP leg: ``POST /predict/{model}`` on a real server (its
clock is the real one, so that world is built at the current minute, on Redis) answers
the same.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from ..serving.conftest import redis_cleanup
from ..serving.served import Server
from .world import COLUMNS, DRIVERS, build_world


def test_online_batch_and_training_predictions_are_the_same(world):
    expected = world.expected()
    assert len(set(expected)) == len(DRIVERS)  # four different answers: nothing agrees by accident
    online = world.store.predict_online(world.uri, world.entity_columns())
    batch = world.store.predict(world.uri, world.entity_df())
    assert online.predictions == expected
    assert batch.column("prediction").to_pylist() == expected
    for name in COLUMNS:  # the model saw the same features, nulls of the unknown driver included
        assert online.features.column(name).to_pylist() == batch.column(name).to_pylist(), name
    assert online.features.column("fare_sum_1h")[0].as_py() > 0  # the aggregation and transform ran
    assert online.features.column("expected_fare")[0].as_py() > 0


def test_the_champion_answers_as_its_version(world):
    assert world.store.predict_online("trip_model", world.entity_columns()).predictions == world.expected()


def test_a_backtest_scores_each_row_as_of_its_own_time(world):
    earlier = world.now - timedelta(minutes=40)
    scored = world.store.predict(world.uri, world.entity_df(earlier)).column("prediction").to_pylist()
    assert scored == world.expected(earlier)
    assert scored != world.expected()


def test_an_on_demand_view_over_an_aggregation_view_reads_the_same_offline_and_online(world):
    refs = ["per_trip:fare_for_trip", "trip_stats:fare_count_1h"]
    offline = world.store.get_historical_features(world.entity_df(), refs).to_arrow()
    online = world.store.get_online_features(refs, world.entity_columns()).to_dict()
    assert online["fare_for_trip"] == offline.column("fare_for_trip").to_pylist()
    assert online["fare_for_trip"][0] > 0 and online["fare_for_trip"][3] is None
    assert online["fare_count_1h"] == offline.column("fare_count_1h").to_pylist()


@pytest.fixture(scope="module")
def served_world(tmp_path_factory, redis_url):
    """The world built at the current minute on Redis, and ``featurestore serve`` on it."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    project = f"test-{uuid.uuid4().hex[:12]}"
    online = f"  type: redis\n  connection_string: {redis_url}\n  read_timeout: 5\n"
    world = build_world(tmp_path_factory.mktemp("served"), online, project, now=now)
    server = Server(world.repo, "--workers", "1", "--no-access-log", "--watch-interval", "0")
    try:
        yield world, server.client
    finally:
        server.stop()
        world.store.close()
        redis_cleanup(redis_url, project)


def test_predict_over_http_answers_as_python_batch_and_training(served_world):
    # The trips fall every 7 minutes, so the server reading a little after `now` sees the
    # same 1-hour windows as the store at `now`.
    world, client = served_world
    columns = world.entity_columns()
    body = {"entities": {"driver_id": columns["driver_id"]},
            "request": {"trip_km": columns["trip_km"], "surge": columns["surge"]}, "include_features": True}
    answer = client.post(f"/predict/{world.uri}", json=body)
    assert answer.status_code == 200, answer.text
    expected = world.expected()
    assert len(set(expected)) == len(DRIVERS)
    assert answer.json()["predictions"] == expected
    assert world.store.predict_online(world.uri, columns).predictions == expected
    assert world.store.predict(world.uri, world.entity_df()).column("prediction").to_pylist() == expected
    online = world.store.predict_online(world.uri, columns)
    features = answer.json()["features"]
    assert features["metadata"]["feature_names"] == COLUMNS
    for name, result in zip(COLUMNS, features["results"]):  # the model saw the same inputs
        assert result["values"] == online.features.column(name).to_pylist(), name
        assert result["statuses"] == online.statuses[name], name
    champion = client.post("/predict/trip_model", json={**body, "include_features": False})
    assert champion.json()["predictions"] == expected
