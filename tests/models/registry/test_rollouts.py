"""Rollouts in the registry: start, steer, promote, roll back, history, and the CLI's status."""

from __future__ import annotations

import json

import pytest

from featurestore.errors import InputError, InUseError, NotFoundError

from ...cli_in_process import featurestore


def test_start_steps_and_promotes_with_the_reason_in_the_alias_history(two_versions):
    rollouts = two_versions.models.rollouts
    started = rollouts.start("driver_model", 2, step_weight=20, max_weight=60, interval="30s", threshold=2,
                             min_requests=10, checks={"p99_ms": 250})
    assert (started.state, started.stable, started.candidate, started.weight) == ("running", 1, 2, 20)
    assert started.interval == 30 and started.checks["p99_ms"] == 250 and started.checks["success_rate"] == 0.99
    rollouts.set_weight("driver_model", 40, reason="interval passed", measured={"candidate": {"requests": 50}})
    rollouts.record("driver_model", "inconclusive", {"candidate": {"requests": 3}}, failed=False)
    rollouts.record("driver_model", "failed", {"candidate": {"success_rate": 0.9}}, failed=True)
    assert rollouts.get("driver_model").failed_checks == 1
    done = rollouts.promote("driver_model", reason="passed at 60%")
    assert (done.state, done.weight) == ("promoted", 100)
    assert [e.decision for e in done.history] == ["started", "step", "inconclusive", "failed", "promoted"]
    assert done.history[1].measured == {"candidate": {"requests": 50}} and done.history[1].weight == 40
    assert two_versions.models.get("driver_model").version == 2
    move = two_versions.models.alias_history("driver_model", "champion")[-1]
    assert (move.previous, move.version) == (1, 2) and "passed at 60%" in move.reason
    # A finished rollout no longer pins the old champion; a new one starts with a fresh history.
    two_versions.models.archive("driver_model/1")
    with pytest.raises(InputError, match="archived"):
        rollouts.start("driver_model", 1)


def test_rollback_marks_the_candidate_failed_and_releases_it(two_versions):
    rollouts = two_versions.models.rollouts
    rollouts.start("driver_model", 2, mode="shadow")
    with pytest.raises(InUseError, match="driver_model/2"):
        two_versions.models.archive("driver_model/2")
    rollouts.pause("driver_model", reason="looking")
    with pytest.raises(InputError, match="paused"):
        rollouts.pause("driver_model")
    failure = {"check": "js_distance", "limit": 0.1, "measured": 0.4}
    back = rollouts.rollback("driver_model", failure=failure, measured={"candidate": {"js_distance": 0.4}})
    assert (back.state, back.weight, back.failure) == ("rolled_back", 0, failure)
    assert two_versions.models.get("driver_model").version == 1  # champion untouched
    with pytest.raises(InputError, match="rolled_back"):
        rollouts.resume("driver_model")
    again = rollouts.start("driver_model", 2)
    assert [e.decision for e in again.history] == ["started"] and again.rollout_id != back.rollout_id
    rollouts.rollback("driver_model")
    assert two_versions.models.archive("driver_model/2").status == "archived"  # no longer pinned


@pytest.mark.parametrize("kwargs, error, words", [
    ({"candidate": 1}, InputError, "already the champion"),
    ({"candidate": 9}, InputError, "driver_model/9 does not exist"),
    ({"candidate": 2, "mode": "blue"}, InputError, "canary, shadow"),
    ({"candidate": 2, "step_weight": 60, "max_weight": 50}, InputError, "above max_weight"),
    ({"candidate": 2, "max_weight": 101}, InputError, "from 1 to 100"),
    ({"candidate": 2, "threshold": 0}, InputError, "threshold"),
    ({"candidate": 2, "interval": "soon"}, InputError, "interval .soon. is not a duration"),
    ({"candidate": 2, "checks": {"accuracy": 0.9}}, InputError, "unknown rollout check"),
    ({"candidate": 2, "checks": {"js_distance": -1}}, InputError, "js_distance"),
])
def test_bad_starts_are_refused_and_store_nothing(two_versions, kwargs, error, words):
    with pytest.raises(error, match=words):
        two_versions.models.rollouts.start("driver_model", **kwargs)
    with pytest.raises(NotFoundError, match="rollout start driver_model"):
        two_versions.models.rollouts.get("driver_model")


def test_one_rollout_at_a_time_and_a_champion_needed(two_versions):
    rollouts = two_versions.models.rollouts
    rollouts.start("driver_model", 2)
    with pytest.raises(InputError, match="already has a running rollout"):
        rollouts.start("driver_model", 2)
    rollouts.rollback("driver_model")
    two_versions.models.delete_alias("driver_model", "champion")
    with pytest.raises(InputError, match="no champion alias"):
        rollouts.start("driver_model", 2)
    with pytest.raises(NotFoundError, match="unknown model 'nope'"):
        rollouts.get("nope")


def _cli(repo, *args, check=True):
    return featurestore("-r", repo, "rollout", *args, check=check)


def test_cli_start_status_pause_resume_rollback(two_versions, repo):
    two_versions.close()
    _cli(repo, "start", "driver_model", "--candidate", "2", "--step", "25", "--max", "75", "--interval", "1m",
         "--check", "p99_ms=200", "--check", "js_distance=off")
    _cli(repo, "pause", "driver_model", "--reason", "weekend")
    _cli(repo, "resume", "driver_model")
    status = json.loads(_cli(repo, "status", "driver_model", "--json").stdout)
    assert list(status)[:5] == ["state", "stable", "candidate", "weight", "history"]
    assert (status["state"], status["stable"], status["candidate"], status["weight"]) == ("running", 1, 2, 25)
    assert [h["decision"] for h in status["history"]] == ["started", "paused", "resumed"]
    assert status["history"][1]["reason"] == "weekend" and set(status["history"][0]) == {
        "at", "decision", "weight", "reason", "measured"}
    assert status["settings"]["checks"]["p99_ms"] == 200 and status["settings"]["checks"]["js_distance"] is None
    assert status["settings"]["interval"] == 60
    text = _cli(repo, "status", "driver_model").stdout
    assert "running, canary of driver_model/2 against driver_model/1, weight 25%" in text and "weekend" in text
    bad = _cli(repo, "start", "driver_model", "--candidate", "2", check=False)
    assert bad.returncode != 0 and "already has a running rollout" in bad.stderr
    bad = _cli(repo, "start", "driver_model", "--candidate", "2", "--check", "p99_ms=fast", check=False)
    assert bad.returncode != 0 and "'fast' is not a number" in bad.stderr
    _cli(repo, "rollback", "driver_model", "--reason", "not today")
    status = json.loads(_cli(repo, "status", "driver_model", "--json").stdout)
    assert (status["state"], status["weight"]) == ("rolled_back", 0)
    assert status["failure"] == {"check": "manual", "reason": "not today"}


def test_cli_promql_checks_need_a_prometheus_and_keep_their_query(two_versions, repo):
    two_versions.close()
    query = 'sum(rate(featurestore_predictions_total{model="{model}",status!="ok"}[{interval}]))'
    bad = _cli(repo, "start", "driver_model", "--candidate", "2", "--promql", f"{query} <= 0.01", check=False)
    assert bad.returncode != 0 and "monitoring.prometheus_url" in bad.stderr and "Traceback" not in bad.stderr
    with open(repo / "featurestore.yaml", "a") as config:
        config.write("monitoring:\n  prometheus_url: http://prometheus:9090/\n")
    bad = _cli(repo, "start", "driver_model", "--candidate", "2", "--promql", query, check=False)
    assert bad.returncode != 0 and "must end with <= or >= and a number" in bad.stderr
    _cli(repo, "start", "driver_model", "--candidate", "2", "--promql", f"{query} <= 0.01",
         "--promql", "sum(up) >= 1")
    status = json.loads(_cli(repo, "status", "driver_model", "--json").stdout)
    assert status["settings"]["checks"]["promql"] == [
        {"name": "promql_1", "query": query, "max": 0.01}, {"name": "promql_2", "query": "sum(up)", "min": 1.0}]


@pytest.mark.parametrize("flags, words", [
    (["--step", "0"], "Invalid value for '--step': 0 is not in the range 1<=x<=100"),
    (["--max", "101"], "Invalid value for '--max': 101 is not in the range 1<=x<=100"),
    (["--threshold", "0"], "Invalid value for '--threshold': 0 is not in the range x>=1"),
    (["--min-requests", "0"], "Invalid value for '--min-requests'"),
    (["--step", "60", "--max", "50"], "error: --step 60 is above --max 50; lower --step or raise --max"),
    (["--interval", "0s"], "error: --interval '0s' must be longer than zero"),
    (["--interval", "soon"], "error: --interval 'soon' is not a duration; write it like"),
])
def test_cli_start_errors_name_the_flag_typed(two_versions, repo, flags, words):
    two_versions.close()
    result = _cli(repo, "start", "driver_model", "--candidate", "2", *flags, check=False)
    assert result.returncode in (1, 2) and words in result.stderr, result.stderr
    assert "step_weight" not in result.stderr and "max_weight" not in result.stderr
    assert "unknown rollout" in _cli(repo, "status", "driver_model", check=False).stderr
