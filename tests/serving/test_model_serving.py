"""How a real server loads, caches, follows and calls models (through the Open Inference
Protocol, which calls the model on the caller's own inputs): aliases followed within a
tick, a bounded cache, load failures answered 503 and retried, a model that raises or
hangs answered with a JSON error, all counted."""

from __future__ import annotations

import time

from .prediction_server import SLOW_TIMEOUT
from .served import wait_for


def infer(client, model: str, values=(0.5, 0.25)):
    """``model`` is ``name``, ``name@alias`` or ``name/N`` (the protocol's version path)."""
    name, _, version = model.partition("/")
    path = f"/v2/models/{name}/versions/{version}/infer" if version else f"/v2/models/{name}/infer"
    return client.post(path, json={"inputs": [
        {"name": "conv_rate", "shape": [len(values)], "datatype": "FP32", "data": list(values)}]})


def counted(client, model: str, status: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("featurestore_predictions_total{") and f'model="{model}"' in line \
                and f'status="{status}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_an_alias_move_is_served_within_a_tick_without_a_restart(prediction_server):
    client = prediction_server.client
    answer = infer(client, "scaled")
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == "1"
    assert answer.json()["outputs"][0]["data"] == [0.5, 0.25]
    with prediction_server.store() as store:
        store.models.set_alias("scaled", "champion", 2, reason="test")
        try:
            moved = time.monotonic()
            wait_for(lambda: infer(client, "scaled").json()["model_version"] == "2", "the alias move", 5)
            assert time.monotonic() - moved < 2.5  # the watch ticks every 0.5 s; loading takes the rest
            assert infer(client, "scaled").json()["outputs"][0]["data"] == [1.0, 0.5]
            assert infer(client, "scaled@champion").json()["model_version"] == "2"
            assert 'featurestore_model_info{alias="champion",model="scaled",version="2"} 1.0' in \
                client.get("/metrics").text
        finally:
            store.models.set_alias("scaled", "champion", 1, reason="back")
    wait_for(lambda: infer(client, "scaled").json()["model_version"] == "1", "the alias move back", 5)


def test_a_moved_alias_target_is_loaded_before_a_request_asks_for_it(prediction_server):
    loads = prediction_server.loads

    def loaded(factor: str) -> int:
        return loads.read_text().splitlines().count(factor) if loads.exists() else 0

    with prediction_server.store() as store:
        version = store.models.register("scaled", "served_models:Scaled", flavor="python",
                                        features=["driver_hourly_stats:conv_rate"], output=("prediction", "Float64"),
                                        flavor_options={"params": {"factor": 3.0, "loads": str(loads)}})
        store.models.set_alias("scaled", "champion", version.version, reason="test")
        try:  # the registry watch (in its thread) hands the load to the event loop
            wait_for(lambda: loaded("3.0") == 1, "the new champion to load without a request", 10)
        finally:
            store.models.set_alias("scaled", "champion", 1, reason="back")
    wait_for(lambda: infer(prediction_server.client, "scaled").json()["model_version"] == "1", "the move back", 5)


def test_the_cache_keeps_the_most_recently_used_versions(prediction_server):
    client, loads = prediction_server.client, prediction_server.loads

    def loaded(factor: str) -> int:
        return loads.read_text().splitlines().count(factor) if loads.exists() else 0

    assert infer(client, "scaled/1").status_code == 200
    assert infer(client, "scaled/2").status_code == 200
    before = loaded("1.0"), loaded("2.0")
    assert infer(client, "scaled/1").status_code == 200  # both cached: nothing loads
    assert infer(client, "scaled/2").status_code == 200
    assert (loaded("1.0"), loaded("2.0")) == before
    # The cache holds 3 versions: two more push out the least recently used, scaled/1.
    assert infer(client, "slow@champion", [0.1]).status_code == 504
    assert infer(client, "driver_model").status_code == 422  # loaded, but the inputs are not its
    assert infer(client, "scaled/2").status_code == 200
    assert (loaded("1.0"), loaded("2.0")) == before
    assert infer(client, "scaled/1").status_code == 200
    assert (loaded("1.0"), loaded("2.0")) == (before[0] + 1, before[1])


def test_a_model_that_fails_to_load_answers_503_and_is_retried(prediction_server):
    client, flag = prediction_server.client, prediction_server.flag
    flag.write_text("broken")
    try:
        answer = infer(client, "flaky/2")
        assert answer.status_code == 503
        message = answer.json()["error"]
        assert "flaky/2" in message and "RuntimeError" in message and "the flag file is there" in message
        assert infer(client, "flaky/2").status_code == 503  # tried again, not remembered as failed
        assert client.get("/health").status_code == 200
        assert counted(client, "flaky", "load_failed") >= 2
    finally:
        flag.unlink()
    answer = infer(client, "flaky/2")
    assert answer.status_code == 200 and answer.json()["outputs"][0]["data"] == [0.5, 0.25]


def test_a_model_that_raises_answers_a_json_error_and_is_counted(prediction_server):
    client = prediction_server.client
    before = counted(client, "raises", "model_error")
    answer = infer(client, "raises")
    assert answer.status_code == 500
    assert answer.json() == {"error": "model raises/1 raised ValueError: no prediction for these rows"}
    assert counted(client, "raises", "model_error") == before + 1
    assert infer(client, "scaled").status_code == 200


def test_a_model_past_its_timeout_answers_504_without_holding_up_others(prediction_server):
    client = prediction_server.client
    before = counted(client, "slow", "timeout")
    began = time.monotonic()
    answer = infer(client, "slow", [0.1])
    took = time.monotonic() - began
    assert answer.status_code == 504, answer.text
    assert "slow/1 did not answer within 0.5 s" in answer.json()["error"]
    assert SLOW_TIMEOUT <= took < SLOW_TIMEOUT + 2.0
    # The call still runs in its thread; a spare thread takes its place, so however many
    # calls hang (more than the runner's threads here), other models are answered.
    for _ in range(2):
        assert infer(client, "slow", [0.1]).status_code == 504
    assert infer(client, "scaled").status_code == 200
    assert client.get("/health").status_code == 200
    assert counted(client, "slow", "timeout") == before + 3
