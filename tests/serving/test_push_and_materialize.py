"""POST /push, /materialize and /materialize-incremental."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from fastapi.testclient import TestClient

from serving import create_app

from .conftest import NOW, open_store

FRESH = ["driver_hourly_stats_fresh:conv_rate", "driver_hourly_stats_fresh:avg_daily_trips"]


def rows(driver=7001, ts=NOW, conv=0.25, trips=7, **extra):
    return {"driver_id": [driver], "event_timestamp": [ts.isoformat()], "conv_rate": [conv], "acc_rate": [0.5],
            "avg_daily_trips": [trips], **extra}


def read_fresh(client, driver=7001):  # a driver only pushes know
    results = client.post("/get-online-features",
                          json={"features": FRESH, "entities": {"driver_id": [driver]}}).json()["results"]
    return [(r["values"][0], r["statuses"][0]) for r in results[1:]]


def test_push_online_is_served_and_an_older_push_does_not_replace_it(client):
    assert read_fresh(client) == [(None, "NOT_FOUND"), (None, "NOT_FOUND")]
    response = client.post("/push", json={"push_source_name": "driver_stats_push", "df": rows(), "to": "online"})
    assert response.status_code == 200, response.text
    assert response.json() == {"push_source_name": "driver_stats_push", "to": "online", "rows": 1}
    assert read_fresh(client) == [(0.25, "PRESENT"), (7, "PRESENT")]

    older = rows(ts=NOW - timedelta(hours=1), conv=0.75, trips=1)
    assert client.post("/push", json={"push_source_name": "driver_stats_push", "df": older}).status_code == 200
    assert read_fresh(client) == [(0.25, "PRESENT"), (7, "PRESENT")]


def test_push_offline_appears_in_training_sets_only(client, store):
    later = NOW + timedelta(hours=1)
    body = {"push_source_name": "driver_stats_push", "df": rows(ts=later, conv=0.5), "to": "offline"}
    assert client.post("/push", json=body).status_code == 200
    assert read_fresh(client) == [(None, "NOT_FOUND"), (None, "NOT_FOUND")]
    entity_df = pl.DataFrame({"driver_id": [7001], "event_timestamp": [later + timedelta(minutes=5)]})
    training = store.get_historical_features(entity_df, FRESH).to_polars()
    assert training["conv_rate"].to_list() == [0.5]


def test_bad_pushes_are_4xx_and_write_nothing(client):
    cases = [
        ({"push_source_name": "driver_stats_pushh", "df": rows()}, 404, "driver_stats_push"),
        ({"push_source_name": "driver_stats_push", "df": rows(conv="high")}, 422, "conv_rate"),
        ({"push_source_name": "driver_stats_push", "df": {**rows(), "conv_rate": [0.1, 0.2]}}, 422, "uniform"),
        ({"push_source_name": "driver_stats_push", "df": {k: v for k, v in rows().items() if k != "acc_rate"}}, 422,
         "acc_rate"),
        ({"push_source_name": "driver_stats_push", "df": rows(), "to": "everywhere"}, 422, "online_and_offline"),
        ({"push_source_name": "driver_stats_push", "df": {**rows(), "event_timestamp": ["yesterday"]}}, 422,
         "ISO 8601"),
        ({"push_source_name": "driver_stats_push", "df": "driver_id=1"}, 422, "df"),
        ({"df": rows()}, 422, "push_source_name"),
    ]
    for body, status, word in cases:
        response = client.post("/push", json=body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["error"]["message"], response.text
    assert read_fresh(client) == [(None, "NOT_FOUND"), (None, "NOT_FOUND")]


def test_materialize_endpoints(repo, clock):
    with open_store(repo, clock) as store:
        store.apply()
        with TestClient(create_app(store, watch_interval=0)) as client:
            before = client.post("/get-online-features", json={
                "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}).json()
            assert before["results"][1]["statuses"] == ["NOT_FOUND"]

            response = client.post("/materialize", json={
                "start_ts": (NOW - timedelta(days=1)).isoformat(), "end_ts": NOW.isoformat(),
                "feature_views": ["driver_hourly_stats"]})
            assert response.status_code == 200, response.text
            [view] = response.json()["views"]
            assert view["feature_view"] == "driver_hourly_stats" and view["rows"] == 5
            after = client.post("/get-online-features", json={
                "features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}).json()
            assert after["results"][1]["statuses"] == ["PRESENT"]

            incremental = client.post("/materialize-incremental", json={"end_ts": NOW.isoformat()})
            assert incremental.status_code == 200
            views = {v["feature_view"] for v in incremental.json()["views"]}
            assert views == {"driver_hourly_stats", "driver_hourly_stats_fresh"}

            for body, status in [
                ({"end_ts": "tomorrow-ish"}, 422),
                ({"start_ts": NOW.isoformat(), "end_ts": (NOW - timedelta(days=1)).isoformat()}, 422),
                ({"end_ts": NOW.isoformat(), "feature_views": ["nope"]}, 404),
                ({"end_ts": NOW.isoformat(), "feature_views": "driver_hourly_stats"}, 422),
                ({}, 422),
            ]:
                response = client.post("/materialize", json=body)
                assert response.status_code == status, (body, response.text)
            assert client.post("/materialize-incremental", json={"end_ts": 5}).status_code == 422
