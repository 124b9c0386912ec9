"""``GET /registry/...``: browse the definitions the registry holds now, as JSON.

Each object is ``{"kind", "name", "version", "created_at", "spec"}``, with the spec
exactly as stored by ``featurestore apply`` (see featurestore/serialization.py).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from featurestore.errors import NotFoundError
from serving.auth import require_reader
from serving.routes import ERROR_RESPONSES
from serving.schemas import RegistryObject
from serving.state import ServingState, get_state

__all__ = ["router"]

router = APIRouter(prefix="/registry", tags=["registry"], dependencies=[Depends(require_reader)],
                   responses=ERROR_RESPONSES)

# path segment -> (registry kind, answer key, what the user calls it)
_KINDS = {
    "entities": ("entity", "entities", "entity"),
    "data-sources": ("data_source", "data_sources", "data source"),
    "feature-views": ("feature_view", "feature_views", "feature view"),
    "feature-services": ("feature_service", "feature_services", "feature service"),
}


def _json(obj) -> dict:
    return {"kind": obj.kind, "name": obj.name, "version": obj.version,
            "created_at": obj.created_at.isoformat(), "spec": obj.spec}


def _list(state: ServingState, segment: str) -> dict:
    kind, key, _ = _KINDS[segment]
    return {key: [_json(o) for o in state.store.registry.list(state.store.project, kind)]}


def _one(state: ServingState, segment: str, name: str) -> dict:
    kind, _, label = _KINDS[segment]
    obj = state.store.registry.get(state.store.project, kind, name)
    if obj is None:
        known = [o.name for o in state.store.registry.list(state.store.project, kind)]
        raise NotFoundError(label, name, known, hint="run `featurestore apply` after defining it")
    return _json(obj)


# Plain ``def`` routes: registry reads are blocking SQLite calls, so FastAPI runs them in
# its thread pool, away from the online hot path.

@router.get("/entities")
def list_entities(state: ServingState = Depends(get_state)) -> dict:
    return _list(state, "entities")


@router.get("/entities/{name}", response_model=RegistryObject)
def get_entity(name: str, state: ServingState = Depends(get_state)) -> dict:
    return _one(state, "entities", name)


@router.get("/data-sources")
def list_data_sources(state: ServingState = Depends(get_state)) -> dict:
    return _list(state, "data-sources")


@router.get("/feature-views")
def list_feature_views(state: ServingState = Depends(get_state)) -> dict:
    return _list(state, "feature-views")


@router.get("/feature-views/{name}", response_model=RegistryObject)
def get_feature_view(name: str, state: ServingState = Depends(get_state)) -> dict:
    return _one(state, "feature-views", name)


@router.get("/feature-services")
def list_feature_services(state: ServingState = Depends(get_state)) -> dict:
    return _list(state, "feature-services")


@router.get("/feature-services/{name}", response_model=RegistryObject)
def get_feature_service(name: str, state: ServingState = Depends(get_state)) -> dict:
    return _one(state, "feature-services", name)
