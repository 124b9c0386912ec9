"""``POST /predict/{model}`` on a real server and Redis: the model's answer on the features
read online, as the store's own Python call gives it; include_features, request ids,
missing features and the errors, each a JSON answer."""

from __future__ import annotations

import pyarrow.compute as pc

from .prediction_server import PredictionServer
from .served import wait_for

DRIVERS = [1001, 1002]


def predict(served: PredictionServer, model: str, body: dict, **headers):
    return served.client.post(f"/predict/{model}", json=body, headers=headers)


def test_predictions_are_the_models_answer_on_the_online_features(prediction_server):
    answer = predict(prediction_server, "driver_model", {"entities": {"driver_id": DRIVERS}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    with prediction_server.store() as store:
        expected = store.predict_online("driver_model/1", {"driver_id": DRIVERS}).predictions
    assert body["predictions"] == expected and len(set(expected)) == 2
    assert (body["model"], body["version"], body["variant"]) == ("driver_model", 1, "stable")
    assert answer.headers["X-Request-ID"] == body["request_id"] and len(body["request_id"]) == 32
    assert "features" not in body
    for uri in ("driver_model@champion", "driver_model/1"):
        assert predict(prediction_server, uri, {"entities": {"driver_id": DRIVERS}}).json()["predictions"] == expected
    rows = predict(prediction_server, "driver_model", {"entities": [{"driver_id": 1001}, {"driver_id": 1002}]})
    assert rows.json()["predictions"] == expected


def test_include_features_answers_the_inputs_with_their_statuses(prediction_server):
    answer = predict(prediction_server, "driver_model/1",
                     {"entities": {"driver_id": [1001, 9999]}, "include_features": True})
    assert answer.status_code == 200, answer.text
    features = answer.json()["features"]
    assert features["metadata"]["feature_names"] == ["conv_rate", "acc_rate", "avg_daily_trips"]
    with prediction_server.store() as store:
        online = store.get_online_features(["driver_hourly_stats:conv_rate"], {"driver_id": [1001]}).to_dict()
    conv_rate = features["results"][0]
    assert conv_rate["statuses"] == ["PRESENT", "NOT_FOUND"]
    assert conv_rate["values"][0] == online["conv_rate"][0] and conv_rate["values"][1] is None
    assert conv_rate["event_timestamps"][1] == "1970-01-01T00:00:00Z"
    assert conv_rate["event_timestamps"][0] > "2020"
    # The unknown driver's nulls reach the model (on_missing: null), which answers anyway.
    assert all(isinstance(p, float) for p in answer.json()["predictions"])


def test_a_request_id_is_honoured_and_sent_back_on_errors_too(prediction_server):
    answer = predict(prediction_server, "driver_model", {"entities": {"driver_id": [1001]}},
                     **{"X-Request-ID": "checkout-42"})
    assert answer.json()["request_id"] == "checkout-42" and answer.headers["X-Request-ID"] == "checkout-42"
    failed = predict(prediction_server, "driver_modl", {"entities": {"driver_id": [1001]}},
                     **{"X-Request-ID": "checkout-43"})
    assert failed.status_code == 404 and failed.headers["X-Request-ID"] == "checkout-43"
    bad = predict(prediction_server, "driver_model", {"entities": {"driver_id": [1001]}},
                  **{"X-Request-ID": "no spaces please"})
    assert bad.status_code == 422 and "X-Request-ID" in bad.json()["error"]["message"]
    fresh = {predict(prediction_server, "driver_model", {"entities": {"driver_id": [1001]}}).json()["request_id"]
             for _ in range(2)}
    assert len(fresh) == 2


def test_unknown_models_aliases_and_versions_answer_404_with_what_exists(prediction_server):
    body = {"entities": {"driver_id": [1001]}}
    answer = predict(prediction_server, "driver_modl", body)
    assert answer.status_code == 404
    assert answer.json()["error"] == {"type": "NotFoundError",
                                      "message": answer.json()["error"]["message"]}
    assert "did you mean 'driver_model'" in answer.json()["error"]["message"]
    alias = predict(prediction_server, "driver_model@challengr", body)
    assert alias.status_code == 404 and "champion" in alias.json()["error"]["message"]
    version = predict(prediction_server, "driver_model/7", body)
    assert version.status_code == 404 and "versions 1 to 1" in version.json()["error"]["message"]
    assert predict(prediction_server, "driver_model/x", body).status_code == 422


def test_a_missing_feature_under_on_missing_error_is_a_422_naming_entity_and_feature(prediction_server):
    answer = predict(prediction_server, "strict/1", {"entities": {"driver_id": [1001, 9999]}})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["type"] == "MissingFeatureError"
    assert "'conv_rate'" in error["message"] and "driver_id=9999" in error["message"]
    assert "NOT_FOUND" in error["message"]
    assert predict(prediction_server, "strict/1", {"entities": {"driver_id": [1001]}}).status_code == 200


def test_bad_bodies_are_422_naming_the_field(prediction_server):
    missing_key = predict(prediction_server, "driver_model", {"entities": {"drivr_id": [1001]}})
    assert missing_key.status_code == 422 and "driver_id" in missing_key.json()["error"]["message"]
    flag = predict(prediction_server, "driver_model", {"entities": {"driver_id": [1001]}, "include_features": 1})
    assert flag.status_code == 422 and "include_features" in flag.json()["error"]["message"]
    too_many = predict(prediction_server, "driver_model", {"entities": {"driver_id": list(range(1001, 2002))}})
    assert too_many.status_code == 422 and "serving.max_entities" in too_many.json()["error"]["message"]


def test_model_errors_and_timeouts_are_json_answers(prediction_server):
    raised = predict(prediction_server, "raises", {"entities": {"driver_id": [1001]}})
    assert raised.status_code == 500
    assert raised.json()["error"] == {"type": "PredictionError",
                                      "message": "model raises/1 raised ValueError: no prediction for these rows"}
    slow = predict(prediction_server, "slow", {"entities": {"driver_id": [1001]}})
    assert slow.status_code == 504 and slow.json()["error"]["type"] == "ModelTimeout"
    assert predict(prediction_server, "driver_model", {"entities": {"driver_id": [1001]}}).status_code == 200
    metrics = prediction_server.client.get("/metrics").text
    for needle in ('featurestore_predictions_total{model="driver_model",status="ok",variant="stable",version="1"}',
                   'featurestore_prediction_duration_seconds_count{model="driver_model",stage="features"}',
                   'featurestore_prediction_duration_seconds_count{model="driver_model",stage="transform"}',
                   'featurestore_prediction_duration_seconds_count{model="driver_model",stage="model"}',
                   'featurestore_model_info{alias="champion",model="driver_model",version="1"} 1.0'):
        assert needle in metrics, needle
    predict(prediction_server, "driver_modl", {"entities": {"driver_id": [1001]}})  # unknown: never a label
    assert "driver_modl" not in prediction_server.client.get("/metrics").text


def test_each_prediction_reaches_the_serving_log(prediction_server):
    answer = predict(prediction_server, "driver_model", {"entities": {"driver_id": [1001, 9999]}},
                     **{"X-Request-ID": "logged-1"})
    assert answer.status_code == 200, answer.text
    with prediction_server.store() as store:
        def logged():
            logs = store.get_logs("driver_model")
            return logs.filter(pc.equal(logs.column("request_id"), "logged-1")) if logs.num_rows else None

        wait_for(lambda: logged() is not None and logged().num_rows == 2, "the prediction in the serving log", 20)
        rows = logged().to_pydict()
    assert rows["model"] == ["driver_model"] * 2 and rows["version"] == [1, 1] and rows["variant"] == ["stable"] * 2
    assert rows["driver_id"] == [1001, 9999]
    assert rows["conv_rate__status"] == ["PRESENT", "NOT_FOUND"]
    assert rows["prediction"] == answer.json()["predictions"]
