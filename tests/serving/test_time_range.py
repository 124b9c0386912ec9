"""Times out of range are a 422 over HTTP, never a 500 (featurestore/clock.py: TimeRange)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from .conftest import NOW

ROW = {"driver_id": [1001], "conv_rate": [0.1], "acc_rate": [0.2], "avg_daily_trips": [3]}


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
                                (NOW + timedelta(days=2)).isoformat(), "1969-07-20T20:17:40Z"])
def test_a_push_out_of_range_is_a_422(client, at):
    response = client.post("/push", json={"push_source_name": "driver_stats_push",
                                          "df": {**ROW, "event_timestamp": [at]}, "to": "online_and_offline"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["type"] == "InputError" and "event_timestamp" in response.text


@pytest.mark.parametrize("body, why", [
    ({"end_ts": "9999-12-31T23:59:59Z"}, "more than 1d after now"),
    ({"start_ts": "0001-01-01T00:00:00+14:00", "end_ts": "now"}, "outside the years 1..9999"),
    ({"start_ts": "1900-01-01T00:00:00Z", "end_ts": "now"}, "before 1970-01-01"),
])
def test_a_materialize_window_out_of_range_is_a_422_and_moves_no_watermark(client, store, body, why):
    before = store.materializer.watermark("driver_hourly_stats")
    response = client.post("/materialize", json=body)
    assert response.status_code == 422, response.text
    assert why in response.json()["error"]["message"]
    incremental = client.post("/materialize-incremental", json={"end_ts": "9999-12-31T23:59:59Z"})
    assert incremental.status_code == 422 and "more than 1d after now" in incremental.text
    assert store.materializer.watermark("driver_hourly_stats") == before


def test_now_is_the_stores_clock(client, store):
    response = client.post("/materialize-incremental", json={"end_ts": "now"})
    assert response.status_code == 200, response.text
    assert {v["end"] for v in response.json()["views"]} == {NOW.isoformat()}
