"""The rollout controller on a real registry and a real serving log: promotion through the
steps, three bad candidates rolled back for the right reason, inconclusive intervals, one
controller at a time, and a second controller continuing from the registry."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from featurestore.serving_log import ServingLogWriter
from featurestore.models.rollouts import DEFAULT_CHECKS, Rollout
from monitoring.rollout_analysis import analyze, js_distance, js_noise
from monitoring.rollout_controller import LOCK, run_rollouts

MODEL = "driver_model"
BIN = Path(sys.executable).parent / "featurestore"


def log_interval(store, rollout, n=1000, error_share=0.0, slower_ms=0.0, shift=0.0, seed=0):
    """n stable rows and n candidate rows inside the rollout's current interval."""
    rng = np.random.default_rng(seed)
    at = rollout.history[-1].at + timedelta(seconds=rollout.interval / 2)
    tables = []
    for variant, version, errors, extra, moved in (("stable", rollout.stable, 0.0, 0.0, 0.0),
                                                   (rollout.mode, rollout.candidate, error_share, slower_ms, shift)):
        failed = rng.random(n) < errors
        tables.append(pa.table({
            "log_time": pa.array([at] * n, pa.timestamp("us", "UTC")),
            "request_id": [f"{variant}-{i}" for i in range(n)],
            "model": [MODEL] * n, "version": pa.array([version] * n, pa.int64()), "variant": [variant] * n,
            "driver_id": pa.array(range(n), pa.int64()),
            "conv_rate": rng.random(n), "conv_rate__status": ["PRESENT"] * n,
            "prediction": rng.normal(loc=moved, size=n),
            "latency_ms": rng.uniform(5, 10, n) + extra,
            "status": pa.array(["model_error" if f else "ok" for f in failed], pa.string()),
        }))
    writer = ServingLogWriter(store.serving_log_folder(MODEL).parent.parent, flush_seconds=60)
    writer.write(MODEL, pa.concat_tables(tables))
    writer.close()
    return rollout.history[-1].at + timedelta(seconds=rollout.interval)


def step(store, **bad):
    rollout = store.models.rollouts.get(MODEL)
    end = log_interval(store, rollout, seed=len(rollout.history), **bad)
    return run_rollouts(store, now=end)


def test_a_good_candidate_is_promoted_through_its_steps(two_versions):
    two_versions.models.rollouts.start(MODEL, 2, step_weight=25, max_weight=75, interval=1, threshold=2,
                                       min_requests=50, checks={"p99_ratio": 1.5})
    decided = [step(two_versions)[0] for _ in range(3)]
    weights = [d["weight"] for d in decided]
    done = two_versions.models.rollouts.get(MODEL)
    assert weights == [50, 75, 100] and done.state == "promoted"
    assert [e.decision for e in done.history] == ["started", "step", "step", "promoted"]
    assert done.history[1].measured["candidate"]["requests"] == 1000
    assert done.history[1].measured["candidate"]["js_distance"] < 0.1
    assert two_versions.models.get(MODEL).version == 2
    assert "passed at 75%" in two_versions.models.alias_history(MODEL, "champion")[-1].reason


@pytest.mark.parametrize("bad, check", [
    ({"error_share": 0.05}, "success_rate"),
    ({"slower_ms": 50.0}, "p99_ms"),
    ({"shift": 2.0}, "js_distance"),
])
def test_bad_candidates_roll_back_for_the_right_reason(two_versions, bad, check):
    two_versions.models.rollouts.start(MODEL, 2, mode="shadow", step_weight=20, interval=1, threshold=2,
                                       min_requests=50, checks={"p99_ms": 40})
    assert step(two_versions, **bad)[0]["decision"] == "failed"
    assert step(two_versions, **bad)[0]["decision"] == "rolled_back"
    done = two_versions.models.rollouts.get(MODEL)
    assert (done.state, done.weight) == ("rolled_back", 0)
    assert done.failure["check"] == check and done.failure["failed_intervals"] == 2
    measured, limit = done.failure["measured"], done.failure["limit"]
    assert measured < limit if check == "success_rate" else measured > limit
    assert two_versions.models.get(MODEL).version == 1  # champion untouched


def test_few_requests_are_inconclusive_and_an_early_pass_waits(two_versions):
    rollout = two_versions.models.rollouts.start(MODEL, 2, interval=1, min_requests=5000)
    assert run_rollouts(two_versions, now=rollout.history[-1].at + timedelta(seconds=0.5)) == []  # not yet due
    assert step(two_versions)[0]["decision"] == "inconclusive"
    after = two_versions.models.rollouts.get(MODEL)
    assert (after.weight, after.failed_checks, after.state) == (10, 0, "running")
    assert "fewer than 5000 requests" in after.history[-1].reason


def test_one_controller_at_a_time_and_the_next_continues(two_versions):
    two_versions.models.rollouts.start(MODEL, 2, step_weight=30, max_weight=60, interval=1, min_requests=50)
    two_versions.locks.acquire(LOCK, "rollouts@elsewhere:1:x", 30)
    assert step(two_versions) == []  # another controller holds the lock: nothing decided
    assert two_versions.models.rollouts.get(MODEL).weight == 30
    two_versions.locks.release(LOCK, "rollouts@elsewhere:1:x")
    assert step(two_versions)[0]["weight"] == 60  # a new controller picks the rollout up from the registry
    paused = two_versions.models.rollouts.pause(MODEL)
    assert step(two_versions) == [] and two_versions.models.rollouts.get(MODEL).revision == paused.revision


def _rollout(**changes) -> Rollout:
    fields = dict(model=MODEL, rollout_id="r", state="running", mode="canary", stable=1, candidate=2, weight=10,
                  step_weight=10, max_weight=50, interval=60.0, threshold=3, min_requests=50,
                  checks=dict(DEFAULT_CHECKS), failed_checks=0, failure=None, revision=1)
    return Rollout(**{**fields, **changes})


def _predictions_log(stable: np.ndarray, candidate: np.ndarray) -> pa.Table:
    n, m = len(stable), len(candidate)
    return pa.table({"variant": ["stable"] * n + ["canary"] * m,
                     "version": pa.array([1] * n + [2] * m, pa.int64()),
                     "prediction": np.concatenate([stable, candidate]),
                     "status": ["ok"] * (n + m)})


@pytest.mark.parametrize("n", [100, 600])
def test_the_default_js_check_rarely_fails_a_candidate_like_stable(n):
    """Two samples of one distribution: the default js_distance check (0.1, and beyond the
    noise of samples that size) fails about 1% of intervals whatever their size, while the
    bare distance is above 0.1 in most small ones; a real shift fails nearly always."""
    rollout = _rollout()
    verdicts, above, shifted = [], 0, []
    for seed in range(100):
        rng = np.random.default_rng(seed)
        stable, same = rng.normal(size=n), rng.normal(size=n * 2)
        analysis = analyze(_predictions_log(stable, same), rollout)
        verdicts.append(analysis.verdict)
        above += analysis.measured["candidate"]["js_distance"] > 0.1
        shifted.append(analyze(_predictions_log(stable, rng.normal(loc=1.0, size=n * 2)), rollout).verdict)
    assert verdicts.count("failed") <= 3, verdicts.count("failed")  # about 1 in 100 expected
    assert shifted.count("failed") >= 98
    if n == 100:
        assert above >= 50  # the distance alone would fail most good candidates at this size


def test_js_distance_bounds():
    rng = np.random.default_rng(1)
    same = js_distance(rng.normal(size=2000), rng.normal(size=2000))
    apart = js_distance(rng.normal(size=2000), rng.normal(loc=10, size=2000))
    assert same < 0.1 and apart > 0.9 and apart <= 1.0
    assert js_distance(np.array(["a", "b"] * 50), np.array(["a"] * 100)) > 0.4
    assert js_distance(np.array([]), np.array([1.0])) is None and js_noise(np.array([]), np.array([1.0])) is None
    assert js_noise(np.array([1.0] * 10), np.array([1.0] * 10)) == 0.0  # one bin: no distance possible


def _wait_for(check, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def _scheduler(repo):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    return subprocess.Popen([str(BIN), "-r", str(repo), "scheduler", "--poll", "1s"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_schedulers_run_one_controller_and_a_killed_one_is_continued(two_versions, repo):
    rollouts = two_versions.models.rollouts
    rollouts.start(MODEL, 2, step_weight=50, max_weight=100, interval=1, min_requests=50)
    log_interval(two_versions, rollouts.get(MODEL))
    first = _scheduler(repo)
    try:
        _wait_for(lambda: rollouts.get(MODEL).weight == 100)
    finally:
        first.kill()  # mid-rollout, without a chance to clean up
        first.wait()
    log_interval(two_versions, rollouts.get(MODEL), seed=5)
    others = [_scheduler(repo), _scheduler(repo)]
    try:
        _wait_for(lambda: rollouts.get(MODEL).state == "promoted")
        time.sleep(1.5)  # a second controller deciding too would add an entry by now
    finally:
        for proc in others:
            proc.terminate()
            proc.wait(timeout=30)
    assert [e.decision for e in rollouts.get(MODEL).history] == ["started", "step", "promoted"]
    assert two_versions.models.get(MODEL).version == 2
