"""``/models``: browse the model registry, and move aliases (a write: API key).

Every version in an answer carries its ``aliases``, and every model its alias map, so a
client never needs a second call to learn what ``champion`` points at. Shapes are
``Model.to_dict()``, ``ModelVersion.to_dict()`` and ``AliasMove.to_dict()`` of
featurestore/models/records.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from serving.auth import require_reader, require_writer
from serving.body import field, read_json
from serving.routes import ERROR_RESPONSES
from serving.schemas import request_body
from serving.state import ServingState, get_state

__all__ = ["AliasMoveRequest", "router"]

router = APIRouter(prefix="/models", tags=["models"], responses=ERROR_RESPONSES)


class AliasMoveRequest(BaseModel):
    version: int = Field(ge=1, description="The version the alias points at from now on.", examples=[3])
    reason: str | None = Field(None, description="Why; kept in the alias's history.", examples=["better AUC"])


# Plain ``def`` read routes: registry reads are blocking SQLite calls, so FastAPI runs
# them in its thread pool, away from the online hot path.

@router.get("", dependencies=[Depends(require_reader)])
def list_models(state: ServingState = Depends(get_state)) -> dict:
    """Every model with its latest version number and its aliases."""
    return {"models": [m.to_dict() for m in state.store.models.list()]}


@router.get("/{name}", dependencies=[Depends(require_reader)])
def get_model(name: str, state: ServingState = Depends(get_state)) -> dict:
    """One model: its description, aliases and every version (each with its aliases)."""
    models = state.store.models
    return {**models.get_model(name).to_dict(), "versions": [v.to_dict() for v in models.versions(name)]}


@router.get("/{name}/versions/{version}", dependencies=[Depends(require_reader)])
def get_version(name: str, version: int, state: ServingState = Depends(get_state)) -> dict:
    """One version: artifact, flavor, signature, features, training set, metrics, aliases."""
    return state.store.models.get(f"{name}/{version}").to_dict()


@router.get("/{name}/aliases/{alias}", dependencies=[Depends(require_reader)])
def get_alias(name: str, alias: str, state: ServingState = Depends(get_state)) -> dict:
    """The version an alias points at now, and every move it made."""
    models = state.store.models
    history = models.alias_history(name, alias)
    current = models.get(f"{name}@{alias}") if history[-1].version is not None else None
    return {"model": name, "alias": alias, "version": current.to_dict() if current else None,
            "history": [m.to_dict() for m in history]}


@router.put("/{name}/aliases/{alias}", dependencies=[Depends(require_writer)],
            openapi_extra=request_body(AliasMoveRequest))
async def set_alias(name: str, alias: str, request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Point ``name@alias`` at a ready version, atomically; the move is kept in its history."""
    body = await read_json(request, state.max_body_bytes)
    version = field(body, "version", int)
    reason = field(body, "reason", str, None)
    moved = await run_in_threadpool(state.store.models.set_alias, name, alias, version, reason)
    return {"model": name, "alias": alias, "version": moved.to_dict()}


@router.delete("/{name}/aliases/{alias}", dependencies=[Depends(require_writer)])
async def delete_alias(name: str, alias: str, request: Request, state: ServingState = Depends(get_state)) -> dict:
    """Delete ``name@alias``; ``?reason=...`` is kept in its history."""
    reason = request.query_params.get("reason")
    move = await run_in_threadpool(state.store.models.delete_alias, name, alias, reason)
    return move.to_dict()
