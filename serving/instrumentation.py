"""Recording the serving metrics of ``monitoring.metrics``.

``MetricsMiddleware`` is a plain ASGI middleware (Starlette's ``BaseHTTPMiddleware`` costs
tens of microseconds a request) that counts and times every request by route template,
so ``/registry/feature-views/{name}`` is one series however many names are asked for.
``observe_online`` records what an online answer held. Both keep the labelled children
they use, since ``metric.labels(...)`` is a locked dictionary lookup each time, and record
through their batches (``monitoring.metric_batches``: an append, not a locked update).

Labels never take free text from a request: a method outside the standard ones is
counted as ``other`` (any token is a valid HTTP method, and every label value is a series
Prometheus and this process keep forever), and the caches are bounded.
"""

from __future__ import annotations

import time
from typing import Any

from featurestore.bounded import BoundedCache
from featurestore.online.read import PLAN_CACHE_SIZE, FieldStatus, OnlineResponse, ReadPlan
from monitoring import metric_batches
from monitoring.metrics import (
    HTTP_REQUEST_DURATION,
    HTTP_REQUESTS,
    ONLINE_NULL_VALUES,
    ONLINE_REQUEST_ENTITIES,
    ONLINE_VALUE_AGE,
)

__all__ = ["MetricsMiddleware", "observe_online"]

_PRESENT, _OUTSIDE = FieldStatus.PRESENT, FieldStatus.OUTSIDE_MAX_AGE
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_REASONS = ((FieldStatus.NOT_FOUND, "not_found"), (FieldStatus.OUTSIDE_MAX_AGE, "outside_max_age"),
            (FieldStatus.NULL_VALUE, "null_value"))


class MetricsMiddleware:
    def __init__(self, app: Any):
        self.app = app
        self._series: dict[tuple[str, str, int], metric_batches.BatchedHistogram] = {}
        metric_batches.start_flushing()  # built in the serving process, on its first request

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the client gets if the app raises past its error handlers

        def send_and_note(message: dict) -> Any:  # send's own awaitable: no coroutine of its own
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # The router puts the matched route into the scope; unmatched paths share one series.
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            if method not in _METHODS:
                method = "other"
            key = (endpoint, method, status)
            series = self._series.get(key)
            if series is None:  # the request count is the duration histogram's count, added with it
                labels = (endpoint, method, str(status))
                series = self._series[key] = metric_batches.histogram(
                    HTTP_REQUEST_DURATION.labels(*labels), counted_by=HTTP_REQUESTS.labels(*labels))
            series.observe(time.perf_counter() - began)


_layouts: BoundedCache[int, tuple[ReadPlan, list[tuple[str, int, int, Any, dict]]]] = BoundedCache(PLAN_CACHE_SIZE)
_entities = metric_batches.histogram(ONLINE_REQUEST_ENTITIES).observe


def _layout(plan: ReadPlan) -> list[tuple[str, int, int, Any, dict]]:
    """Per view of a plan: its name, first column, column count, age histogram and null counters.
    Cached by plan (plans are cached by the store, so this runs once per feature list)."""
    cached = _layouts.get(id(plan))
    if cached is not None and cached[0] is plan:
        return cached[1]
    layout, column = [], len(plan.join_keys)
    for item in plan.items:
        name = item.view.name
        nulls = {status: metric_batches.counter(ONLINE_NULL_VALUES.labels(name, reason)).inc
                 for status, reason in _REASONS}
        age = metric_batches.histogram(ONLINE_VALUE_AGE.labels(name)).observe
        layout.append((name, column, len(item.features), age, nulls))
        column += len(item.features)
    _layouts.put(id(plan), (plan, layout))  # holding the plan keeps its id from being reused
    return layout


def observe_online(plan: ReadPlan, response: OnlineResponse, now: float) -> None:
    """Entities per request, null values by view and reason, and per view the age of the
    oldest row served (one observation per request and view, not per row: the stalest row
    is what an alert on freshness wants)."""
    n = len(response.values[0]) if response.values else 0
    _entities(n)
    if not n:
        return
    now_us = now * 1_000_000
    statuses, stamps = response.statuses, response.event_timestamps
    for _name, first, width, observe_age, nulls in _layout(plan):
        for column in statuses[first : first + width]:
            if column.count(_PRESENT) != n:
                for status, count_nulls in nulls.items():
                    count = column.count(status)
                    if count:
                        count_nulls(count)
        row_status = statuses[first]
        oldest = None
        for ts, status in zip(stamps[first], row_status):
            if ts is not None and status != _OUTSIDE and (oldest is None or ts < oldest):
                oldest = ts
        if oldest is not None:
            observe_age((now_us - oldest) / 1_000_000)
