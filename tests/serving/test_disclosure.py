"""A caller without a valid API key learns nothing of the server's insides: no file path,
Redis host or pid in a 503, in /ready or in /jobs; a key holder sees the details. Also
/metrics behind a key when configured, no Host-built redirects, secrets masked in reprs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from featurestore.config import ServingConfig, load_config
from featurestore.jobs.locks import owner_id
from serving import create_app
from serving.disclosure import scrub

from .conftest import NOW, REFS, open_store

KEY = "k-0123456789abcdef"
READ = {"features": REFS, "entities": {"driver_id": [1001]}}


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def _keys(**extra) -> ServingConfig:
    return ServingConfig(api_keys=(KEY,), **extra)


def _message(response) -> str:
    return response.json()["error"]["message"]


def test_an_unreachable_online_store_is_named_not_located(repo, clock):
    port = _dead_port()
    with open_store(repo, clock, env={"FEATURESTORE_REDIS_URL": f"redis://:pw@127.0.0.1:{port}/0"}) as store:
        store.apply()
        with TestClient(create_app(store, serving=_keys(), watch_interval=0)) as client:
            for path, send in (("/get-online-features", lambda h: client.post(path, json=READ, headers=h)),
                               ("/ready", lambda h: client.get(path, headers=h))):
                public = send({})
                assert public.status_code == 503
                assert "online store" in _message(public)
                assert str(port) not in public.text and "127.0.0.1" not in public.text, path
                detailed = send({"X-API-Key": KEY})
                assert f"127.0.0.1:{port}" in _message(detailed), path
                assert "pw" not in detailed.text  # even a key holder never sees the password


def test_an_unreadable_registry_is_named_not_located(store, repo, clock, damage_registry):
    path = Path(store.registry.path)
    store.close()
    damage_registry(path)
    with open_store(repo, clock) as reopened, \
            TestClient(create_app(reopened, serving=_keys(), watch_interval=0)) as client:
        for route in ("/jobs", "/registry/feature-views", "/ready"):
            public = client.get(route)
            assert public.status_code == 503 and "registry" in _message(public)
            assert str(path.parent) not in public.text, route
            assert "malformed" in _message(client.get(route, headers={"X-API-Key": KEY})), route


def test_job_owners_and_errors_carry_no_host_pid_or_path_without_a_key(store, repo):
    jobs = store.registry.jobs
    owner = owner_id("backfill")
    record = jobs.start(store.project, "driver_hourly_stats", "backfill", None, NOW, owner)
    jobs.finish(store.project, record.id, "failed",
                error=f"SQLite online store at {repo}/data/online.db failed: disk I/O error; lock held by {owner}")
    with TestClient(create_app(store, serving=_keys(), watch_interval=0)) as client:
        [public] = client.get("/jobs", params={"failed": "true"}).json()["jobs"]
        assert public["owner"] == "backfill"
        assert str(repo) not in public["error"] and socket.gethostname() not in public["error"]
        assert "disk I/O error" in public["error"]  # what went wrong stays
        [full] = client.get("/jobs", params={"failed": "true"}, headers={"X-API-Key": KEY}).json()["jobs"]
        assert full["owner"] == owner and str(repo) in full["error"]


def test_scrub_keeps_the_words_and_drops_the_places():
    text = ("feature view 'v' is being run by scheduler on box-1.example (pid 4242); cannot reach the Redis "
            "online store at redis://10.0.0.5:6379/0 (Connection refused); file /srv/repo/data/x.parquet "
            "and ~/repo/y; see /docs; 1/2 and/or")
    out = scrub(text)
    assert "box-1" not in out and "4242" not in out and "10.0.0.5" not in out and "/srv" not in out
    assert "~/repo" not in out
    assert "scheduler" in out and "Connection refused" in out and "/docs" in out and "1/2 and/or" in out


def test_metrics_need_a_key_when_auth_metrics_is_set(store):
    with TestClient(create_app(store, serving=_keys(), watch_interval=0)) as client:
        assert client.get("/metrics").status_code == 200  # the default: open, for Prometheus
    with TestClient(create_app(store, serving=_keys(auth_metrics=True), watch_interval=0)) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": "wrong"}).status_code == 403
        assert client.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200


def test_auth_metrics_is_read_from_featurestore_yaml(repo):
    config_file = repo / "featurestore.yaml"
    config_file.write_text(config_file.read_text() + "serving:\n  auth_metrics: true\n")
    assert load_config(repo, env={}).serving.auth_metrics is True


@pytest.mark.parametrize("path", ["/jobs/", "/registry/feature-views/", "/metrics/", "/push/"])
def test_a_trailing_slash_is_a_404_not_a_redirect_built_from_the_host_header(client, path):
    response = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
    assert response.status_code == 404
    assert "location" not in response.headers and "evil.example" not in response.text


def test_config_reprs_mask_the_redis_password_and_the_api_keys(repo):
    env = {"FEATURESTORE_REDIS_URL": "redis://user:s3cret@cache:6379/0", "FEATURESTORE_API_KEYS": "key-one,key-two",
           "FEATURESTORE_REGISTRY": "postgresql://reg:pa55@db/registry"}
    config = load_config(repo, env=env)
    for shown in (repr(config), str(config), repr(config.online_store), repr(config.serving)):
        assert "s3cret" not in shown and "key-one" not in shown and "key-two" not in shown and "pa55" not in shown
    assert "redis://user:***@cache:6379/0" in repr(config) and "<2 hidden>" in repr(config)
    assert config.online_store.connection_string.endswith("s3cret@cache:6379/0")  # the value itself is intact
