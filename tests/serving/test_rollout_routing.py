"""Rollouts in ``/predict`` on a real server and Redis: the canary split by entity key (the
answer names its variant), a weight change seen within the watch tick, shadow answers
logged but never returned, and no request waiting for a held shadow candidate (its bound:
tests/serving_log/test_shadow_rows.py)."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import pyarrow.compute as pc

from featurestore.models.routing import to_candidate

from .prediction_server import PredictionServer
from .served import wait_for

IDS = list(range(1000, 1060))


def variants(served: PredictionServer, model: str = "scaled") -> dict[int, tuple[str, int]]:
    out = {}
    for i in IDS:
        answer = served.client.post(f"/predict/{model}", json={"entities": {"driver_id": [i]}}).json()
        out[i] = (answer["variant"], answer["version"])
    return out


def test_canary_splits_by_entity_key_and_follows_the_weight(prediction_server):
    with prediction_server.store() as store:
        store.models.rollouts.start("scaled", 2, step_weight=40, max_weight=80)
        try:
            expected = {i: ("canary", 2) if to_candidate([i], 40) else ("stable", 1) for i in IDS}
            wait_for(lambda: variants(prediction_server) == expected, "the canary split", 20)
            assert variants(prediction_server) == expected  # sticky
            assert 'featurestore_rollout_weight{model="scaled"} 40.0' in prediction_server.client.get("/metrics").text
            assert 0 < sum(v == "canary" for v, _ in expected.values()) < len(IDS)
            pinned = prediction_server.client.post("/predict/scaled/1", json={"entities": {"driver_id": IDS}})
            assert pinned.json()["variant"] == "stable"  # a version named is that version
            store.models.rollouts.set_weight("scaled", 80)
            grown = {i: ("canary", 2) if to_candidate([i], 80) else ("stable", 1) for i in IDS}
            wait_for(lambda: variants(prediction_server) == grown, "the new weight", 20)
        finally:
            store.models.rollouts.rollback("scaled", reason="test over")
        wait_for(lambda: set(variants(prediction_server).values()) == {("stable", 1)}, "the rollback", 20)


def test_shadow_answers_are_logged_and_never_returned(prediction_server):
    with prediction_server.store() as store:
        store.models.rollouts.start("scaled", 2, mode="shadow", step_weight=100, max_weight=100)
        try:
            def answered():
                return prediction_server.client.post("/predict/scaled", json={"entities": {"driver_id": [1001]}},
                                                     headers={"X-Request-ID": "shadowed-1"}).json()

            def shadowed():
                assert answered()["variant"] == "stable"
                # stable's rows come on the worker's log tick, the shadow's from its own process
                return _logged(store, "shadowed-1", "shadow").num_rows > 0 and _logged(
                    store, "shadowed-1", "stable").num_rows > 0

            wait_for(shadowed, "a shadow row and a stable row in the serving log", 30)
            answer = answered()
            assert (answer["variant"], answer["version"]) == ("stable", 1)
            shadow = _logged(store, "shadowed-1", "shadow").to_pydict()
            stable = _logged(store, "shadowed-1", "stable").to_pydict()
            assert set(shadow["version"]) == {2} and set(stable["version"]) == {1}
            assert shadow["prediction"][0] == round(stable["prediction"][0] * 2, 4)
        finally:
            store.models.rollouts.rollback("scaled", reason="test over")


def _logged(store, request_id: str, variant: str):
    logs = store.get_logs("scaled")
    if logs.num_rows == 0:
        return logs
    return logs.filter(pc.and_(pc.equal(logs["request_id"], request_id), pc.equal(logs["variant"], variant)))


@contextmanager
def held_shadow(served: PredictionServer, name: str, hold: Path):
    """A shadow rollout of ``name`` at 100% whose candidate waits while ``hold`` exists,
    followed by the server; yields the store, rolls back on exit."""
    from .rollout_traffic import shadowed

    hold.touch()
    try:
        with shadowed(served, name, {"seed": 2, "hold": str(hold)}) as store:
            yield store
    finally:
        hold.unlink(missing_ok=True)


def test_no_request_waits_for_a_shadow_candidate(prediction_server, tmp_path):
    """While the shadow candidate cannot answer at all, every request is answered by stable;
    the shadow answers reach the log once it can."""
    from .rollout_traffic import send

    hold, name = tmp_path / "hold", "held_shadow"
    with held_shadow(prediction_server, name, hold) as store:
        answers = send(prediction_server, name, list(range(20)), "held")  # 20 > the runner's threads
        assert {(a.status_code, a.json()["variant"], a.json()["version"]) for a in answers.values()} == {
            (200, "stable", 1)}
        assert _shadow_rows(store, name) == 0  # the candidate has answered none of them
        hold.unlink()
        wait_for(lambda: _shadow_rows(store, name) >= 20, "the shadow answers in the log", 30)


def _shadow_rows(store, name: str) -> int:
    logs = store.get_logs(name)
    if logs.num_rows == 0:
        return 0
    return pc.sum(pc.equal(logs["variant"], "shadow")).as_py()
