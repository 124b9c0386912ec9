"""One interval of a rollout judged from the serving log: per variant numbers, then a verdict.

The rows of the interval are split by the log's ``variant`` and ``version`` columns:
``stable`` rows of the stable version, ``canary`` (or ``shadow``) rows of the candidate.
Per variant it measures:

- ``requests``: rows logged;
- ``success_rate``: the share of rows whose ``status`` is ``ok`` (the server logs a
  request its model failed with ``model_error`` or ``timeout``; a log without the
  column holds answered requests only: 1.0);
- ``p99_ms``: the 99th percentile of ``latency_ms``, the request's time in the server
  (None when the log has no latencies);
- ``null_rate``: the share of feature values whose ``<f>__status`` is not PRESENT;
- for the candidate, ``js_distance``: the Jensen-Shannon distance (base 2, so 0..1) of its
  predictions to stable's over the same interval, on shared bins (deciles of the pooled
  numbers, or the categories), and ``js_noise``: the distance that two samples of these
  sizes from one distribution exceed 1% of the time (a permutation test).
  A few hundred rows of one distribution already score 0.1 to 0.2, so the check fails
  only a distance above both its limit and the noise: a false-alarm rate of about 1%
  per interval whatever the traffic (tests/models/registry/test_rollout_controller.py
  measures it over many seeds).

The verdict is ``inconclusive`` when either variant has fewer than ``min_requests`` rows
or a configured check cannot be measured, else ``failed`` (with each failed check, its
measured value and limit) or ``passed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.models.rollouts import PROMQL
from featurestore.serving_log.layout import LATENCY_MS, OUTCOME

__all__ = ["Analysis", "analyze", "js_distance", "js_noise"]

PASSED, FAILED, INCONCLUSIVE = "passed", "failed", "inconclusive"
_BINS = 10
#: Relabellings that measure the distance's noise, and the share of them a distance must
#: beat to fail the check (so two samples of one distribution fail it 1% of the time).
_PERMUTATIONS, _NOISE_QUANTILE = 1000, 0.99
OK = "ok"


@dataclass(frozen=True)
class Analysis:
    verdict: str
    measured: dict[str, dict[str, Any]]
    failures: list[dict[str, Any]] = field(default_factory=list)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "failures": self.failures, **self.measured}


def analyze(log: pa.Table, rollout) -> Analysis:
    """The verdict on ``rollout`` (a ``featurestore.models.rollouts.Rollout``) from the
    serving log rows of one interval."""
    stable = _rows(log, "stable", rollout.stable)
    candidate = _rows(log, rollout.mode, rollout.candidate)
    measured = {"stable": _measure(stable), "candidate": _measure(candidate)}
    few = [name for name, rows in (("stable", stable), ("candidate", candidate))
           if rows.num_rows < rollout.min_requests]
    if few:
        return Analysis(INCONCLUSIVE, measured, reason=f"fewer than {rollout.min_requests} requests for "
                                                       f"{' and '.join(few)}")
    ours_p, theirs_p = _predictions(candidate), _predictions(stable)
    measured["candidate"]["js_distance"] = js_distance(theirs_p, ours_p)
    measured["candidate"]["js_noise"] = js_noise(theirs_p, ours_p) if rollout.checks.get("js_distance") else None
    ours, theirs = measured["candidate"], measured["stable"]
    values = {
        "success_rate": ours["success_rate"], "p99_ms": ours["p99_ms"], "null_rate": ours["null_rate"],
        "js_distance": ours["js_distance"],
        "p99_ratio": None if ours["p99_ms"] is None or not theirs["p99_ms"] else ours["p99_ms"] / theirs["p99_ms"],
    }
    failures, unmeasured = [], []
    for check, limit in rollout.checks.items():
        if limit is None or check == PROMQL:  # asked of Prometheus: monitoring.rollout_promql
            continue
        value = values[check]
        if value is None:
            unmeasured.append(check)
        elif check == "js_distance" and value > limit and value <= (ours["js_noise"] or 0.0):
            continue  # above the limit, but no further than two samples of one distribution may be
        elif value < limit if check == "success_rate" else value > limit:
            failures.append({"check": check, "measured": value, "limit": limit})
    if failures:
        return Analysis(FAILED, measured, failures, ", ".join(f"{f['check']} {f['measured']:.4g} (limit "
                                                               f"{f['limit']:g})" for f in failures))
    if unmeasured:
        return Analysis(INCONCLUSIVE, measured, reason=f"not measured in the log: {', '.join(unmeasured)}")
    return Analysis(PASSED, measured, reason="every check passed")


def js_distance(a: np.ndarray, b: np.ndarray) -> float | None:
    """Jensen-Shannon distance (base 2) between two samples, on shared bins; None if either
    is empty."""
    binned = _binned(a, b)
    if binned is None:
        return None
    codes, k = binned
    return _js(np.bincount(codes[: len(a)], minlength=k), np.bincount(codes[len(a):], minlength=k))


def js_noise(a: np.ndarray, b: np.ndarray, permutations: int = _PERMUTATIONS, seed: int = 0) -> float | None:
    """The distance that two samples of these sizes from one distribution exceed only 1% of
    the time: the 99th percentile over random relabellings of the pooled predictions (a
    permutation test, so no assumption about their distribution). None if either is empty."""
    binned = _binned(a, b)
    if binned is None:
        return None
    codes, k = binned
    total = np.bincount(codes, minlength=k)
    # The bin counts of len(a) rows drawn at random from the pool without replacement, once
    # per permutation: what shuffling the labels gives, in O(bins) rather than O(rows).
    first = np.random.default_rng(seed).multivariate_hypergeometric(total, len(a), size=permutations)
    return float(np.quantile(_js(first, total - first), _NOISE_QUANTILE))


def _binned(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The pooled samples' bin numbers (a's first) and the number of bins: deciles of the
    pooled numbers (as np.histogram bins them), or one bin per category."""
    if len(a) == 0 or len(b) == 0:
        return None
    if a.dtype.kind in "biuf" and b.dtype.kind in "biuf":
        pooled = np.concatenate([a, b]).astype(float)
        edges = np.unique(np.quantile(pooled, np.linspace(0, 1, _BINS + 1)))
        if len(edges) < 2:
            return np.zeros(len(pooled), dtype=np.int64), 1
        codes = np.clip(np.searchsorted(edges, pooled, side="right") - 1, 0, len(edges) - 2)
        return codes, len(edges) - 1
    pooled = np.concatenate([a.astype(object), b.astype(object)])
    index = {c: i for i, c in enumerate(sorted(set(pooled.tolist()), key=str))}
    return np.array([index[v] for v in pooled.tolist()], dtype=np.int64), len(index)


def _js(p: np.ndarray, q: np.ndarray):
    """The distance between bin counts ``p`` and ``q`` (the last axis; a float for one pair)."""
    p = p / p.sum(axis=-1, keepdims=True)
    q = q / q.sum(axis=-1, keepdims=True)
    m = (p + q) / 2
    distance = np.sqrt(np.maximum((_kl(p, m) + _kl(q, m)) / 2, 0.0))
    return float(distance) if distance.ndim == 0 else distance


def _kl(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(np.where(p > 0, p, 1.0) / np.where(m > 0, m, 1.0)), 0.0)
    return terms.sum(axis=-1)


def _rows(log: pa.Table, variant: str, version: int) -> pa.Table:
    if log.num_rows == 0 or "variant" not in log.column_names:
        return log.slice(0, 0)
    keep = pc.and_(pc.equal(log["variant"], variant), pc.equal(log["version"], version))
    return log.filter(keep)


def _measure(rows: pa.Table) -> dict[str, Any]:
    n = rows.num_rows
    names = rows.column_names
    answered = n
    if OUTCOME in names and n:
        answered = pc.sum(pc.equal(rows[OUTCOME], OK)).as_py() or 0
    statuses = [c for c in names if c.endswith("__status")]
    cells = n * len(statuses)
    absent = sum(n - pc.sum(pc.equal(rows[c], "PRESENT")).as_py() if n else 0 for c in statuses)
    latency = rows[LATENCY_MS].drop_null().to_numpy() if LATENCY_MS in names else np.array([])
    return {
        "requests": n,
        "success_rate": (answered / n) if n else None,
        "p99_ms": float(np.percentile(latency, 99)) if len(latency) else None,
        "null_rate": (absent / cells) if cells else None,
    }


def _predictions(rows: pa.Table) -> np.ndarray:
    """The answered rows' predictions (the first value of list-typed ones), flattened."""
    if "prediction" not in rows.column_names:
        return np.array([])
    if OUTCOME in rows.column_names:
        rows = rows.filter(pc.equal(rows[OUTCOME], OK))
    column = rows["prediction"]
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        column = pc.list_element(column, 0)
    return column.drop_null().to_numpy(zero_copy_only=False)
