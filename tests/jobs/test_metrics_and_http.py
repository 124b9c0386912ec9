"""Job metrics read from the registry, and GET /jobs."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from monitoring.jobs import JobMetricsCollector, render_job_metrics
from serving import create_app
from serving.routes import jobs as job_routes

from .conftest import NOW, VIEW, Clock, days


@pytest.fixture
def history(store):
    """Three manual runs of VIEW (one failed) and one of the other view."""
    store.materialize(NOW - days(2), NOW - days(1), [VIEW])
    store.materialize(NOW - days(1), NOW)
    store.offline.fail[(NOW, NOW + days(1))] = 1  # the store reads through a FaultyEngine (conftest)
    with pytest.raises(OSError):
        store.materialize(NOW, NOW + days(1), [VIEW])
    return store


def samples(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_job_metrics_come_from_the_job_records(history):
    last_success = max(r.ended_at for r in history.registry.jobs.list(history.project, statuses=["succeeded"],
                                                                       target=VIEW))
    clock = Clock(last_success.timestamp() + 90)
    values = {}
    for family in JobMetricsCollector(history.registry, history.project, clock).collect():
        for s in family.samples:
            values[(s.name, tuple(sorted(s.labels.items())))] = s.value
    manual = (("trigger", "manual"), ("view", VIEW))
    assert values[("featurestore_job_runs_total", (("status", "succeeded"), *manual))] == 2
    assert values[("featurestore_job_runs_total", (("status", "failed"), *manual))] == 1
    assert values[("featurestore_job_failures_total", manual)] == 1
    assert values[("featurestore_job_rows_written_total", manual)] == 10
    assert values[("featurestore_job_duration_seconds_count", manual)] == 3
    assert values[("featurestore_job_duration_seconds_bucket", (("le", "+Inf"), *manual))] == 3
    assert values[("featurestore_view_materialization_age_seconds", (("view", VIEW),))] == pytest.approx(90)
    assert ("featurestore_view_materialization_age_seconds", (("view", "driver_hourly_stats_fresh"),)) in values


def test_rendered_job_metrics_parse_as_prometheus_text(history):
    parsed = samples(render_job_metrics(history.registry, history.project).decode())
    assert parsed[("featurestore_job_failures_total", (("trigger", "manual"), ("view", VIEW)))] == 1


def test_no_runs_no_series(store):
    text = render_job_metrics(store.registry, store.project).decode()
    assert "featurestore_job_duration_seconds" in text  # described...
    assert 'view="' not in text  # ...with no series yet


@pytest.fixture
def client(history):
    app = create_app(history, watch_interval=0)
    app.include_router(job_routes.router)
    with TestClient(app) as c:
        yield c


def test_get_jobs_lists_runs_newest_first_with_filters(client, history):
    body = client.get("/jobs").json()
    assert [(j["view"], j["status"]) for j in body["jobs"]] == [
        (VIEW, "failed"), ("driver_hourly_stats_fresh", "succeeded"), (VIEW, "succeeded"), (VIEW, "succeeded")]
    first = body["jobs"][0]
    assert first["trigger"] == "manual" and first["window_start"] == NOW.isoformat()
    assert "OSError" in first["error"] and first["rows"] is None
    assert len(client.get("/jobs", params={"view": VIEW}).json()["jobs"]) == 3
    assert [j["status"] for j in client.get("/jobs", params={"failed": "true"}).json()["jobs"]] == ["failed"]
    assert len(client.get("/jobs", params=[("status", "succeeded"), ("status", "failed")]).json()["jobs"]) == 4
    assert len(client.get("/jobs", params={"limit": 1}).json()["jobs"]) == 1
    assert client.get("/jobs", params={"trigger": "backfill"}).json() == {"jobs": []}


def test_get_jobs_rejects_bad_filters_with_a_json_error(client):
    bad = client.get("/jobs", params={"status": "exploded"})
    assert 400 <= bad.status_code < 500
    assert "exploded" in bad.json()["error"]["message"]
    assert client.get("/jobs", params={"limit": 0}).status_code == 422
