"""Shadow scoring in the serving log's process on a real server: the shadow rows it
writes to the serving log (columns, status, latency) and the worker's metrics that count
them, a candidate that crashes its model process (only its batch fails, the rows logged
before it stay), a hung one (stopped after its deadline, its requests logged as
timeout), a server stopping (the shadow answers of its last requests are logged before
it exits), a candidate that reads other features, and the serving log turned off."""

from __future__ import annotations

import os
import re

import pyarrow.compute as pc

from .prediction_server import PredictionServer
from .rollout_traffic import send, shadowed
from .served import wait_for


def metric(served: PredictionServer, series: str) -> float:
    found = re.search(re.escape(series) + r" (\S+)", served.client.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


def shadow_rows(store, name: str, status: str | None = None) -> dict:
    """The log's shadow rows (of ``status``), as columns."""
    logs = store.get_logs(name)
    if logs.num_rows == 0:
        return {}
    keep = pc.equal(logs["variant"], "shadow")
    if status is not None:
        keep = pc.and_(keep, pc.equal(logs["status"], status))
    return logs.filter(keep).to_pydict()


def shadow_count(served: PredictionServer, name: str, status: str) -> float:
    return metric(served, f'featurestore_predictions_total{{model="{name}",status="{status}",variant="shadow",'
                          'version="2"}')


def test_the_shadow_process_logs_each_request_as_the_worker_would_and_the_worker_counts_it(prediction_server,
                                                                                           tmp_path):
    name, policy = "logged_shadow", tmp_path / "policy"
    with shadowed(prediction_server, name, {"seed": 2, "shift": 5.0, "policy": str(policy)}) as store:
        answers = send(prediction_server, name, list(range(1001, 1006)), "logged")
        assert {(a.json()["variant"], a.json()["version"]) for a in answers.values()} == {("stable", 1)}
        wait_for(lambda: len(shadow_rows(store, name).get("request_id", [])) == 5, "the shadow rows", 30)
        # Stable's rows come from the worker's own serving log process, on its own tick.
        wait_for(lambda: store.get_logs(name).to_pydict()["variant"].count("stable") == 5, "stable's rows", 30)
        shadow, logs = shadow_rows(store, name), store.get_logs(name).to_pydict()
        stable = [j for j, v in enumerate(logs["variant"]) if v == "stable"]
        assert sorted(shadow["request_id"]) == sorted(f"{name}-logged-{i}" for i in range(1001, 1006))
        assert set(shadow["version"]) == {2} and set(shadow["model"]) == {name}
        assert set(shadow["status"]) == {"ok"} and all(p is not None for p in shadow["prediction"])
        assert all(ms > 0 for ms in shadow["latency_ms"])
        for column in ("driver_id", "conv_rate", "conv_rate__status", "conv_rate__event_timestamp"):
            stable_values = {logs["request_id"][j]: logs[column][j] for j in stable}
            assert [stable_values[r] for r in shadow["request_id"]] == shadow[column]  # as stable's row has it
        assert {logs["request_id"][j] for j in stable} == set(shadow["request_id"])
        # The worker counts what its shadow process scored and wrote (rows written: stable's
        # by the worker, the shadow's reported by the process).
        assert shadow_count(prediction_server, name, "ok") == 5
        # The candidate ran behind the worker: a waking request takes the core from it at once.
        if hasattr(os, "SCHED_IDLE"):
            assert int(policy.read_text()) == os.SCHED_IDLE
        series = f'featurestore_serving_log_rows_written_total{{log="{name}"}}'
        wait_for(lambda: metric(prediction_server, series) >= 10, "the shadow rows counted as written", 30)


def test_a_shadow_is_timed_as_one_request_is_not_as_the_batch_its_requests_were_scored_in(prediction_server):
    """rowwise_shadow's candidate takes ROW_SECONDS a row, and its timeout is ROWWISE_TIMEOUT:
    twenty requests sent one by one reach the log's process in a few ticks, in batches of more
    rows than a call within the timeout holds; each request is still scored ``ok``, logged
    with one request's call time."""
    from .prediction_server import ROW_SECONDS, ROWWISE_TIMEOUT

    name = "rowwise_shadow"
    with shadowed(prediction_server, name, {"seed": 2, "row_seconds": ROW_SECONDS}) as store:
        send(prediction_server, name, list(range(2001, 2021)), "rowwise")
        wait_for(lambda: len(shadow_rows(store, name).get("request_id", [])) == 20, "the shadow rows", 30)
        shadow, logs = shadow_rows(store, name), store.get_logs(name).to_pydict()
        assert shadow["status"] == ["ok"] * 20, "a batch's time is not a request's: none timed out"
        assert shadow_count(prediction_server, name, "ok") == 20
        stable = {r: ms for r, ms, v in zip(logs["request_id"], logs["latency_ms"], logs["variant"]) if v == "stable"}
        for request_id, ms in zip(shadow["request_id"], shadow["latency_ms"]):
            # stable's time before its model call, plus one row's call: no batch's
            assert ROW_SECONDS * 1000 <= ms < stable[request_id] + ROWWISE_TIMEOUT * 1000


def test_a_shadow_candidate_that_crashes_its_process_fails_only_its_batch(prediction_server, tmp_path):
    name, die = "crashing_shadow", tmp_path / "die"
    with shadowed(prediction_server, name, {"seed": 2, "die": str(die)}) as store:
        send(prediction_server, name, [1, 2, 3], "before")
        wait_for(lambda: shadow_count(prediction_server, name, "ok") == 3, "the first shadow answers", 30)
        die.touch()
        send(prediction_server, name, [4], "crash")
        wait_for(lambda: shadow_count(prediction_server, name, "model_error") == 1, "the crash counted", 30)
        die.unlink()
        send(prediction_server, name, [5, 6], "after")  # answered by a new model process
        wait_for(lambda: len(shadow_rows(store, name).get("request_id", [])) == 6, "every shadow row", 30)
        rows = shadow_rows(store, name)
        outcome = dict(zip(rows["request_id"], rows["status"]))
        assert outcome == {f"{name}-before-1": "ok", f"{name}-before-2": "ok", f"{name}-before-3": "ok",
                           f"{name}-crash-4": "model_error", f"{name}-after-5": "ok", f"{name}-after-6": "ok"}


def test_a_hung_shadow_candidate_is_stopped_after_its_deadline_and_its_requests_logged_as_timeout(
        prediction_server, tmp_path):
    """hung_shadow's timeout is 0.05 s: its calls get the shortest deadline (MIN_DEADLINE)."""
    name, hold = "hung_shadow", tmp_path / "hold"
    hold.touch()
    with shadowed(prediction_server, name, {"seed": 2, "hold": str(hold)}) as store:
        answers = send(prediction_server, name, [1, 2], "hung")
        assert {(a.status_code, a.json()["variant"]) for a in answers.values()} == {(200, "stable")}
        wait_for(lambda: len(shadow_rows(store, name, "timeout").get("request_id", [])) == 2,
                 "the hung requests logged as timeout", 30)
        assert shadow_count(prediction_server, name, "timeout") == 2
        assert shadow_rows(store, name, "timeout")["prediction"] == [None, None]
        hold.unlink()
        send(prediction_server, name, [3], "freed")  # a new model process answers
        wait_for(lambda: shadow_rows(store, name, "ok").get("request_id") == [f"{name}-freed-3"],
                 "the next request scored", 30)


def test_a_server_stopping_right_after_its_requests_logs_their_shadow_answers_first(prediction_server):
    """The shadow process writes the rows it holds before the server's process exits."""
    from .rollout_traffic import register_pair
    from .served import Server

    name = "stopped_shadow"
    with prediction_server.store() as store:
        register_pair(store, name, candidate={"seed": 2}, stable={"seed": 1})
        store.models.rollouts.start(name, 2, mode="shadow", step_weight=100, max_weight=100)
    server = Server(prediction_server.repo, "--workers", "1", "--no-access-log", env=prediction_server.env)
    try:
        first = server.client.post(f"/predict/{name}", json={"entities": {"driver_id": [1]}})
        assert first.json()["variant"] == "stable"
        for i in range(2, 5):
            server.client.post(f"/predict/{name}", json={"entities": {"driver_id": [i]}})
    finally:
        server.stop()
    with prediction_server.store() as store:
        try:
            logs = store.get_logs(name).to_pydict()
            assert logs["variant"].count("stable") == 4 and logs["variant"].count("shadow") == 4
        finally:
            store.models.rollouts.rollback(name, reason="test over")


def test_a_shadow_candidate_reading_other_features_than_stable_reads_its_own_and_is_logged(prediction_server):
    """Not stable's inputs: the candidate's own read (off the request path), then the same
    shadow process; its rows hold the features it read."""
    from .rollout_traffic import REF

    name = "own_read_shadow"
    with prediction_server.store() as store:
        for features in (REF, [*REF, "driver_hourly_stats:acc_rate"]):
            store.models.register(name, "served_models:Noisy", flavor="python", features=features,
                                  output=("prediction", "Float64"), flavor_options={"params": {"seed": 2}})
        store.models.set_alias(name, "champion", 1)
        store.models.rollouts.start(name, 2, mode="shadow", step_weight=100, max_weight=100)
        try:
            followed = f'featurestore_rollout_weight{{model="{name}"}} 100.0'
            wait_for(lambda: followed in prediction_server.client.get("/metrics").text, "the rollout followed", 20)
            answers = send(prediction_server, name, [1001, 1002], "own")
            assert {(a.json()["variant"], a.json()["version"]) for a in answers.values()} == {("stable", 1)}
            wait_for(lambda: len(shadow_rows(store, name).get("request_id", [])) == 2, "the shadow rows", 30)
            rows = shadow_rows(store, name)
            assert sorted(rows["request_id"]) == [f"{name}-own-1001", f"{name}-own-1002"]
            assert set(rows["status"]) == {"ok"} and set(rows["version"]) == {2}
            assert all(v is not None for v in rows["acc_rate"])  # read for the candidate alone
            assert shadow_count(prediction_server, name, "ok") == 2
        finally:
            store.models.rollouts.rollback(name, reason="test over")


def test_with_the_serving_log_off_a_shadow_scores_nothing_and_the_server_says_so(prediction_server):
    """The candidate is scored on the logged requests: none are logged, none are scored."""
    from .rollout_traffic import register_pair
    from .served import Server

    name = "unlogged_shadow"
    with prediction_server.store() as store:
        register_pair(store, name, candidate={"seed": 2}, stable={"seed": 1})
        store.models.rollouts.start(name, 2, mode="shadow", step_weight=100, max_weight=100)
    server = Server(prediction_server.repo, "--workers", "1", "--no-access-log",
                    env={**prediction_server.env, "FEATURESTORE_SERVING_LOG": "off"})
    try:
        answers = [server.client.post(f"/predict/{name}", json={"entities": {"driver_id": [i]}}) for i in (1, 2, 3)]
        assert {(a.status_code, a.json()["variant"], a.json()["version"]) for a in answers} == {(200, "stable", 1)}
        metrics = server.client.get("/metrics").text
        assert f'model="{name}",status="ok",variant="stable",version="1"}} 3.0' in metrics
        assert not [line for line in metrics.splitlines()  # (the metrics hold the other tests' servers' too)
                    if f'model="{name}"' in line and 'variant="shadow"' in line]
    finally:
        output = server.stop()
        with prediction_server.store() as store:
            store.models.rollouts.rollback(name, reason="test over")
    assert output.count(f"model {name} is in a shadow rollout, but the serving log is off") == 1
