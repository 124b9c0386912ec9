"""``/models/{name}/rollout``: a model's canary or shadow rollout over HTTP (writes: API key).

The same operations and shapes as ``featurestore rollout`` (docs/rollouts.md): ``GET``
answers what ``status --json`` prints, ``POST`` starts one, ``POST .../{action}`` pauses,
resumes, promotes or rolls it back.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from featurestore.errors import InputError
from serving.auth import require_reader, require_writer
from serving.body import field, read_json
from serving.routes import ERROR_RESPONSES
from serving.state import ServingState, get_state

__all__ = ["router"]

router = APIRouter(prefix="/models", tags=["rollouts"], responses=ERROR_RESPONSES)

_ACTIONS = ("pause", "resume", "promote", "rollback")


@router.get("/{name}/rollout", dependencies=[Depends(require_reader)])
def rollout_status(name: str, state: ServingState = Depends(get_state)) -> dict:
    """The model's current (or last) rollout: state, weights, checks and history."""
    return state.store.models.rollouts.get(name).to_dict()


@router.post("/{name}/rollout", dependencies=[Depends(require_writer)])
async def start_rollout(name: str, request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Start rolling out ``candidate`` against the model's champion."""
    body = await read_json(request, state.max_body_bytes)
    known = {"candidate", "mode", "step_weight", "max_weight", "interval", "threshold", "min_requests", "checks",
             "reason"}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; a rollout takes {', '.join(sorted(known))}")
    options = {k: body[k] for k in known - {"candidate"} if body.get(k) is not None}
    started = await run_in_threadpool(state.store.models.rollouts.start, name, field(body, "candidate", int),
                                      **options)
    return started.to_dict()


@router.post("/{name}/rollout/{action}", dependencies=[Depends(require_writer)])
async def steer_rollout(name: str, action: str, request: Request, state: ServingState = Depends(get_state)) -> dict:
    """``pause``, ``resume``, ``promote`` or ``rollback`` the model's rollout (``?reason=...``)."""
    if action not in _ACTIONS:
        raise InputError(f"unknown rollout action {action!r}; one of {', '.join(_ACTIONS)}")
    run = getattr(state.store.models.rollouts, action)
    return (await run_in_threadpool(run, name, reason=request.query_params.get("reason"))).to_dict()
