"""``POST /predict/{model}``: from entity keys to the model's answer in one round trip.

``{model}`` is ``name`` (its ``serving.default_alias``, ``champion`` by default),
``name@alias`` or ``name/3``. A request costs, after the JSON body: a dictionary lookup
for the served version (``serving.model_cache``: aliases are resolved from a map the
registry watch keeps fresh, loaded versions are kept per worker), one online read of the
version's own features through the serving state (the breaker and the read deadline of
``/get-online-features``; on-demand transforms run inside it), building the model's
input table (``featurestore.models.inputs.model_inputs``: signature order and types,
the version's ``on_missing`` policy), one model call in a runner thread within the
model's timeout (``serving.model_call``), and the answer, encoded with the C JSON
encoder. Then ``serving.finished.prediction_finished`` hands the prediction on (the
serving log hooks there). Stage times and outcomes are metrics (docs/metrics.md).
"""

from __future__ import annotations

import re
import time

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from featurestore.errors import FeatureStoreError, InputError, StoreUnavailableError
from featurestore.models.inputs import input_spec, model_inputs
from featurestore.online.read import FieldStatus, OnlineResponse
from serving.auth import require_reader
from serving.body import parse_entities, read_json
from serving.finished import FinishedPrediction, prediction_finished
from serving.instrumentation import observe_online
from serving.model_cache import VARIANT
from serving.model_call import call_model
from serving.online_json import json_bytes, online_body
from serving.request_ids import new_request_id
from serving.routes import ERROR_RESPONSES
from serving.schemas import PredictRequest, PredictResponse, request_body
from serving.state import ServingState

__all__ = ["router"]

router = APIRouter(tags=["predictions"])

# What an incoming X-Request-ID may hold: it is echoed in a header and written to logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_PRESENT, _NULL = FieldStatus.PRESENT, FieldStatus.NULL_VALUE


@router.post(
    "/predict/{model:path}",
    dependencies=[Depends(require_reader)],
    openapi_extra=request_body(PredictRequest),
    responses={200: {"model": PredictResponse}, **ERROR_RESPONSES,
               500: {"description": "The model raised (PredictionError)"},
               504: {"description": "The model did not answer within its timeout (ModelTimeout)"}},
    response_class=Response,
)
async def predict(request: Request, model: str) -> Response:
    """The model's predictions for the entity rows, from their features read online."""
    state: ServingState = request.app.state.serving
    request_id = _request_id(request)
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    entities = parse_entities(body, state.max_entities)
    include = body.get("include_features", False)
    if type(include) is not bool:
        raise InputError("'include_features' must be true or false")
    served = await state.models.get(model)
    version = served.version
    observe = served.observe

    began = time.perf_counter()
    try:
        spec = input_spec(version)
        plan, response = await state.read(spec.features, entities, spec.full_feature_names)
        read = time.perf_counter()
        observe["features"](read - began)
        inputs = model_inputs(spec, response, entities, join_keys=plan.join_keys)
        observe["transform"](time.perf_counter() - read)
    except StoreUnavailableError:
        served.count("unavailable")
        raise
    except FeatureStoreError:
        served.count("invalid_input")
        raise
    now = state.store.clock()
    observe_online(plan, response, now)
    predictions = await call_model(state.runner, served, inputs, conformed=True)
    served.count("ok")

    answer = {"model": version.name, "version": version.version, "variant": VARIANT, "predictions": predictions,
              "request_id": request_id}
    if include:
        answer["features"] = online_body(_input_columns(spec, response, inputs))
    prediction_finished(state.prediction_sinks, FinishedPrediction(
        request_id=request_id, model=version.name, version=version.version, variant=VARIANT, served_at=now,
        entities=entities, request=body.get("request"), features=response, plan=plan, inputs=inputs,
        predictions=predictions,
    ))
    return Response(json_bytes(answer), media_type="application/json", headers={"X-Request-ID": request_id})


def _request_id(request: Request) -> str:
    """The caller's X-Request-ID, else a new one; kept where error answers find it."""
    given = request.headers.get("x-request-id")
    if given is not None and not _REQUEST_ID.fullmatch(given):
        raise InputError("the X-Request-ID header must be 1 to 128 letters, digits, '.', '_', ':' or '-'")
    request_id = given or new_request_id()
    request.state.request_id = request_id
    return request_id


def _input_columns(spec, response: OnlineResponse, inputs) -> OnlineResponse:
    """The model's input columns for ``include_features``: the values it received, with the
    status and event time each feature was read with (a request field: PRESENT, or
    NULL_VALUE when sent as null, and no event time), as ``store.predict_online`` has them."""
    names = response.feature_names
    n = inputs.num_rows
    statuses, stamps = [], []
    for column in spec.columns:
        if column in names:
            at = names.index(column)
            statuses.append(response.statuses[at])
            stamps.append(response.event_timestamps[at])
        else:
            statuses.append([])
            stamps.append([None] * n)
    values = [inputs.column(i).to_pylist() for i in range(inputs.num_columns)]
    for i in range(len(spec.features), len(spec.columns)):
        statuses[i] = [_PRESENT if v is not None else _NULL for v in values[i]]
    return OnlineResponse(list(spec.columns), values, statuses, stamps, [None] * len(values))
