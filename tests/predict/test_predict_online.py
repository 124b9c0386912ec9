"""``store.predict_online``: entity rows in, the model's answers and its inputs out."""

from __future__ import annotations

import pyarrow as pa
import pytest

from featurestore.errors import InputError, MissingFeatureError
from featurestore.models.predict import Predictions

from .world import COLUMNS, DRIVERS, SURGE, TRIP_KM


def test_the_result_carries_the_version_predictions_inputs_and_statuses(world):
    result = world.store.predict_online(world.uri, world.entity_columns())
    assert (result.model, result.version) == ("trip_model", 1)
    data = result.to_dict()
    assert list(data) == ["model", "version", "predictions", "features", "statuses"]
    assert list(data["features"]) == COLUMNS and data["predictions"] == result.predictions
    assert data["statuses"]["conv_rate"] == ["PRESENT", "PRESENT", "PRESENT", "NOT_FOUND"]
    assert data["statuses"]["expected_fare"][3] == "NULL_VALUE"
    table = result.to_arrow()
    assert table.column_names == ["driver_id", *COLUMNS, "prediction"]
    assert table.column("driver_id").to_pylist() == DRIVERS
    assert table.schema.field("driver_id").type == pa.int64()
    assert result.to_df()["prediction"].tolist() == result.predictions


def test_request_fields_may_come_in_request_or_beside_the_keys(world):
    expected = world.store.predict_online(world.uri, world.entity_columns()).predictions
    request = {"trip_km": TRIP_KM, "surge": SURGE}
    assert world.store.predict_online(world.uri, {"driver_id": DRIVERS}, request=request).predictions == expected
    rows = [{"driver_id": d} for d in DRIVERS]
    assert world.store.predict_online(world.uri, rows, request=request).predictions == expected
    with pytest.raises(InputError, match=r"needs request field\(s\) 'trip_km', 'surge'"):
        world.store.predict_online(world.uri, {"driver_id": DRIVERS})
    with pytest.raises(InputError, match=r"request field 'trip_km' must be a list of 4 values"):
        world.store.predict_online(world.uri, rows, request={"trip_km": [1.0], "surge": SURGE})


def test_a_strict_version_refuses_an_unknown_entity(world):
    strict = world.store.models.register("strict_online", world.model, flavor="python",
                                         training_dataset="trip_training", output="completed", on_missing="error")
    with pytest.raises(MissingFeatureError, match=r"strict_online/1: .*'conv_rate'.*NOT_FOUND.*driver_id=9999"):
        world.store.predict_online(strict.uri, world.entity_columns())
    known = {"driver_id": DRIVERS[:3], "trip_km": TRIP_KM[:3], "surge": SURGE[:3]}
    assert world.store.predict_online(strict.uri, known).predictions == world.expected()[:3]


def test_models_are_loaded_once_per_version_and_the_cache_is_bounded(world):
    side = Predictions(world.store, cache_size=1)
    first = side.loaded(world.version)
    assert side.loaded(world.store.models.get(world.uri)) is first
    other = world.store.models.register("cached_model", world.model, flavor="python",
                                        training_dataset="trip_training", output="completed")
    assert side.loaded(other) is not first
    assert side.loaded(world.version) is not first  # evicted by the other one: loaded again


def test_an_alias_move_is_followed_on_the_next_call(world):
    world.store.models.register("moving", world.model, flavor="python", training_dataset="trip_training",
                                output="completed")
    world.store.models.register("moving", world.model, flavor="python", training_dataset="trip_training",
                                output="completed", on_missing="error")
    world.store.models.set_alias("moving", "champion", 1)
    assert world.store.predict_online("moving", world.entity_columns()).version == 1
    world.store.models.set_alias("moving", "champion", 2)
    with pytest.raises(MissingFeatureError):
        world.store.predict_online("moving", world.entity_columns())


def test_a_request_field_input_sent_as_null_is_missing_and_its_status_says_so(world):
    defaults = {"conv_rate": 0.25, "fare_sum_1h": 0.0, "expected_fare": 7.5, "trip_km": 1.0}
    version = world.store.models.register("km_model", world.model, flavor="python", training_dataset="trip_training",
                                          output="completed", request_fields=["trip_km"], on_missing="default",
                                          defaults=defaults)
    rows = [{"driver_id": 1001, "trip_km": None, "surge": 1.0}, {"driver_id": 1002, "trip_km": 2.5, "surge": 1.0}]
    result = world.store.predict_online(version.uri, rows)
    assert result.features.column("trip_km").to_pylist() == [1.0, 2.5]
    assert result.statuses["trip_km"] == ["NULL_VALUE", "PRESENT"]
    assert list(result.to_dict()["features"]) == [*COLUMNS, "trip_km"]


def test_a_pickled_model_predicts_only_when_trusted(world, tmp_path):
    import pickle

    from sklearn.linear_model import LogisticRegression

    from featurestore.errors import ModelError

    training = world.store.get_saved_dataset("trip_training").to_arrow()
    x = training.select(COLUMNS).to_pandas().fillna(0).to_numpy()
    fitted = LogisticRegression().fit(x, training.column("completed").to_numpy())
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(fitted))
    version = world.store.models.register("pickled", tmp_path / "model.pkl", flavor="sklearn", trusted=True,
                                          training_dataset="trip_training", output="completed")
    known = {"driver_id": DRIVERS[:3], "trip_km": TRIP_KM[:3], "surge": SURGE[:3]}
    with pytest.raises(ModelError, match=r"refusing to load pickle file"):
        world.store.predict_online(version.uri, known)
    answer = world.store.predict_online(version.uri, known, trusted=True)
    assert answer.predictions == fitted.predict_proba(answer.features.to_pandas().to_numpy())[:, 1].tolist()
    scored = world.store.predict(version.uri, world.entity_df().slice(0, 3), trusted=True)
    assert scored.column("prediction").to_pylist() == answer.predictions
