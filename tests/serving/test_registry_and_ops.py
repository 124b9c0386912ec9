"""Browsing the registry, /health, /ready, /metrics, /docs, and serving a new apply."""

from __future__ import annotations

import textwrap

from prometheus_client import REGISTRY

from .conftest import NOW, REFS, open_store


def test_registry_browse(client):
    views = client.get("/registry/feature-views").json()["feature_views"]
    assert [v["name"] for v in views] == ["driver_hourly_stats", "driver_hourly_stats_fresh"]
    one = client.get("/registry/feature-views/driver_hourly_stats").json()
    assert one["kind"] == "feature_view" and one["version"] == 1
    assert [f["name"] for f in one["spec"]["schema"]] == ["driver_id", "conv_rate", "acc_rate", "avg_daily_trips"]
    assert one["spec"]["ttl_seconds"] == 86400
    missing = client.get("/registry/feature-views/driver_hourly")
    assert missing.status_code == 404
    assert "driver_hourly_stats" in missing.json()["error"]["message"]
    assert [e["name"] for e in client.get("/registry/entities").json()["entities"]] == ["driver"]
    services = client.get("/registry/feature-services").json()["feature_services"]
    assert [s["name"] for s in services] == ["driver_activity_v1"]
    sources = client.get("/registry/data-sources").json()["data_sources"]
    assert {s["spec"]["type"] for s in sources} == {"file", "push"}


def test_health_ready_and_openapi(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["online_store"] == "sqlite" and ready["registry_revision"] >= 1
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/get-online-features"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"features", "feature_service", "entities", "full_feature_names"} <= set(body["properties"])
    assert "/push" in spec["paths"] and "/registry/feature-views/{name}" in spec["paths"]
    assert client.get("/docs").status_code == 200


def _sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_count_requests_nulls_entities_and_ages(client, store):
    ok = {"endpoint": "/get-online-features", "method": "POST", "status": "200"}
    before = {
        "requests": _sample("featurestore_http_requests_total", **ok),
        "latency": _sample("featurestore_http_request_duration_seconds_count", **ok),
        "not_found": _sample("featurestore_online_null_values_total", feature_view="driver_hourly_stats",
                             reason="not_found"),
        "entities": _sample("featurestore_online_request_entities_sum"),
        "ages": _sample("featurestore_online_value_age_seconds_count", feature_view="driver_hourly_stats"),
        "reads": _sample("featurestore_online_read_duration_seconds_count", store="sqlite"),
        "errors": _sample("featurestore_http_requests_total", endpoint="/get-online-features", method="POST",
                          status="404"),
    }
    body = {"features": REFS, "entities": {"driver_id": [1001, 1002, 4242]}}
    for _ in range(3):
        assert client.post("/get-online-features", json=body).status_code == 200
    client.post("/get-online-features", json={"features": ["nope:x"], "entities": {"driver_id": [1]}})

    assert _sample("featurestore_http_requests_total", **ok) == before["requests"] + 3
    assert _sample("featurestore_http_request_duration_seconds_count", **ok) == before["latency"] + 3
    assert _sample("featurestore_online_null_values_total", feature_view="driver_hourly_stats",
                   reason="not_found") == before["not_found"] + 3 * 3  # 3 features of entity 4242
    assert _sample("featurestore_online_request_entities_sum") == before["entities"] + 9
    assert _sample("featurestore_online_value_age_seconds_count",
                   feature_view="driver_hourly_stats") == before["ages"] + 3  # one per request and view
    assert _sample("featurestore_online_read_duration_seconds_count", store="sqlite") == before["reads"] + 3
    assert _sample("featurestore_http_requests_total", endpoint="/get-online-features", method="POST",
                   status="404") == before["errors"] + 1

    text = client.get("/metrics").text
    for name in ("featurestore_http_requests_total", "featurestore_http_request_duration_seconds_bucket",
                 "featurestore_online_read_duration_seconds", "featurestore_online_request_entities",
                 "featurestore_online_null_values_total", "featurestore_online_value_age_seconds"):
        assert name in text
    # Ages are measured from the store's clock: every served row here is exactly 0 s old.
    assert 'featurestore_online_value_age_seconds_bucket{feature_view="driver_hourly_stats",le="1.0"}' in text


def test_a_new_apply_is_served_without_restart(client, repo, clock):
    refs = ["driver_conv_only:conv_rate"]
    request = {"features": refs, "entities": {"driver_id": [1001]}}
    assert client.post("/get-online-features", json=request).status_code == 404

    definitions = repo / "features" / "driver_stats.py"
    definitions.write_text(definitions.read_text() + textwrap.dedent("""
        driver_conv_only = FeatureView(
            name="driver_conv_only", entities=[driver], ttl=timedelta(days=1),
            schema=[Field(name="conv_rate", dtype=Float32)], source=driver_stats_source,
        )
    """))
    with open_store(repo, clock) as other:  # another process's apply, as far as the app knows
        other.apply()
        other.materialize_incremental(NOW, views=["driver_conv_only"])
    state = client.app.state.serving
    assert state.check_registry() is True  # what the watch task does every second
    response = client.post("/get-online-features", json=request)
    assert response.status_code == 200
    assert response.json()["results"][1]["statuses"] == ["PRESENT"]
    assert client.get("/registry/feature-views/driver_conv_only").status_code == 200


def test_jobs_endpoint_and_job_metrics_are_mounted(client):
    jobs = client.get("/jobs").json()["jobs"]
    assert {j["view"] for j in jobs} == {"driver_hourly_stats", "driver_hourly_stats_fresh"}  # the fixture's run
    text = client.get("/metrics").text
    assert 'featurestore_job_runs_total{status="succeeded",trigger="manual",view="driver_hourly_stats"} 1.0' in text
