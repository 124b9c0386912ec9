"""Rollouts decided on real traffic through a real server: a good candidate is promoted
through its steps; three bad ones are rolled back by themselves for the right reason (one
failing 5% of its requests, one 50 ms slower, one whose predictions are shifted); the
decisions are counted in /metrics.

Every judgement here reads the serving log the server wrote for the requests sent. The
models are ``served_models:Noisy`` (a normal draw per row, a fixed seed per load). The
checks are the defaults (``js_distance`` 0.1 beyond the noise of the interval's sample
sizes) plus the one each bad candidate should fail."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from monitoring.rollout_controller import run_rollouts

from .rollout_traffic import balanced_ids, register_pair, send, wait_logged, wait_routed


def _judge(served, name: str):
    """One controller pass as the interval's end; the decision taken for ``name``."""
    with served.store() as store:
        decisions = run_rollouts(store, now=datetime.now(timezone.utc) + timedelta(seconds=2))
    return [d for d in decisions if d["model"] == name]


def _interval(served, name: str, weight: int, tag: str, per_side: int, low: int = 0, start: int = 100_000):
    wait_routed(served, name, weight, low)
    ids = balanced_ids(weight, per_side, start)
    answers = send(served, name, ids, tag)
    wait_logged(served, name, tag, len(ids))
    return answers


def _decisions_counted(served, name: str) -> dict[str, float]:
    text = served.client.get("/metrics").text
    pattern = rf'^featurestore_rollout_decisions_total{{decision="(\w+)",model="{name}"}} (\S+)$'
    return {d: float(v) for d, v in re.findall(pattern, text, re.M)}


def test_a_good_candidate_is_promoted_through_its_steps(prediction_server):
    name = "good_canary"
    with prediction_server.store() as store:
        register_pair(store, name, candidate={"seed": 2}, stable={"seed": 1})
        store.models.rollouts.start(name, 2, step_weight=25, max_weight=50, interval=1, threshold=1,
                                    min_requests=80, checks={"p99_ratio": 10.0})
    answers = _interval(prediction_server, name, 25, "a", per_side=100)
    assert {a.status_code for a in answers.values()} == {200}
    # A p99 over ~100 requests is their slowest one or two: the ratio's limit leaves room
    # for one scheduling stall on a busy machine (a 50 ms slower candidate fails it below).
    first = _judge(prediction_server, name)
    assert [d["decision"] for d in first] == ["step"], first
    _interval(prediction_server, name, 50, "b", per_side=100, low=25, start=200_000)
    [promoted] = _judge(prediction_server, name)
    assert promoted["decision"] == "promoted", promoted

    with prediction_server.store() as store:
        rollout = store.models.rollouts.get(name)
        assert promoted["decision"] == "promoted" and rollout.state == "promoted"
        assert [(e.decision, e.weight) for e in rollout.history] == [("started", 25), ("step", 50),
                                                                     ("promoted", 100)]
        for entry in rollout.history[1:]:
            candidate = entry.measured["candidate"]
            assert candidate["requests"] >= 80 and candidate["success_rate"] == 1.0
            assert candidate["js_distance"] <= 0.1 or candidate["js_distance"] <= candidate["js_noise"]
        assert store.models.get(name).version == 2
        assert "passed at 50%" in store.models.alias_history(name, "champion")[-1].reason
    assert _decisions_counted(prediction_server, name) == {"started": 1.0, "step": 1.0, "promoted": 1.0}


def test_bad_candidates_are_rolled_back_for_the_right_reason(prediction_server):
    bad = {
        "failing_canary": ({"fail_every": 20}, {}, "success_rate"),      # 5% of its requests fail
        "slow_canary": ({"seconds": 0.05}, {"p99_ms": 45}, "p99_ms"),    # 50 ms slower
        "shifted_canary": ({"shift": 3.0}, {}, "js_distance"),           # predictions moved
    }
    with prediction_server.store() as store:
        for name, (params, checks, _) in bad.items():
            register_pair(store, name, candidate={"seed": 2, **params}, stable={"seed": 1})
            store.models.rollouts.start(name, 2, step_weight=50, max_weight=50, interval=1, threshold=1,
                                        min_requests=80, checks=checks)
    ids = balanced_ids(50, 100)
    for name in bad:
        wait_routed(prediction_server, name, 50)
        send(prediction_server, name, ids, "a")
    for name in bad:  # after all three were sent: their rows are flushed together
        wait_logged(prediction_server, name, "a", len(ids))
    with prediction_server.store() as store:
        run_rollouts(store, now=datetime.now(timezone.utc) + timedelta(seconds=2))
        for name, (_, _, check) in bad.items():
            rollout = store.models.rollouts.get(name)
            assert (rollout.state, rollout.weight) == ("rolled_back", 0), name
            assert rollout.failure["check"] == check, (name, rollout.failure)
            assert [f["check"] for f in rollout.failure["failures"]] == [check], name  # for that reason only
            assert store.models.get(name).version == 1  # the champion never moved
            assert _decisions_counted(prediction_server, name) == {"started": 1.0, "rolled_back": 1.0}
        measured = {name: store.models.rollouts.get(name).history[-1].measured for name in bad}
    failing = measured["failing_canary"]["candidate"]
    assert 0.93 <= failing["success_rate"] <= 0.97 and measured["failing_canary"]["stable"]["success_rate"] == 1.0
    assert measured["slow_canary"]["candidate"]["p99_ms"] >= 50
    assert measured["shifted_canary"]["candidate"]["js_distance"] > 0.8
