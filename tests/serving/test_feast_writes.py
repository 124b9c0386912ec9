"""Writes as Feast's clients make them: POST /write-to-online-store, a push that ignores
columns no view reads and reaches every view over the same batch source, and /materialize
with Feast's disable_event_timestamp."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pyarrow.parquet as pq

from .conftest import NOW

STATS = ["driver_hourly_stats:conv_rate", "driver_hourly_stats:avg_daily_trips"]


def online(client, refs, driver):
    results = client.post("/get-online-features", json={"features": refs, "entities": {"driver_id": [driver]}}).json()
    return [(r["values"][0], r["statuses"][0]) for r in results["results"][1:]]


def feast_rows(driver=1001, ts=NOW, conv=0.125, trips=42):
    # The columns Feast's remote online store sends: naive UTC ISO times named
    # event_timestamp and created, whatever the source calls them.
    return {"driver_id": [driver], "conv_rate": [conv], "acc_rate": [0.5], "avg_daily_trips": [trips],
            "event_timestamp": [ts.replace(tzinfo=None).isoformat()], "created": [None]}


def test_write_to_online_store_writes_one_view_newer_event_time_wins(client):
    body = {"feature_view_name": "driver_hourly_stats", "df": feast_rows(), "allow_registry_cache": False}
    response = client.post("/write-to-online-store", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"feature_view_name": "driver_hourly_stats", "rows": 1}
    assert online(client, STATS, 1001) == [(0.125, "PRESENT"), (42, "PRESENT")]
    older = {"feature_view_name": "driver_hourly_stats", "df": feast_rows(ts=NOW - timedelta(hours=2), trips=1)}
    assert client.post("/write-to-online-store", json=older).status_code == 200
    assert online(client, STATS, 1001) == [(0.125, "PRESENT"), (42, "PRESENT")]
    # Only that view: the push-fed view over the same data is untouched.
    assert online(client, ["driver_hourly_stats_fresh:avg_daily_trips"], 1001)[0][0] != 42


def test_bad_writes_to_the_online_store_are_4xx_and_write_nothing(client):
    before = online(client, STATS, 1001)
    cases = [
        ({"feature_view_name": "driver_hourly_stat", "df": feast_rows()}, 404, "driver_hourly_stats"),
        ({"feature_view_name": "driver_hourly_stats", "df": {**feast_rows(), "conv_rate": ["high"]}}, 422,
         "conv_rate"),
        ({"feature_view_name": "driver_hourly_stats",
          "df": {k: v for k, v in feast_rows().items() if k != "event_timestamp"}}, 422, "event_timestamp"),
        ({"df": feast_rows()}, 422, "feature_view_name"),
    ]
    for body, status, word in cases:
        response = client.post("/write-to-online-store", json=body)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["error"]["message"], response.text
    assert online(client, STATS, 1001) == before


def test_push_ignores_columns_no_view_reads(client):
    rows = {**feast_rows(driver=7001), "event_timestamp": [NOW.isoformat()], "trip_note": ["late"]}
    response = client.post("/push", json={"push_source_name": "driver_stats_push", "df": rows})
    assert response.status_code == 200, response.text
    assert online(client, ["driver_hourly_stats_fresh:avg_daily_trips"], 7001) == [(42, "PRESENT")]


def test_an_offline_push_reaches_every_view_over_the_same_batch_source(client, store, repo):
    later = NOW + timedelta(hours=1)
    rows = {**feast_rows(driver=1001, conv=0.5), "event_timestamp": [later.isoformat()], "extra": [1]}
    assert client.post("/push", json={"push_source_name": "driver_stats_push", "df": rows,
                                      "to": "offline"}).status_code == 200
    entity_df = pl.DataFrame({"driver_id": [1001], "event_timestamp": [later + timedelta(minutes=5)]})
    training = store.get_historical_features(
        entity_df, ["driver_hourly_stats:conv_rate", "driver_hourly_stats_fresh:avg_daily_trips"],
        full_feature_names=True).to_polars()
    # driver_hourly_stats reads the FileSource the push source writes to, as in Feast.
    assert training["driver_hourly_stats__conv_rate"].to_list() == [0.5]
    assert training["driver_hourly_stats_fresh__avg_daily_trips"].to_list() == [42]
    [pushed] = (repo / "data").rglob("pushed/**/*.parquet")
    assert "extra" not in pq.read_schema(pushed).names


def test_materialize_with_disable_event_timestamp_loads_every_row_up_to_now(repo, clock):
    from fastapi.testclient import TestClient

    from serving import create_app

    from .conftest import open_store

    with open_store(repo, clock) as store:
        store.apply()
        with TestClient(create_app(store, watch_interval=0)) as client:
            response = client.post("/materialize", json={
                "start_ts": NOW.isoformat(), "end_ts": NOW.isoformat(), "feature_views": ["driver_hourly_stats"],
                "disable_event_timestamp": True, "full_feature_names": False})
            assert response.status_code == 200, response.text
            [view] = response.json()["views"]
            assert view["start"] is None and view["end"] == NOW.isoformat()
            versioned = client.post("/materialize", json={"end_ts": NOW.isoformat(), "version": "v2"})
            assert versioned.status_code == 422 and "leave 'version' out" in versioned.json()["error"]["message"]
