"""API keys: writes need one when keys are set; reads too with auth_reads."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient

from featurestore.config import ServingConfig
from serving import create_app
from serving.auth import require_writer

from .conftest import NOW

KEY = "k-0123456789abcdef"
PUSH = {"push_source_name": "driver_stats_push", "df": {
    "driver_id": [1001], "event_timestamp": [NOW.isoformat()], "conv_rate": [0.1], "acc_rate": [0.2],
    "avg_daily_trips": [3]}}
READ = {"features": ["driver_hourly_stats:conv_rate"], "entities": {"driver_id": [1001]}}


@pytest.fixture
def app_with_keys(store):
    def build(auth_reads=False):
        return create_app(store, serving=ServingConfig(api_keys=("other-key", KEY), auth_reads=auth_reads),
                          watch_interval=0)
    return build


def test_writes_need_a_valid_key(app_with_keys, caplog):
    caplog.set_level(logging.DEBUG)
    with TestClient(app_with_keys()) as client:
        missing = client.post("/push", json=PUSH)
        assert missing.status_code == 401
        assert missing.json()["error"]["type"] == "Unauthorized"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = client.post("/push", json=PUSH, headers={"X-API-Key": KEY + "x"})
        assert wrong.status_code == 403
        assert client.post("/materialize-incremental", json={"end_ts": "now"}).status_code == 401
        assert client.post("/push", json=PUSH, headers={"X-API-Key": KEY}).status_code == 200
        assert client.post("/push", json=PUSH, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        # Reads stay open without auth_reads; so do health, readiness, metrics and docs.
        assert client.post("/get-online-features", json=READ).status_code == 200
        for path in ("/health", "/ready", "/metrics", "/docs", "/registry/feature-views"):
            assert client.get(path).status_code == 200, path
    assert KEY not in caplog.text and KEY not in repr(client.app.state.serving.auth)


def test_auth_reads_protects_reads(app_with_keys):
    with TestClient(app_with_keys(auth_reads=True)) as client:
        assert client.post("/get-online-features", json=READ).status_code == 401
        assert client.get("/registry/feature-views").status_code == 401
        assert client.post("/get-online-features", json=READ, headers={"X-API-Key": "nope"}).status_code == 403
        assert client.post("/get-online-features", json=READ, headers={"X-API-Key": KEY}).status_code == 200
        assert client.get("/health").status_code == 200


def test_the_auth_dependency_can_be_overridden(app_with_keys):
    app = app_with_keys()

    async def allow_all() -> None:
        return None

    app.dependency_overrides[require_writer] = allow_all
    with TestClient(app) as client:
        assert client.post("/push", json=PUSH).status_code == 200


def test_without_keys_everything_is_open(client):
    assert client.post("/push", json=PUSH).status_code == 200
