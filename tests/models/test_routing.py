"""The canary split: within 2 points of the weight over 20,000 entities, sticky, and only
growing from stable to candidate as the weight steps up."""

from __future__ import annotations

import subprocess
import sys

import pytest

from featurestore.models.routing import bucket, to_candidate

KEYS = [[i] for i in range(20_000)]


@pytest.mark.parametrize("weight", [1, 10, 25, 50, 90])
def test_the_split_follows_the_weight(weight):
    share = sum(to_candidate(k, weight) for k in KEYS) / len(KEYS) * 100
    assert abs(share - weight) <= 2


def test_sticky_growing_and_the_same_in_another_process():
    at_10 = {k[0] for k in KEYS if to_candidate(k, 10)}
    at_30 = {k[0] for k in KEYS if to_candidate(k, 30)}
    assert at_10 < at_30 and at_10 == {k[0] for k in KEYS if to_candidate(k, 10)}
    assert not any(to_candidate(k, 0) for k in KEYS) and all(to_candidate(k, 100) for k in KEYS)
    code = "from featurestore.models.routing import bucket; print([bucket([i]) for i in range(50)])"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == str([bucket([i]) for i in range(50)])
    assert bucket([1001]) != bucket(["1001"]) and bucket(["a", 1]) != bucket([1, "a"])
