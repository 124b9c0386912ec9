"""A rollout's PromQL checks, asked of the Prometheus named by ``monitoring.prometheus_url``.

Each check (``featurestore.models.rollouts``: ``{name, query, min and/or max}``) is one
instant query at the end of the interval judged (``/api/v1/query?time=...``). Before it
is sent, these placeholders in the query are replaced (other braces are PromQL's own):

- ``{model}``: the model's name; ``{stable}``, ``{candidate}``: the two version numbers;
- ``{variant}``: the candidate's variant label, ``canary`` or ``shadow`` (the rollout's mode);
- ``{interval}``: the rollout's interval as a PromQL duration (``60s``), for ``rate(...[{interval}])``.

The answer must be one number: a scalar, or a vector of exactly one sample. Outcomes:

- ``passed`` / ``failed``: the number is (not) within ``min`` .. ``max``;
- ``inconclusive``: no sample, or NaN (a ratio over no requests), so nothing to judge yet;
- ``failed`` with ``error``: Prometheus refused the query, answered several series, or
  could not be reached. A broken check never passes a candidate (as in Flagger).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import httpx

from featurestore.models.rollouts import PROMQL

from monitoring.rollout_analysis import FAILED, INCONCLUSIVE, PASSED, Analysis

__all__ = ["TIMEOUT", "PromQLError", "check_promql", "query_value", "render_query", "with_promql"]

#: Seconds one query may take (connect and answer) before it counts as failed.
TIMEOUT = 5.0


class PromQLError(Exception):
    """The query could not be answered with one number (the message says why)."""


def render_query(query: str, rollout) -> str:
    """``query`` with the rollout's placeholders filled in."""
    values = {"model": rollout.model, "stable": rollout.stable, "candidate": rollout.candidate,
              "variant": rollout.mode, "interval": f"{max(1, round(rollout.interval))}s"}
    for key, value in values.items():
        query = query.replace("{" + key + "}", str(value))
    return query


def query_value(url: str, query: str, at: datetime, timeout: float = TIMEOUT) -> float | None:
    """The one number ``query`` gives at ``at`` (None: no sample); PromQLError otherwise."""
    try:
        answer = httpx.get(f"{url}/api/v1/query", params={"query": query, "time": f"{at.timestamp():.3f}"},
                           timeout=timeout)
    except httpx.HTTPError as exc:
        raise PromQLError(f"Prometheus at {url} did not answer: {type(exc).__name__}: {exc}") from None
    try:
        body = answer.json()
    except ValueError:
        raise PromQLError(f"Prometheus at {url} answered HTTP {answer.status_code} without JSON") from None
    if body.get("status") != "success":
        raise PromQLError(f"Prometheus refused the query ({body.get('errorType')}): {body.get('error')}")
    data = body["data"]
    if data["resultType"] == "scalar":
        value = data["result"][1]
    elif data["resultType"] == "vector":
        if not data["result"]:
            return None
        if len(data["result"]) > 1:
            raise PromQLError(f"the query gave {len(data['result'])} series; aggregate it to one number "
                              "(sum(...), max(...))")
        value = data["result"][0]["value"][1]
    else:
        raise PromQLError(f"the query gave a {data['resultType']}; a check needs one number (an instant vector "
                          "of one series, or a scalar)")
    number = float(value)
    return None if math.isnan(number) else number


def check_promql(url: str | None, rollout, at: datetime) -> list[dict[str, Any]]:
    """Each PromQL check of ``rollout`` judged at ``at``: name, query as sent, measured
    value, bounds, outcome (and the error, if any)."""
    results = []
    for check in rollout.checks.get(PROMQL) or []:
        query = render_query(check["query"], rollout)
        bounds = {k: check[k] for k in ("min", "max") if k in check}
        result: dict[str, Any] = {"check": check["name"], "query": query, "measured": None, **bounds}
        try:
            if url is None:
                raise PromQLError("no Prometheus to ask: set monitoring.prometheus_url in featurestore.yaml")
            value = query_value(url, query, at)
        except PromQLError as exc:
            result.update(outcome=FAILED, error=str(exc))
        else:
            result["measured"] = value
            if value is None:
                result["outcome"] = INCONCLUSIVE
            else:
                within = value <= bounds.get("max", math.inf) and value >= bounds.get("min", -math.inf)
                result["outcome"] = PASSED if within else FAILED
        results.append(result)
    return results


def with_promql(analysis: Analysis, results: list[dict[str, Any]]) -> Analysis:
    """The interval's verdict with the PromQL results added: any failed check fails it;
    else any check without data (or an inconclusive log analysis) leaves it inconclusive."""
    if not results:
        return analysis
    measured = {**analysis.measured, PROMQL: results}
    failed = [_failure(r) for r in results if r["outcome"] == FAILED]
    waiting = [r["check"] for r in results if r["outcome"] == INCONCLUSIVE]
    failures = analysis.failures + failed
    if failures:
        reasons = [analysis.reason] if analysis.verdict == FAILED else []
        reasons += [_describe(f) for f in failed]
        return Analysis(FAILED, measured, failures, ", ".join(reasons))
    if analysis.verdict == INCONCLUSIVE or waiting:
        reasons = [analysis.reason] if analysis.verdict == INCONCLUSIVE else []
        reasons += [f"no data for {name}" for name in waiting]
        return Analysis(INCONCLUSIVE, measured, reason="; ".join(reasons))
    return Analysis(PASSED, measured, reason=analysis.reason)


def _failure(result: dict[str, Any]) -> dict[str, Any]:
    limit = result.get("max", result.get("min"))
    bounds = {k: result[k] for k in ("min", "max") if k in result}
    out = {"check": result["check"], "measured": result["measured"], "limit": limit, **bounds,
           "query": result["query"]}
    if "error" in result:
        out["error"] = result["error"]
    return out


def _describe(failure: dict[str, Any]) -> str:
    if "error" in failure:
        return f"{failure['check']} failed: {failure['error']}"
    return f"{failure['check']} {failure['measured']:.4g} (limit {failure['limit']:g})"
