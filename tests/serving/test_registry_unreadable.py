"""An unreadable registry file is a 503 with the JSON error body on every route that
reads it, never a 500 with a traceback; /metrics still answers with what it can."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving import create_app

from .conftest import REFS, open_store

KEY = "k-registry"


@pytest.fixture
def damaged(store, repo, clock, damage_registry):
    """A server started on a registry whose tables can no longer be read."""
    path = Path(store.registry.path)
    store.close()
    damage_registry(path)
    # A key holder: the answers carry the registry's own message (a caller without a key
    # gets "the registry cannot be read", tests/serving/test_disclosure.py).
    with open_store(repo, clock, api_keys=(KEY,)) as reopened, \
            TestClient(create_app(reopened, watch_interval=0), headers={"X-API-Key": KEY}) as client:
        yield client


def _assert_registry_error(response) -> None:
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "RegistryError"
    assert "registry" in error["message"] and "malformed" in error["message"]


@pytest.mark.parametrize("path", [
    "/registry/entities",
    "/registry/data-sources",
    "/registry/feature-views",
    "/registry/feature-views/driver_hourly_stats",
    "/registry/feature-services/driver_activity_v1",
    "/jobs",
    "/jobs?view=driver_hourly_stats&failed=true",
])
def test_registry_reads_answer_503_with_the_error_body(damaged, caplog, path):
    with caplog.at_level(logging.WARNING, logger="featurestore"):
        _assert_registry_error(damaged.get(path))
    assert not [r for r in caplog.records if r.exc_info], "a registry failure must not log a traceback"


def test_online_features_answer_503_when_the_definitions_cannot_be_loaded(damaged):
    response = damaged.post("/get-online-features", json={"features": REFS, "entities": {"driver_id": [1001]}})
    _assert_registry_error(response)


def test_ready_says_the_registry_is_not_loaded(damaged):
    response = damaged.get("/ready")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["type"] == "NotReady" and "cannot read the registry" in error["message"]


def test_metrics_leave_out_the_job_metrics_with_one_warning(damaged, caplog):
    with caplog.at_level(logging.WARNING, logger="featurestore"):
        response = damaged.get("/metrics")
    assert response.status_code == 200
    assert "featurestore_job_runs_total" not in response.text
    [warning] = [r for r in caplog.records if "job metrics left out" in r.getMessage()]
    assert "malformed" in warning.getMessage() and warning.exc_info is None
