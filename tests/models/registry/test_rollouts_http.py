"""``/models/{name}/rollout`` on a real server: status for readers, changes need an API key."""

from __future__ import annotations

import pytest

from tests.serving.served import Server

KEY = "s3cret"


@pytest.fixture
def server(two_versions, repo):
    two_versions.close()
    srv = Server(repo, "--no-access-log", "--watch-interval", "0", env={"FEATURESTORE_API_KEYS": KEY})
    yield srv.client
    srv.stop()


def test_start_status_and_steer_over_http(server):
    body = {"candidate": 2, "mode": "shadow", "step_weight": 20, "interval": "30s", "checks": {"p99_ms": 80}}
    assert server.post("/models/driver_model/rollout", json=body).status_code == 401
    started = server.post("/models/driver_model/rollout", json=body, headers={"X-API-Key": KEY})
    assert started.status_code == 200, started.text
    assert {k: started.json()[k] for k in ("state", "stable", "candidate", "weight", "mode")} == {
        "state": "running", "stable": 1, "candidate": 2, "weight": 20, "mode": "shadow"}
    paused = server.post("/models/driver_model/rollout/pause?reason=lunch", headers={"X-API-Key": KEY})
    assert paused.json()["state"] == "paused"
    status = server.get("/models/driver_model/rollout").json()
    assert [(h["decision"], h["reason"]) for h in status["history"]] == [("started", None), ("paused", "lunch")]
    promoted = server.post("/models/driver_model/rollout/promote", headers={"X-API-Key": KEY}).json()
    assert promoted["state"] == "promoted"
    assert server.get("/models/driver_model").json()["aliases"] == {"champion": 2}


BAD_REQUESTS = [  # path, body, status, words of the message
    ("/models/driver_model/rollout", {"candidate": 1}, 422, "already the champion"),
    ("/models/driver_model/rollout", {"candidate": 2, "weight": 5}, 422, "unknown field(s) weight"),
    ("/models/driver_model/rollout", {"mode": "canary"}, 422, "needs 'candidate'"),
    ("/models/driver_model/rollout", {"candidate": 2, "step_weight": 0}, 422, "step_weight must be a whole percentage"),
    ("/models/driver_model/rollout", {"candidate": 2, "step_weight": 60}, 422, "step_weight 60 is above max_weight 50"),
    ("/models/driver_model/rollout", {"candidate": 2, "interval": "soon"}, 422, "interval 'soon' is not a duration"),
    ("/models/driver_model/rollout", {"candidate": 2, "threshold": 0}, 422, "threshold must be a whole number"),
    ("/models/driver_model/rollout/pause", None, 404, "unknown rollout"),
    ("/models/driver_model/rollout/explode", None, 422, "unknown rollout action"),
    ("/models/nope/rollout", {"candidate": 2}, 404, "unknown model 'nope'"),
]


def test_bad_requests_say_what_is_wrong(server):
    # One server for every case: a refused request stores nothing, so each sees the same state.
    for path, body, status, words in BAD_REQUESTS:
        answer = server.post(path, json=body, headers={"X-API-Key": KEY})
        assert answer.status_code == status and words in answer.json()["error"]["message"], (path, body, answer.text)
        assert server.get("/models/driver_model/rollout").status_code == 404, (path, body)  # nothing stored
