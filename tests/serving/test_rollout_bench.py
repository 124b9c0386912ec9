"""bench/rollout.py's verdict: the caller's p99 with a shadow over without, measured in
short rounds (each model in two halves around the other's, a pause after every half),
judged on the p99 over all the rounds' requests with a bootstrap interval that resamples
whole rounds (and reported as the median of the rounds' ratios too): met only when the
whole interval is within the target, missed when all of it is beyond, else inconclusive."""

from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "rollout.py"


@pytest.fixture(scope="module")
def rollout():
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location("bench_rollout", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.path[:] = path  # it appends bench/ for its own imports
    return module


def test_the_spread_gives_the_median_ratio_its_quartiles_and_an_interval_around_it(rollout):
    ratios = [0.9, 0.95, 1.0, 1.0, 1.02, 1.03, 1.05, 1.1, 1.2, 2.5]
    found = rollout.spread(ratios)
    assert found["median"] == 1.025 and found["rounds"] == 10
    assert found["q1"] < found["median"] < found["q3"]
    low, high = found["ci95"]
    assert min(ratios) <= low <= found["median"] <= high <= max(ratios)
    assert rollout.spread(ratios) == found  # a fixed seed: the same rounds, the same interval


def test_the_target_is_met_only_when_the_whole_interval_is_within_it(rollout):
    assert rollout.verdict(rollout.spread([0.98, 1.0, 1.01, 1.02, 0.99, 1.0, 1.03, 0.97] * 4)) == "met"
    assert rollout.verdict(rollout.spread([1.2, 1.3, 1.1, 1.25, 1.15, 1.4] * 4)) == "missed"
    # a median within the target whose interval reaches past it proves nothing
    noisy = rollout.spread([0.6, 0.8, 1.0, 1.04, 1.3, 1.6, 0.7, 1.5])
    assert noisy["median"] <= 1.05 and rollout.verdict(noisy) == "inconclusive"


def test_each_round_measures_each_in_two_halves_around_the_other_the_order_flipping(rollout, monkeypatch):
    calls = []

    async def load(port, request, concurrency, max_requests, seconds):
        calls.append((port, max_requests))
        return [0.001 * port] * 90 + [0.002 * port] * 10, 1.0  # p99: 2 ms x port

    monkeypatch.setattr(rollout, "load", load)
    monkeypatch.setattr(rollout.time, "sleep", lambda seconds: calls.append(("pause", seconds)))
    rounds = rollout.c1_rounds({"plain": (1, b""), "shadowed": (2, b"")}, 2, 100)
    pause = ("pause", rollout.SHADOW_SETTLE)  # after every half, plain's too: each starts from the same pause
    assert calls == [(1, 50), pause, (2, 50), pause, (2, 50), pause, (1, 50), pause,
                     (2, 50), pause, (1, 50), pause, (1, 50), pause, (2, 50), pause]
    assert [r["outer"] for r in rounds] == ["plain", "shadowed"]
    assert all(r["ratio"] == 2.0 and r["plain_p99_ms"] == 2.0 and r["shadowed_p99_ms"] == 4.0 for r in rounds)


def _round(plain: list[float], shadowed: list[float]) -> dict:
    return {"latencies": {"plain": plain, "shadowed": shadowed}}


def test_the_callers_p99_pools_every_request_and_resamples_whole_rounds(rollout):
    quiet = [_round([0.001] * 100, [0.00102] * 100) for _ in range(20)]
    found = rollout.pooled(quiet)
    assert (found["plain_p99_ms"], found["shadowed_p99_ms"], found["ratio"]) == (1.0, 1.02, 1.02)
    assert found["ci95"] == [1.02, 1.02] and found["requests"] == 2000 and found["rounds"] == 20
    assert rollout.verdict(found) == "met"
    slower = [_round([0.001] * 100, [0.0012] * 100) for _ in range(20)]
    assert rollout.pooled(slower)["ratio"] == 1.2 and rollout.verdict(rollout.pooled(slower)) == "missed"


def test_the_callers_p99_is_the_p99_of_all_requests_its_interval_around_it(rollout):
    rng = random.Random(3)
    rounds = [_round([rng.lognormvariate(0, 0.3) / 1000 for _ in range(200)],
                     [rng.lognormvariate(0.02, 0.3) / 1000 for _ in range(200)]) for _ in range(30)]
    found = rollout.pooled(rounds)
    every = {name: np.concatenate([r["latencies"][name] for r in rounds]) for name in ("plain", "shadowed")}
    p99 = {name: float(np.percentile(values, 99)) for name, values in every.items()}
    assert found["ratio"] == round(p99["shadowed"] / p99["plain"], 3)
    assert found["plain_p99_ms"] == round(p99["plain"] * 1000, 3)
    low, high = found["ci95"]
    assert low < found["ratio"] < high  # noisy rounds: an interval of some width around it
    assert rollout.pooled(rounds) == found  # a fixed seed


@pytest.mark.parametrize("control", [False, True], ids=["shadow", "control"])
def test_the_control_run_registers_the_same_models_and_starts_no_rollout(rollout, tmp_path, control):
    """``--control``: both models plain (an A/A run); otherwise bench_shadowed/2 shadows at weight 100."""
    from featurestore import FeatureStore
    from featurestore.errors import NotFoundError
    from featurestore.scaffold import init_repo

    repo = init_repo(tmp_path / "repo", project="bench_control")
    with FeatureStore(repo_path=repo) as store:
        store.apply()
    rollout.register(repo, {}, control=control)
    with FeatureStore(repo_path=repo) as store:
        assert [len(store.models.versions(name)) for name in (rollout.PLAIN, rollout.SHADOWED)] == [1, 2]
        active = [(r.model, r.mode, r.stable, r.candidate, r.weight) for r in store.models.rollouts.active()]
        if control:
            assert active == []
            with pytest.raises(NotFoundError):
                store.models.rollouts.get(rollout.SHADOWED)
        else:
            assert active == [(rollout.SHADOWED, "shadow", 1, 2, 100)]
