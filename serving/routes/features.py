"""``POST /get-online-features``: the hot path.

One request costs: reading and parsing the JSON body, a dictionary lookup for the cached
read plan of its feature list, one online store round trip (awaited on the event loop
within ``online_store.read_timeout``, or inline for SQLite: see ``serving.state``), and encoding the column-major answer with the C JSON encoder.
The read is the store's own (``FeatureStore.online_reader``), through the timed store.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from featurestore.errors import InputError
from serving.auth import require_reader
from serving.body import parse_entities, read_json
from serving.instrumentation import observe_online
from serving.online_json import online_response_json
from serving.schemas import GetOnlineFeaturesRequest, GetOnlineFeaturesResponse, request_body
from serving.state import ServingState
from serving.routes import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(tags=["online features"])


@router.post(
    "/get-online-features",
    dependencies=[Depends(require_reader)],
    openapi_extra=request_body(GetOnlineFeaturesRequest),
    responses={200: {"model": GetOnlineFeaturesResponse}, **ERROR_RESPONSES},
    response_class=Response,
)
async def get_online_features(request: Request) -> Response:
    """The newest values of the features for each entity row, column-major as Feast answers."""
    state: ServingState = request.app.state.serving
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    features, full_feature_names, entities = _parse(body, state.max_entities, state.max_features)
    plan, response = await state.read(features, entities, full_feature_names)
    observe_online(plan, response, state.store.clock())
    if type(features) is str:  # a feature service: logged when its logging_config says so
        state.serving_log.log_features(features, plan, response, entities, request)
    return Response(online_response_json(response), media_type="application/json")


def _parse(body: dict[str, Any], max_entities: int, max_features: int) -> tuple[Any, bool, Any]:
    features = body.get("features")
    service = body.get("feature_service")
    if (features is None) == (service is None):
        raise InputError("give either 'features' (a list of 'view:feature' references) or 'feature_service' "
                         "(a feature service's name), not both and not neither")
    if features is not None:
        if type(features) is not list or not all(type(f) is str for f in features):
            raise InputError("'features' must be a list of 'view:feature' strings")
        # Checked first: a feature list is a cache key (see featurestore/bounded.py).
        if len(features) > max_features:
            raise InputError(f"{len(features):,} features is more than this server's limit of {max_features:,} "
                             "per request (serving.max_features); ask for fewer, or raise the limit")
        for ref in features:
            if ":" not in ref:
                raise InputError(f"feature reference {ref!r} must look like 'view_name:feature_name'")
    elif type(service) is not str:
        raise InputError("'feature_service' must be a feature service's name (a string)")

    full = body.get("full_feature_names", False)
    if type(full) is not bool:
        raise InputError("'full_feature_names' must be true or false")

    entities = parse_entities(body, max_entities)
    return features if features is not None else service, full, entities
