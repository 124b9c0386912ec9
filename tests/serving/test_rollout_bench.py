"""bench/rollout.py's verdict: the caller's p99 with a shadow over without, one ratio per
short round (each measured in two halves around the other's), judged on the
median of the rounds with a bootstrap interval: met only when the whole interval is
within the target, missed when all of it is beyond, else inconclusive."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

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
    monkeypatch.setattr(rollout, "SHADOW_SETTLE", 0.0)
    rounds = rollout.c1_rounds({"plain": (1, b""), "shadowed": (2, b"")}, 2, 100)
    assert calls == [(1, 50), (2, 50), (2, 50), (1, 50), (2, 50), (1, 50), (1, 50), (2, 50)]
    assert [r["outer"] for r in rounds] == ["plain", "shadowed"]
    assert all(r["ratio"] == 2.0 and r["plain_p99_ms"] == 2.0 and r["shadowed_p99_ms"] == 4.0 for r in rounds)
