"""When a model version's calls skip the thread hop (serving/inline_calls.py): a model that
proves fast is called on the event loop; one that turns slow goes back to its threads,
where its timeout answers 504 again, and must prove itself for longer before the next
time; a budget of 0 keeps a model on its threads. Through a real server (the model notes
the thread each call ran on), and the gate's rules on given costs."""

from __future__ import annotations

import pytest

from serving.inline_calls import INLINE_AFTER, MAX_BUDGET_SHARE, WAIT_FACTOR, InlineGate, Timed

from .prediction_server import SLOW_TIMEOUT

MODEL_THREAD = "featurestore-model-"  # serving/model_runner.py names its threads so


def on_threads(client, model: str) -> bool:
    """Call ``model`` (``served_models.Where``): whether the call ran on a model runner thread."""
    name, _, version = model.partition("/")
    answer = client.post(f"/v2/models/{name}/versions/{version}/infer", json={"inputs": [
        {"name": "conv_rate", "shape": [1], "datatype": "FP32", "data": [0.5]}]})
    assert answer.status_code == 200, answer.text
    return answer.json()["outputs"][0]["data"] == [1.0]


def infer(client, model: str):
    name, _, version = model.partition("/")
    return client.post(f"/v2/models/{name}/versions/{version}/infer", json={"inputs": [
        {"name": "conv_rate", "shape": [1], "datatype": "FP32", "data": [0.5]}]})


def inline_gauge(client, model: str, version: str = "1") -> float | None:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(f'featurestore_model_inline{{model="{model}",version="{version}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return None


def call_until_inline(client, model: str, limit: int) -> int:
    """Call ``model`` until a call runs inline (at most ``limit`` calls); how many calls that took."""
    for made in range(1, limit + 1):
        if not on_threads(client, model):
            return made
    pytest.fail(f"{model} was not called inline after {limit} fast calls")


def test_a_fast_model_goes_inline_and_back_to_its_threads_when_it_turns_slow(prediction_server):
    client, sleep_flag, threads = prediction_server.client, prediction_server.sleep_flag, prediction_server.threads
    # On its threads until INLINE_AFTER calls in a row have been within the budget.
    for _ in range(INLINE_AFTER):
        assert on_threads(client, "moody/1")
    # (A loaded machine may push a call past the budget, which only starts the count again.)
    call_until_inline(client, "moody/1", 40 * INLINE_AFTER)
    assert inline_gauge(client, "moody") == 1.0

    # It turns slow: the inline call cannot be cut off, but answers 504 (past its timeout)
    # and sends the version back to its threads, where the timeout answers on time again.
    sleep_flag.write_text(str(SLOW_TIMEOUT * 2))
    try:
        answer = infer(client, "moody/1")
        assert answer.status_code == 504, answer.text
        assert "moody/1 did not answer within 0.5 s" in answer.json()["error"]
        assert inline_gauge(client, "moody") == 0.0
        assert infer(client, "moody/1").status_code == 504
        assert client.get("/health").status_code == 200
        first, second = threads.read_text().splitlines()[-2:]
        assert not first.startswith(MODEL_THREAD) and second.startswith(MODEL_THREAD)
    finally:
        sleep_flag.unlink()
    # Fast again, it needs twice as many calls in a row as the first time to go inline.
    for _ in range(2 * INLINE_AFTER - 1):
        assert on_threads(client, "moody/1")
    assert inline_gauge(client, "moody") == 0.0
    call_until_inline(client, "moody/1", 40 * INLINE_AFTER)


def test_a_model_with_budget_0_stays_on_its_threads(prediction_server):
    client = prediction_server.client
    for _ in range(3 * INLINE_AFTER):
        assert on_threads(client, "threaded/1")
    assert inline_gauge(client, "threaded") == 0.0


# -- the gate's rules ----------------------------------------------------------------------


def test_the_budget_is_at_most_a_share_of_the_timeout_and_0_turns_it_off():
    assert InlineGate(0.002, 1.0).budget == 0.002
    assert InlineGate(0.5, 1.0).budget == pytest.approx(MAX_BUDGET_SHARE)
    off = InlineGate(0.0, 1.0)
    for _ in range(10 * INLINE_AFTER):
        assert off.threaded(0.0, 0.0) is False
    assert not off.inline


def test_a_call_is_judged_by_its_cpu_and_wall_time_and_one_in_a_while_is_forgiven():
    gate = InlineGate(0.002, 1.0)
    assert gate.within(0.002, 0.002 * WAIT_FACTOR)
    assert not gate.within(0.0, MAX_BUDGET_SHARE + 0.001)  # past a share of the timeout: never forgiven
    # Over the budget (computed too long, or waited: slept, I/O, or a loaded machine took
    # the core): forgiven once in INLINE_AFTER calls; a model slow every call is not.
    for cpu, wall in ((0.0021, 0.0021), (0.0, 0.002 * WAIT_FACTOR + 0.001)):
        for _ in range(INLINE_AFTER):
            assert gate.within(0.0001, 0.0001)
        assert gate.within(cpu, wall)
        assert not gate.within(cpu, wall)


def test_a_call_the_os_took_the_core_from_is_judged_by_its_cpu_time():
    gate = InlineGate(0.002, 1.0)
    for _ in range(3):
        assert gate.within(0.0001, 0.05, preempted=True)
    assert not gate.within(0.0001, MAX_BUDGET_SHARE + 0.001, preempted=True)  # never past a share of the timeout
    gate = InlineGate(0.002, 1.0)
    assert gate.within(0.003, 0.05, preempted=True)   # forgiven once, not twice
    assert not gate.within(0.003, 0.05, preempted=True)


def test_timed_measures_a_call_where_it_runs():
    timed = Timed(lambda n: sum(range(n)))
    assert timed.cpu is None
    assert timed(100_000) == sum(range(100_000))
    assert 0 < timed.cpu and 0 < timed.wall and timed.preempted in (True, False)


def test_a_slow_call_on_the_threads_starts_the_count_again():
    gate = InlineGate(0.002, 1.0)
    for _ in range(INLINE_AFTER - 1):
        assert gate.threaded(0.0001, 0.0001) is False
    assert gate.threaded(None, None) is False  # timed out
    for _ in range(INLINE_AFTER - 1):
        assert gate.threaded(0.0001, 0.0001) is False
    assert gate.threaded(0.0001, 0.0001) is True and gate.inline


def test_each_fallback_doubles_the_calls_needed_and_a_long_clean_run_halves_them():
    gate = InlineGate(0.002, 1.0)
    needed = INLINE_AFTER
    for fallbacks in range(1, 4):
        for _ in range(needed - 1):
            gate.threaded(0.0001, 0.0001)
        assert gate.threaded(0.0001, 0.0001) is True
        assert gate.inlined(0.0001, 0.0001) is False
        assert gate.inlined(0.0, 0.2) is True and not gate.inline
        needed *= 2
        assert gate.fallbacks == fallbacks and gate.needed == needed
    for _ in range(needed - 1):
        gate.threaded(0.0001, 0.0001)
    assert gate.threaded(0.0001, 0.0001) is True
    for _ in range(needed * 20):
        assert gate.inlined(0.0001, 0.0001) is False
    assert gate.inline and gate.needed == needed // 2


def test_a_call_within_its_budget_is_not_timed_further():
    timed = Timed(lambda n: n, budget=1.0)  # wall time within the budget: CPU and switches not read again
    assert timed(1) == 1
    assert 0 < timed.wall <= 1.0 and timed.cpu == timed.wall and timed.preempted is False
    busy = Timed(lambda n: sum(range(n)), budget=1e-9)  # past it: both read, the CPU is the thread's own
    busy(100_000)
    assert 0 < busy.cpu and busy.cpu != busy.wall and busy.preempted in (True, False)
