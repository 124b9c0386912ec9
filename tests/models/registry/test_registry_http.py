"""``/models`` over HTTP: listings carry aliases, alias moves need an API key."""

from __future__ import annotations

import dataclasses

import pytest
from fastapi.testclient import TestClient

from featurestore import FeatureStore
from featurestore.config import load_config
from serving import create_app

KEY = "s3cret"


@pytest.fixture
def client(repo, registered, store):
    config = load_config(repo, env={})
    config = dataclasses.replace(config, serving=dataclasses.replace(config.serving, api_keys=(KEY,)))
    with FeatureStore(config=config) as served, TestClient(create_app(served, watch_interval=0)) as c:
        yield c


def test_listings_carry_aliases(client, store, trained):
    store.models.register("driver_model", trained[2], features="driver_activity_v1")
    models = client.get("/models").json()["models"]
    assert [(m["name"], m["latest_version"], m["aliases"]) for m in models] == [("driver_model", 2,
                                                                                  {"champion": 1})]
    model = client.get("/models/driver_model").json()
    assert [(v["uri"], v["aliases"]) for v in model["versions"]] == [("driver_model/1", ["champion"]),
                                                                     ("driver_model/2", [])]
    version = client.get("/models/driver_model/versions/1").json()
    assert version["aliases"] == ["champion"] and version["training_dataset"]["name"] == "driver_training"
    assert [c["name"] for c in version["signature"]["inputs"]] == ["conv_rate", "acc_rate", "avg_daily_trips"]


def test_alias_moves_need_a_key_and_are_kept_in_history(client, store, trained):
    store.models.register("driver_model", trained[2], features="driver_activity_v1")
    body = {"version": 2, "reason": "better auc"}
    assert client.put("/models/driver_model/aliases/champion", json=body).status_code == 401
    assert client.put("/models/driver_model/aliases/champion", json=body,
                      headers={"X-API-Key": "wrong"}).status_code == 403
    moved = client.put("/models/driver_model/aliases/champion", json=body, headers={"X-API-Key": KEY})
    assert moved.status_code == 200 and moved.json()["version"]["version"] == 2
    assert client.get("/models/driver_model/versions/2").json()["aliases"] == ["champion"]
    alias = client.get("/models/driver_model/aliases/champion").json()
    assert [(m["previous"], m["version"], m["reason"]) for m in alias["history"]] == [
        (None, 1, "first"), (1, 2, "better auc")]
    deleted = client.delete("/models/driver_model/aliases/champion?reason=rollout+over",
                            headers={"Authorization": f"Bearer {KEY}"})
    assert deleted.status_code == 200 and deleted.json()["previous"] == 2
    assert store.models.alias_history("driver_model", "champion")[-1].reason == "rollout over"
    assert client.get("/models").json()["models"][0]["aliases"] == {}


@pytest.mark.parametrize("method, path, body, status, message", [
    ("get", "/models/nope", None, 404, "unknown model 'nope'"),
    ("get", "/models/driver_modle/versions/1", None, 404, "did you mean 'driver_model'"),
    ("get", "/models/driver_model/versions/9", None, 404, "it has versions 1 to 1"),
    ("get", "/models/driver_model/versions/x", None, 422, "version"),
    ("get", "/models/driver_model/aliases/staging", None, 404, "its aliases: champion"),
    ("put", "/models/driver_model/aliases/champion", {"version": 9}, 404, "it has versions 1 to 1"),
    ("put", "/models/driver_model/aliases/champion", {"version": "2"}, 422, "'version' must be an integer"),
    ("put", "/models/driver_model/aliases/champion", {}, 422, "needs 'version'"),
    ("put", "/models/driver_model/aliases/9lives", {"version": 1}, 422, "alias '9lives' is not valid"),
    ("delete", "/models/driver_model/aliases/staging", None, 404, "alias 'staging'"),
])
def test_errors_are_json_with_the_right_status(client, method, path, body, status, message):
    kwargs = {"headers": {"X-API-Key": KEY}} | ({"json": body} if body is not None else {})
    answer = getattr(client, method)(path, **kwargs)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]["message"]


def test_an_in_use_error_is_409(client, store):
    from featurestore.errors import InUseError
    from serving.errors import status_for

    assert status_for(InUseError("x")) == 409
    with pytest.raises(InUseError):
        store.models.archive("driver_model/1")
