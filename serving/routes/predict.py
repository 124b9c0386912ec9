"""``POST /predict/{model}``: from entity keys to the model's answer in one round trip.

``{model}`` is ``name`` (its ``serving.default_alias``, ``champion`` by default),
``name@alias`` or ``name/3``. A request costs, after the JSON body: a dictionary lookup
for the served version (``serving.model_cache``: aliases are resolved from a map the
registry watch keeps fresh, loaded versions are kept per worker), one online read of the
version's own features through the serving state (the breaker and the read deadline of
``/get-online-features``; on-demand transforms run inside it), building the model's
inputs (``featurestore.models.inputs.read_inputs``: signature order and types, the
version's ``on_missing`` policy; a numpy matrix straight from the values when they are all
numbers and the flavor takes one, the Arrow table only when something asks for it), one
model call in a runner thread within the model's timeout (``serving.model_call``), and
the answer, encoded with the C JSON
encoder. ``serving.finished.prediction_finished`` hands the prediction on (the
serving log hooks there), with its status and latency; a model that raised or timed out
is handed on too, with null predictions. Stage times and outcomes are metrics
(docs/metrics.md).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response

from featurestore.errors import FeatureStoreError, InputError, StoreUnavailableError
from featurestore.models.inputs import read_inputs, same_inputs
from featurestore.models.routing import to_candidate
from featurestore.models.uri import ModelURI
from featurestore.online.read import FieldStatus, OnlineResponse
from featurestore.serving_log.shadow import SHADOW
from serving.body import parse_entities, read_json
from serving.errors import HTTPError
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


class _DirectRoute(APIRoute):
    """``/predict``'s route: the endpoint is called with the request and the ``model`` path
    parameter, without FastAPI's per-request dependency solving (the pydantic check of a
    parameter the ``path`` convertor gives as a str already, the telemetry and context around
    it) nor the two exit stacks of dependencies with ``yield``: ~210k instructions a request
    (bench/predict_callgrind.py), a fifth of a 1-entity request to a 100-tree model. The
    route has no dependencies and no body field; its OpenAPI schema is built from the
    signature as before, and what the endpoint raises
    goes to the app's error handlers (``ExceptionMiddleware``, ``ServerErrorMiddleware``),
    which are the ones FastAPI's route wrapper would have looked up."""

    def __init__(self, path: str, endpoint, **kwargs):
        super().__init__(path, endpoint, **kwargs)
        if self.max_body_size is None:  # else FastAPI's app, which enforces the limit
            handler = self.get_route_handler()

            async def app(scope, receive, send) -> None:
                response = await handler(Request(scope, receive, send))
                await response(scope, receive, send)

            self.app = app

    def get_route_handler(self):
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            return await endpoint(request, request.path_params["model"])

        return handler


router = APIRouter(tags=["predictions"], route_class=_DirectRoute)
log = logging.getLogger("featurestore.serving")
_SHADOWS: set[asyncio.Task] = set()  # shadow reads in flight (a reference keeps each alive)

# What an incoming X-Request-ID may hold: it is echoed in a header and written to logs.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
_PRESENT, _NULL = FieldStatus.PRESENT, FieldStatus.NULL_VALUE
# call_model's errors that are the model's failure (after its version was chosen): the
# status they are handed on (and logged) with, as featurestore_predictions_total spells it.
_FAILED = {"PredictionError": "model_error", "ModelTimeout": "timeout"}


@router.post(
    "/predict/{model:path}",
    openapi_extra=request_body(PredictRequest),
    responses={200: {"model": PredictResponse}, **ERROR_RESPONSES,
               500: {"description": "The model raised (PredictionError)"},
               504: {"description": "The model did not answer within its timeout (ModelTimeout)"}},
    response_class=Response,
)
async def predict(request: Request, model: str) -> Response:
    """The model's predictions for the entity rows, from their features read online."""
    began = time.perf_counter()
    state: ServingState = request.app.state.serving
    if state.auth.reads:  # as ``Depends(require_reader)``, without a sub-dependency's cost per request
        state.auth.check(request)
    request_id = _request_id(request)
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    entities = parse_entities(body, state.max_entities)
    include = body.get("include_features", False)
    if type(include) is not bool:
        raise InputError("'include_features' must be true or false")
    uri = state.models.parse(model)
    served = await state.models.get(uri)
    variant, shadow, sampled, scored = VARIANT, None, None, None
    route = state.models.route(uri)
    if route is not None and (route.weight >= 100  # every request: no entity key to work out
                              or to_candidate(_entity_key(entities, served.version), route.weight)):
        candidate = await state.models.get(ModelURI(uri.name, version=route.candidate))
        if route.mode == "canary":
            served, variant = candidate, "canary"
        else:
            # Scored on the logged rows by the serving log's process (featurestore/serving_log/shadow.py):
            # a request the log keeps (its sample rate), stable's inputs being the candidate's.
            sampled = state.serving_log.sampled()
            if sampled and state.serving_log.scores_shadows:
                shadow = candidate
                if same_inputs(served.spec, candidate.spec):
                    scored = candidate.shadow
            elif state.serving_log.writer is None:
                state.serving_log.shadow_unscored(uri.name)  # warns once: the log is off
    spec, plan, response, inputs, predictions, now, model_began = await _score(
        state, served, entities, body, request_id, variant, began, sampled, scored)
    version = served.version
    if include:
        answer = json_bytes({"model": version.name, "version": version.version, "variant": variant,
                             "predictions": predictions, "request_id": request_id,
                             "features": online_body(_input_columns(spec, response, inputs))})
    else:  # the same bytes, the fixed head encoded once per version and variant
        answer = b"%b%b,\"request_id\":\"%b\"}" % (_answer_head(version.name, version.version, variant),
                                                      json_bytes(predictions), request_id.encode())
    if shadow is not None and scored is None:  # a candidate of other inputs: its own read, never awaited
        task = asyncio.get_running_loop().create_task(_shadow(state, shadow, entities, request_id, now))
        _SHADOWS.add(task)
        task.add_done_callback(_SHADOWS.discard)
    return Response(answer, media_type="application/json", headers={"X-Request-ID": request_id})


@functools.lru_cache(maxsize=256)
def _answer_head(name: str, version: int, variant: str) -> bytes:
    """An answer's JSON up to its predictions: ``{"model":...,"version":...,"variant":...,"predictions":``.
    (A request id needs no escaping: ``_REQUEST_ID`` or hex.)"""
    return json_bytes({"model": name, "version": version, "variant": variant})[:-1] + b',"predictions":'


async def _score(state: ServingState, served, entities, body: dict, request_id: str, variant: str, began: float,
                 sampled: bool | None = None, shadow: tuple[str, float] | None = None):
    """One online read of the version's features, its inputs and the model call, with the
    stage times and outcomes counted; the prediction is handed on (``prediction_finished``;
    ``sampled``, ``shadow``: for the serving log), a failed model call too (null
    predictions, its status) before its error is raised."""
    version, observe = served.version, served.observe
    reading = time.perf_counter()  # ``began``: the request's arrival, for its latency
    try:
        spec = served.spec
        plan, response = await state.read(spec.features, entities, spec.full_feature_names)
        read = time.perf_counter()
        observe["features"](read - reading)
        inputs = read_inputs(spec, response, entities, join_keys=plan.join_keys)
        inputs.validate(matrix=served.takes_matrix)
        observe["transform"](time.perf_counter() - read)
    except StoreUnavailableError:
        served.count("unavailable", variant)
        raise
    except FeatureStoreError:
        served.count("invalid_input", variant)
        raise
    now = state.store.clock()
    observe_online(plan, response, now)

    def finished(predictions: list, status: str) -> None:
        prediction_finished(state.prediction_sinks, FinishedPrediction(
            request_id=request_id, model=version.name, version=version.version, variant=variant, served_at=now,
            entities=entities, request=body.get("request"), features=response, plan=plan, inputs=inputs,
            predictions=predictions, status=status, latency_ms=(time.perf_counter() - began) * 1000.0,
            sampled=sampled, shadow=shadow, before_model_ms=(model_began - began) * 1000.0,
        ))

    model_began = time.perf_counter()
    try:
        predictions = await call_model(state.runner, served, inputs, variant=variant)
    except HTTPError as exc:
        if exc.type in _FAILED:
            finished([None] * inputs.num_rows, _FAILED[exc.type])
        raise
    served.count("ok", variant)
    finished(predictions, "ok")
    return spec, plan, response, inputs, predictions, now, model_began


async def _shadow(state: ServingState, served, entities, request_id: str, now: float) -> None:
    """A shadow candidate that reads other features than stable: its read and inputs, then
    its rows to the serving log's process, which scores them (``variant`` ``shadow``); a
    failed read is counted, never seen by the caller."""
    began = time.perf_counter()
    try:
        spec = served.spec
        plan, response = await state.read(spec.features, entities, spec.full_feature_names)
        inputs = read_inputs(spec, response, entities, join_keys=plan.join_keys)
        inputs.validate(matrix=False)  # the model process is sent the table
    except Exception as exc:  # the caller has its answer already
        served.count("unavailable" if isinstance(exc, StoreUnavailableError) else "invalid_input", SHADOW)
        log.info("shadow %s could not read its features: %s", served.version.uri, exc)
        return
    version = served.version
    state.serving_log.log_prediction(version.name, version.version, plan.join_keys, response, entities,
                                     [None] * inputs.num_rows, request_id, variant=SHADOW, served_at=now,
                                     sampled=True, shadow=served.shadow,
                                     before_model_ms=(time.perf_counter() - began) * 1000.0)


def _entity_key(entities, version) -> list:
    """The first entity row's key (its columns that are not request fields, by name): what
    decides which variant serves the request."""
    if isinstance(entities, list):
        row = entities[0] if entities else {}
    else:
        row = {k: (v[0] if v else None) if type(v) is list else v for k, v in entities.items()}
    return [row[k] for k in sorted(row) if k not in version.request_fields]


def _request_id(request: Request) -> str:
    """The caller's X-Request-ID, else a new one; kept where error answers find it."""
    scope = request.scope
    given = None
    for name, value in scope["headers"]:  # as ``request.headers.get``, without a KeyError when absent
        if name == b"x-request-id":  # ASGI header names are lowercase
            given = value.decode("latin-1")
            break
    if given is not None and not _REQUEST_ID.fullmatch(given):
        raise InputError("the X-Request-ID header must be 1 to 128 letters, digits, '.', '_', ':' or '-'")
    request_id = given or new_request_id()
    scope.setdefault("state", {})["request_id"] = request_id  # ``request.state``'s dict
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
    table = inputs.table  # the values as the model's types hold them
    values = [table.column(i).to_pylist() for i in range(table.num_columns)]
    for i in range(len(spec.features), len(spec.columns)):
        statuses[i] = [_PRESENT if v is not None else _NULL for v in values[i]]
    return OnlineResponse(list(spec.columns), values, statuses, stamps, [None] * len(values))
