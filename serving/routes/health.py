"""``GET /health`` (liveness), ``GET /ready`` (readiness) and ``GET /metrics`` (Prometheus)."""

from __future__ import annotations

import logging
import weakref

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from monitoring.jobs import render_job_metrics
from monitoring.metrics import render
from monitoring.monitor_metrics import render_monitor_metrics
from monitoring.rollout_metrics import RolloutDecisionsCollector, render_rollout_metrics
from monitoring.streaming import render_stream_lag
from serving.auth import require_metrics_reader
from serving.disclosure import trusted
from serving.errors import HTTPError
from serving.schemas import ErrorBody
from serving.state import ServingState, get_state

__all__ = ["router"]

router = APIRouter(tags=["operations"])

log = logging.getLogger("featurestore.serving")
# One per server state: it keeps the decision counts until the rollouts' revision moves.
_DECISIONS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@router.get("/health")
async def health() -> dict:
    """The process is up and its event loop answers. Checks nothing else, on purpose: a
    liveness probe that fails when Redis is down would restart healthy servers."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"model": ErrorBody, "description": "Not ready; the message says why"}})
async def ready(request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Ready to serve: the registry is loaded and the online store answers a ping. Why
    not is logged; the answer has the details (paths, hosts) only for a valid API key."""
    if state.registry_error is not None:
        log.warning("not ready: registry not loaded: %s", state.registry_error)
        detail = f": {state.registry_error}" if trusted(request) else " (the server log has the details)"
        raise HTTPError(503, "NotReady", f"registry not loaded{detail}")
    reason = await state.health_check()
    if reason is not None:
        log.warning("not ready: online store unavailable: %s", reason)
        detail = f": {reason}" if trusted(request) else " (the server log has the details)"
        raise HTTPError(503, "NotReady", f"the online store is unavailable{detail}")
    return {"status": "ready", "project": state.store.project, "registry_revision": state.revision,
            "online_store": state.store_type}


@router.get("/metrics", response_class=Response, dependencies=[Depends(require_metrics_reader)])
def metrics(state: ServingState = Depends(get_state)) -> Response:
    """Prometheus exposition: this server's metrics (all worker processes when run with
    --workers N), then the materialization job metrics and the model monitors' latest
    results and the rollout decisions read from the registry, and the backlog of the
    configured streams."""
    body, content_type = render()
    # Read from the registry and Redis at scrape time, so every worker reports the same values.
    for what, extra in (("job", lambda: render_job_metrics(state.store.registry, state.store.project)),
                        ("stream lag", lambda: render_stream_lag(state.store)),
                        ("model monitor", lambda: render_monitor_metrics(state.store)),
                        ("rollout", lambda: render_rollout_metrics(_decisions(state)))):
        try:
            body += extra()
        except Exception as exc:  # an unreadable registry or stream must not cost the serving metrics
            log.warning("%s metrics left out of /metrics: %s", what, exc)
    return Response(body, media_type=content_type)


def _decisions(state: ServingState) -> RolloutDecisionsCollector:
    collector = _DECISIONS.get(state)
    if collector is None:
        collector = _DECISIONS[state] = RolloutDecisionsCollector(state.store.registry, state.store.project)
    return collector
