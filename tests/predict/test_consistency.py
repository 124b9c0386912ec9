"""One model, one answer: online, batch and the training pipeline agree.

For ``trip_model`` (trained on a saved dataset of a plain view, an aggregation view and an
on-demand view together), at time T (the store's clock is pinned at ``world.now``):
``store.predict_online`` and ``store.predict(entity_df at T)`` give the same predictions,
equal to ``model.predict`` on the training pipeline's features for those rows
(``world.expected()``). The HTTP leg (``POST /predict/{model}``) reuses the ``world``
fixture of tests/predict/conftest.py: ``create_app(world.store)``, the entities of
``world.entity_columns()`` and ``world.expected()``.
"""

from __future__ import annotations

from datetime import timedelta

from .world import COLUMNS, DRIVERS


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
