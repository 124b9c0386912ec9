"""Metrics of a real two-worker server (prometheus_client's multiprocess files): every
worker adds its request metrics in batches (monitoring.metric_batches), so a scrape
answered by either worker soon counts each /predict request exactly once, in every series
a request touches; a worker that stops adds what it still held."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from .served import Server, wait_for

pytestmark = pytest.mark.integration

SERIES = [
    'featurestore_http_requests_total{endpoint="/predict/{model:path}",method="POST",status="200"}',
    'featurestore_http_request_duration_seconds_count{endpoint="/predict/{model:path}",method="POST",status="200"}',
    'featurestore_http_request_duration_seconds_bucket{endpoint="/predict/{model:path}",le="+Inf",method="POST",status="200"}',
    'featurestore_predictions_total{model="scaled",status="ok",variant="stable",version="1"}',
    'featurestore_prediction_duration_seconds_count{model="scaled",stage="features"}',
    'featurestore_prediction_duration_seconds_count{model="scaled",stage="transform"}',
    'featurestore_prediction_duration_seconds_count{model="scaled",stage="model"}',
    'featurestore_online_read_duration_seconds_count{store="redis"}',
    'featurestore_online_request_entities_count',
    'featurestore_online_value_age_seconds_count{feature_view="driver_hourly_stats"}',
    'featurestore_online_null_values_total{feature_view="driver_hourly_stats",reason="not_found"}',  # driver 9999
]


def values(text: str) -> dict[str, float]:
    """The value of each of SERIES in an exposition text (labels sorted by name)."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_]+)(?:\{(.*)\})? (\S+)", line)
        if match:
            name, labels, value = match.groups()
            pairs = sorted(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', labels or ""))
            key = name + ("{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}" if pairs else "")
            found[key] = float(value)
    return {series: found.get(series, 0.0) for series in SERIES}


def test_two_workers_count_every_prediction_once_in_every_series_and_a_stopping_worker_adds_what_it_held(
        prediction_server, tmp_path):
    folder = tmp_path / "metrics"
    server = Server(prediction_server.repo, "--workers", "2", "--no-access-log", "--watch-interval", "0",
                    env={**prediction_server.env, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    # A connection per request, so both workers take some (`Connection: close`: see
    # test_serving_log.py on why not a pool without keep-alive).
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.port}", headers={"Connection": "close"})
    body = {"entities": {"driver_id": [1001, 9999]}}

    def send(count: int) -> None:
        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(lambda _: http.post("/predict/scaled/1", json=body).status_code, range(count)))
        assert codes == [200] * count

    try:
        wait_for(lambda: server.client.get("/ready").status_code == 200, "the two workers to be ready")
        send(60)
        expected = dict.fromkeys(SERIES, 60.0)
        wait_for(lambda: values(server.client.get("/metrics").text) == expected,
                 "a scrape to count each of the 60 requests once", 10)
        # Two entities a request, and the +Inf bucket is the count: buckets, sum and count add up.
        text = server.client.get("/metrics").text
        assert re.search(r"^featurestore_online_request_entities_sum 120\.0$", text, re.M)
        send(30)  # then stopped at once: what a worker has not added yet, it adds as it stops
    finally:
        http.close()
        server.stop()
    assert server.proc.returncode == 0, server.output[-3000:]
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(folder))
    assert values(generate_latest(registry).decode()) == dict.fromkeys(SERIES, 90.0)
