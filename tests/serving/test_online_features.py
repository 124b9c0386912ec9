"""POST /get-online-features: Feast's request and answer shapes, statuses, and bad input."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from serving.online_json import EPOCH, online_response_json, rfc3339

from .conftest import NOW, REFS

NOW_TEXT = "2024-05-01T12:00:00Z"


def post(client, body, **kwargs):
    return client.post("/get-online-features", json=body, **kwargs)


def test_answer_is_column_major_feast_shape_and_matches_the_python_api(client, store):
    response = post(client, {"features": REFS, "entities": {"driver_id": [1001, 9999, 1002]}})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["metadata"] == {"feature_names": ["driver_id", "conv_rate", "acc_rate", "avg_daily_trips"]}
    keys, conv, acc, trips = body["results"]
    assert keys == {"values": [1001, 9999, 1002], "statuses": ["PRESENT"] * 3, "event_timestamps": [EPOCH] * 3}
    assert conv["statuses"] == ["PRESENT", "NOT_FOUND", "PRESENT"]
    assert conv["event_timestamps"] == [NOW_TEXT, EPOCH, NOW_TEXT]
    assert conv["values"][1] is None and trips["values"][1] is None

    expected = store.get_online_features(REFS, {"driver_id": [1001, 9999, 1002]})
    for result, values, statuses in zip(body["results"], expected.values, expected.statuses):
        assert result["values"] == values  # floats survive JSON exactly (shortest repr)
        assert result["statuses"] == statuses
    assert isinstance(trips["values"][0], int)


def test_feature_service_and_full_feature_names(client):
    body = post(client, {"feature_service": "driver_activity_v1", "entities": {"driver_id": [1003]},
                         "full_feature_names": True}).json()
    assert body["metadata"]["feature_names"] == [
        "driver_id", "driver_hourly_stats__conv_rate", "driver_hourly_stats__acc_rate",
        "driver_hourly_stats_fresh__avg_daily_trips",
    ]
    # materialize_incremental loaded the push-fed view from its batch source too.
    assert [r["statuses"] for r in body["results"]] == [["PRESENT"]] * 4


def test_values_older_than_the_ttl_are_outside_max_age(client, clock):
    clock.now = NOW + timedelta(days=1, seconds=1)
    conv = post(client, {"features": REFS[:1], "entities": {"driver_id": [1001]}}).json()["results"][1]
    assert conv == {"values": [None], "statuses": ["OUTSIDE_MAX_AGE"], "event_timestamps": [NOW_TEXT]}


def test_feast_client_extras_are_ignored_and_rows_may_be_a_list(client):
    body = {"features": REFS[:1], "entities": [{"driver_id": 1001}], "api_version": 1, "query_embedding": None}
    response = post(client, body)
    assert response.status_code == 200
    assert response.json()["results"][1]["statuses"] == ["PRESENT"]


def test_no_entities_gives_empty_columns(client):
    body = post(client, {"features": REFS[:1], "entities": {"driver_id": []}}).json()
    assert body["results"] == [{"values": [], "statuses": [], "event_timestamps": []}] * 2


@pytest.mark.parametrize(
    ("body", "status", "error_type", "words"),
    [
        ({"features": ["driver_hourly_stats:conv_rat"], "entities": {"driver_id": [1]}}, 404, "NotFoundError",
         ["conv_rat", "conv_rate"]),
        ({"features": ["driver_hourly_stat:conv_rate"], "entities": {"driver_id": [1]}}, 404, "NotFoundError",
         ["driver_hourly_stat", "driver_hourly_stats"]),
        ({"feature_service": "driver_activity", "entities": {"driver_id": [1]}}, 404, "NotFoundError",
         ["feature service", "driver_activity_v1"]),
        ({"features": REFS, "entities": {"driver": [1]}}, 422, "InputError", ["driver_id"]),
        ({"features": REFS, "entities": {"driver_id": ["driver-1001"]}}, 422, "InputError", ["driver_id", "Int64"]),
        ({"features": REFS, "entities": {"driver_id": [1.5]}}, 422, "InputError", ["driver_id"]),
        ({"features": REFS, "entities": {"driver_id": [[1]]}}, 422, "InputError", ["driver_id"]),
        ({"features": REFS, "entities": {"driver_id": [{"a": 1}]}}, 422, "InputError", ["driver_id"]),
        ({"features": REFS, "entities": "1001"}, 422, "InputError", ["entities"]),
        ({"features": REFS}, 422, "InputError", ["entities"]),
        ({"entities": {"driver_id": [1]}}, 422, "InputError", ["features", "feature_service"]),
        ({"features": REFS, "feature_service": "driver_activity_v1", "entities": {"driver_id": [1]}}, 422,
         "InputError", ["not both"]),
        ({"features": "driver_hourly_stats:conv_rate", "entities": {"driver_id": [1]}}, 422, "InputError", ["list"]),
        ({"features": [["driver_hourly_stats:conv_rate"]], "entities": {"driver_id": [1]}}, 422, "InputError",
         ["list"]),
        ({"features": ["conv_rate"], "entities": {"driver_id": [1]}}, 422, "InputError", ["view_name:feature_name"]),
        ({"features": [], "entities": {"driver_id": [1]}}, 422, "InputError", ["no features"]),
        ({"feature_service": 7, "entities": {"driver_id": [1]}}, 422, "InputError", ["feature_service"]),
        ({"features": REFS, "entities": {"driver_id": [1]}, "full_feature_names": "yes"}, 422, "InputError",
         ["full_feature_names"]),
        ({"features": REFS, "entities": {"driver_id": [1, 2], "other": [1]}}, 200, None, []),
        ([1, 2], 422, "InputError", ["JSON object"]),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(client, body, status, error_type, words):
    response = post(client, body)
    assert response.status_code == status, response.text
    if error_type:
        error = response.json()["error"]
        assert error["type"] == error_type
        for word in words:
            assert word in error["message"]


def test_malformed_json_is_400(client):
    for raw in (b"{", b"", b"\xff\xfe", b'{"features": [}'):
        response = client.post("/get-online-features", content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "BadRequest"


def test_entity_and_body_limits(repo, clock):
    from fastapi.testclient import TestClient

    from serving import create_app

    from .conftest import open_store

    with open_store(repo, clock, max_entities=3, max_body_bytes=300) as store:
        store.apply()
        with TestClient(create_app(store, watch_interval=0)) as client:
            ok = post(client, {"features": REFS[:1], "entities": {"driver_id": [1, 2, 3]}})
            assert ok.status_code == 200
            many = post(client, {"features": REFS[:1], "entities": {"driver_id": [1, 2, 3, 4]}})
            assert many.status_code == 422
            assert "max_entities" in many.json()["error"]["message"]
            big = {"features": REFS * 10, "entities": {"driver_id": [1]}}
            too_large = post(client, big)
            assert too_large.status_code == 413
            assert too_large.json()["error"]["type"] == "PayloadTooLarge"

            def chunks():  # no Content-Length: the limit is enforced while reading
                yield json.dumps(big).encode()

            streamed = client.post("/get-online-features", content=chunks())
            assert streamed.status_code == 413


def test_unknown_route_and_method_use_the_error_body(client):
    missing = client.get("/no-such-thing")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "NotFound"
    wrong = client.get("/get-online-features")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["type"] == "MethodNotAllowed"


def test_rfc3339_formats_like_protobuf_timestamps():
    assert rfc3339(None) == EPOCH
    assert rfc3339(0) == EPOCH
    assert rfc3339(1_714_564_800_000_000) == "2024-05-01T12:00:00Z"
    assert rfc3339(1_714_564_800_250_000) == "2024-05-01T12:00:00.250Z"
    assert rfc3339(1_714_564_800_000_001) == "2024-05-01T12:00:00.000001Z"
    assert rfc3339(-1_000_000) == "1969-12-31T23:59:59Z"


def test_non_finite_floats_become_null():
    from featurestore.online.read import OnlineResponse

    response = OnlineResponse(["x"], [[float("nan"), 1.5, float("inf")]], [["PRESENT"] * 3], [[None] * 3], [None])
    assert json.loads(online_response_json(response))["results"][0]["values"] == [None, 1.5, None]


def test_a_server_that_opened_its_repo_keeps_startup_objects_out_of_garbage_collection(store):
    import gc

    from fastapi.testclient import TestClient

    from serving import create_app

    before = gc.get_freeze_count()
    try:
        with TestClient(create_app(store.repo_path, watch_interval=0)) as client:
            assert gc.get_freeze_count() > before
            answer = client.post("/get-online-features", json={"features": REFS, "entities": {"driver_id": [1001]}})
            assert answer.status_code == 200 and answer.json()["results"][0]["values"] == [1001]
    finally:
        gc.unfreeze()
