"""Rollouts judged on real traffic: ``/predict`` logs each request's status and latency
(a failed model call too, with null predictions), so the controller rolls back a canary
that raises and one that is slow, from the serving log the server wrote (no rows by hand);
a canary's failures are counted under variant="canary"."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pyarrow.compute as pc

from featurestore.models.routing import to_candidate
from monitoring.rollout_controller import run_rollouts

from .prediction_server import PredictionServer
from .served import wait_for

IDS = list(range(2000, 2040))
REF = ["driver_hourly_stats:conv_rate"]


def _canary(served: PredictionServer, name: str, candidate_params: dict, checks: dict):
    """``name``/1 (champion) and ``name``/2 (``candidate_params``) in a canary at 50%; every
    id of IDS sent once (after the server routes by the rollout); the answers by id."""
    with served.store() as store:
        for params in ({}, candidate_params):
            store.models.register(name, "served_models:Scaled", flavor="python", features=REF,
                                  output=("prediction", "Float64"), flavor_options={"params": params})
        store.models.set_alias(name, "champion", 1)
        store.models.rollouts.start(name, 2, step_weight=50, max_weight=50, interval=1, threshold=1,
                                    min_requests=10, checks=checks)

    def send(i: int):
        return served.client.post(f"/predict/{name}", json={"entities": {"driver_id": [i]}},
                                  headers={"X-Request-ID": f"{name}-{i}"})

    def routed() -> bool:
        answer = send(next(i for i in IDS if to_candidate([i], 50)))
        return answer.status_code != 200 or answer.json()["variant"] == "canary"

    wait_for(routed, "the server to route by the rollout", 20)
    answers = {i: send(i) for i in IDS}
    with served.store() as store:
        wait_for(lambda: _rows(store, name) >= len(IDS), "the requests in the serving log", 20)
    return answers


def _rows(store, name: str) -> int:
    logs = store.get_logs(name)
    return 0 if logs.num_rows == 0 else pc.sum(pc.starts_with(logs["request_id"], f"{name}-")).as_py()


def _judged(served: PredictionServer, name: str):
    """One controller pass over the traffic sent; the rollout after it and the log."""
    with served.store() as store:
        decisions = run_rollouts(store, now=datetime.now(timezone.utc) + timedelta(seconds=2))
        return decisions, store.models.rollouts.get(name), store.get_logs(name).to_pydict()


def test_a_canary_that_raises_is_rolled_back_from_real_traffic(prediction_server):
    name = "canary_raises"
    answers = _canary(prediction_server, name, {"fail": True}, {"js_distance": None})
    canary = [i for i in IDS if to_candidate([i], 50)]
    assert 10 <= len(canary) <= len(IDS) - 10
    assert {answers[i].status_code for i in canary} == {500}
    assert {answers[i].json()["variant"] for i in IDS if i not in canary} == {"stable"}
    metrics = prediction_server.client.get("/metrics").text
    assert f'{{model="{name}",status="model_error",variant="canary",version="2"}}' in metrics
    assert f'{{model="{name}",status="model_error",variant="stable",version="2"}}' not in metrics

    decisions, rollout, log = _judged(prediction_server, name)
    assert [d["decision"] for d in decisions if d["model"] == name] == ["rolled_back"]
    assert rollout.state == "rolled_back" and rollout.failure["check"] == "success_rate"
    assert rollout.history[-1].measured["candidate"]["success_rate"] == 0.0
    assert rollout.history[-1].measured["stable"]["success_rate"] == 1.0
    failed = [j for j, rid in enumerate(log["request_id"]) if log["variant"][j] == "canary"]
    assert {log["request_id"][j] for j in failed} >= {f"{name}-{i}" for i in canary}
    assert {log["status"][j] for j in failed} == {"model_error"}
    assert {log["prediction"][j] for j in failed} == {None} and all(log["latency_ms"][j] > 0 for j in failed)


def test_a_slow_canary_fails_its_p99_check_from_real_traffic(prediction_server):
    name = "canary_slow"
    answers = _canary(prediction_server, name, {"seconds": 0.15}, {"js_distance": None, "p99_ms": 100})
    assert {a.status_code for a in answers.values()} == {200}

    decisions, rollout, log = _judged(prediction_server, name)
    assert [d["decision"] for d in decisions if d["model"] == name] == ["rolled_back"]
    assert rollout.failure["check"] == "p99_ms"
    measured = rollout.history[-1].measured
    # The candidate sleeps 150 ms a call, so its p99 is at least that; stable's p99 is of
    # stable's own rows (not a blend with the candidate's), which on a busy machine may
    # take 150 ms too: so it is bounded by those rows, not by a time.
    assert measured["candidate"]["p99_ms"] >= 150
    stable = [ms for ms, variant in zip(log["latency_ms"], log["variant"]) if variant == "stable"]
    assert min(stable) <= measured["stable"]["p99_ms"] <= max(stable)
    assert measured["candidate"]["success_rate"] == 1.0 and set(log["status"]) == {"ok"}


def test_a_failing_shadow_is_counted_and_logged_under_shadow(prediction_server):
    name = "shadow_raises"
    with prediction_server.store() as store:
        for params in ({}, {"fail": True}):
            store.models.register(name, "served_models:Scaled", flavor="python", features=REF,
                                  output=("prediction", "Float64"), flavor_options={"params": params})
        store.models.set_alias(name, "champion", 1)
        store.models.rollouts.start(name, 2, mode="shadow", step_weight=100, max_weight=100)
        series = f'{{model="{name}",status="model_error",variant="shadow",version="2"}}'

        def shadowed() -> bool:
            answer = prediction_server.client.post(f"/predict/{name}", json={"entities": {"driver_id": [1001]}})
            assert answer.status_code == 200 and answer.json()["variant"] == "stable"
            return series in prediction_server.client.get("/metrics").text

        wait_for(shadowed, "a shadow failure counted under variant shadow", 20)
        wait_for(lambda: "shadow" in (store.get_logs(name).to_pydict().get("variant") or []), "a shadow row", 20)
        log = store.get_logs(name).to_pydict()
        shadow = [j for j, v in enumerate(log["variant"]) if v == "shadow"]
        assert {log["status"][j] for j in shadow} == {"model_error"}
        assert {log["prediction"][j] for j in shadow} == {None}
        assert {log["status"][j] for j, v in enumerate(log["variant"]) if v == "stable"} == {"ok"}
        assert f'{{model="{name}",status="model_error",variant="stable",version="2"}}' not in \
            prediction_server.client.get("/metrics").text
