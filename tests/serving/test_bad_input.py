"""Hostile and odd input: always a 4xx with the error body, never a 500."""

from __future__ import annotations

import pytest

from .conftest import NOW

WEIRD = [2**70, -(2**70), 1e308, "x", None, True, [1], {"a": 1}, [], "", 0.5]
PUSH_ROW = {"driver_id": [1001], "event_timestamp": [NOW.isoformat()], "conv_rate": [0.1], "acc_rate": [0.2],
            "avg_daily_trips": [3]}


def assert_not_5xx(response):
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"type", "message"}


@pytest.mark.parametrize("column", list(PUSH_ROW))
def test_push_values_of_any_json_type(client, column):
    for value in WEIRD:
        df = {**PUSH_ROW, column: [value]}
        assert_not_5xx(client.post("/push", json={"push_source_name": "driver_stats_push", "df": df}))


def test_push_frames_of_any_shape(client):
    for df in ([], [{}], [{"driver_id": 1}], {"driver_id": []}, {}, [1, 2], {"driver_id": 5}):
        assert_not_5xx(client.post("/push", json={"push_source_name": "driver_stats_push", "df": df}))


@pytest.mark.parametrize("field", ["features", "feature_service", "entities", "full_feature_names"])
def test_online_request_fields_of_any_json_type(client, field):
    for value in [*WEIRD, *([v] for v in WEIRD)]:
        body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}, field: value}
        assert_not_5xx(client.post("/get-online-features", json=body))
        body = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": value}}
        assert_not_5xx(client.post("/get-online-features", json=body))


@pytest.mark.parametrize("path", ["/materialize", "/materialize-incremental"])
def test_materialize_fields_of_any_json_type(client, path):
    for field in ("start_ts", "end_ts", "feature_views"):
        for value in [*WEIRD, [5]]:
            assert_not_5xx(client.post(path, json={"end_ts": NOW.isoformat(), field: value}))


def test_deeply_nested_json_is_400(client):
    response = client.post("/get-online-features", content=b"[" * 100_000)
    assert response.status_code == 400


@pytest.mark.parametrize("column, value", [("avg_daily_trips", True), ("conv_rate", "0.5"), ("driver_id", "1001"),
                                           ("avg_daily_trips", "3")])
def test_a_push_value_of_the_wrong_json_type_is_a_422(client, column, value):
    df = {**PUSH_ROW, column: [value]}
    response = client.post("/push", json={"push_source_name": "driver_stats_push", "df": df, "to": "online"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "SchemaError" and column in response.json()["error"]["message"]
