"""The Open Inference Protocol (KServe v2, REST): callers send a model's inputs themselves.

    GET  /v2                                     server metadata
    GET  /v2/health/live, /v2/health/ready       liveness, readiness (registry loaded)
    GET  /v2/models/{name}[/versions/{v}]        model metadata from its signature
    GET  /v2/models/{name}[/versions/{v}]/ready  200 once the version is loaded (loads it)
    POST /v2/models/{name}[/versions/{v}]/infer  tensors in, tensors out

``{name}`` is a model name (its default alias), or ``name@alias``; ``/versions/{v}`` pins
a version. No features are read: the request's tensors are the model's inputs, matched by
name to its signature (extra tensors are ignored), conformed and passed to the model as
``/predict`` does. Errors have the protocol's shape, ``{"error": "message"}``, with this
server's status codes (404 unknown model, 422 wrong inputs, 503, 504, 500). JSON tensors
only: the binary tensor extension is answered 415.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from featurestore.errors import FeatureStoreError, InputError
from featurestore.models.records import READY, ModelVersion
from featurestore.models.uri import ModelURI
from featurestore.types import FeatureType
from serving.auth import require_reader
from serving.body import read_json
from serving.errors import HTTPError, describe
from serving.model_call import call_model
from serving.online_json import json_bytes
from serving.state import ServingState

__all__ = ["router"]

_DATATYPES = {"Bool": "BOOL", "Int32": "INT32", "Int64": "INT64", "Float32": "FP32", "Float64": "FP64",
              "String": "BYTES", "Bytes": "BYTES", "UnixTimestamp": "INT64"}


class _ProtocolRoute(APIRoute):
    """Answers errors in the protocol's shape, ``{"error": "..."}``."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except (FeatureStoreError, HTTPError) as exc:
                status, _, message = describe(request, exc)
                headers = exc.headers if isinstance(exc, HTTPError) else None
            except RequestValidationError as exc:
                status, headers = 422, None
                message = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors())
            return Response(json_bytes({"error": message}), status, headers, media_type="application/json")

        return answer


router = APIRouter(prefix="/v2", tags=["open inference protocol"], route_class=_ProtocolRoute)


@router.get("")
async def server_metadata(request: Request) -> dict:
    return {"name": "featurestore", "version": request.app.version, "extensions": []}


@router.get("/health/live")
async def live() -> dict:
    return {"live": True}


@router.get("/health/ready")
async def ready(request: Request) -> dict:
    state: ServingState = request.app.state.serving
    if state.registry_error is not None:
        raise HTTPError(503, "NotReady", "the registry is not loaded yet")
    return {"ready": True}


def _uri(state: ServingState, name: str, version: int | None) -> ModelURI:
    uri = state.models.parse(name)
    return ModelURI(uri.name, version=version) if version is not None else uri


async def _metadata(request: Request, name: str, version: int | None) -> dict:
    state: ServingState = request.app.state.serving
    model, number = state.models.resolve(_uri(state, name, version))
    record = await run_in_threadpool(state.store.models.get, f"{model}/{number}")
    versions = await run_in_threadpool(state.store.models.versions, model)
    signature = record.signature
    return {
        "name": model,
        "versions": [str(v.version) for v in versions if v.status == READY],
        "platform": record.flavor,
        "inputs": [_tensor_spec(c.name, c.dtype) for c in signature.inputs] if signature else [],
        "outputs": [_tensor_spec(c.name, c.dtype) for c in signature.outputs] if signature and signature.outputs
        else [{"name": "prediction", "datatype": "FP64", "shape": [-1]}],
    }


async def _ready(request: Request, name: str, version: int | None) -> dict:
    state: ServingState = request.app.state.serving
    served = await state.models.get(_uri(state, name, version))
    return {"name": served.version.name, "version": str(served.version.version), "ready": True}


async def _infer(request: Request, name: str, version: int | None) -> Response:
    state: ServingState = request.app.state.serving
    if "inference-header-content-length" in request.headers:
        raise HTTPError(415, "UnsupportedMediaType", "the binary tensor extension is not supported; send the "
                        "tensors as JSON (tritonclient: binary_data=False on inputs and outputs)")
    body = await read_json(request, state.max_body_bytes, state.body_timeout)
    served = await state.models.get(_uri(state, name, version))
    try:
        table = _input_table(served.version, body, state.max_entities)
        wanted = _wanted_outputs(body)
    except FeatureStoreError:
        served.count("invalid_input")
        raise
    predictions = await call_model(state.runner, served, table)
    outputs = _outputs(served.version, predictions)
    if wanted is not None:
        unknown = wanted - {o["name"] for o in outputs}
        if unknown:
            served.count("invalid_input")
            raise InputError(f"unknown output(s) {', '.join(sorted(unknown))}; this model answers "
                             f"{', '.join(o['name'] for o in outputs)}")
        outputs = [o for o in outputs if o["name"] in wanted]
    served.count("ok")
    answer = {"model_name": served.version.name, "model_version": str(served.version.version), "outputs": outputs}
    if isinstance(body.get("id"), str):
        answer["id"] = body["id"]
    return Response(json_bytes(answer), media_type="application/json")


def _forms(endpoint):
    """The unversioned and the version-pinned form of a model endpoint."""

    async def unversioned(request: Request, name: str):
        return await endpoint(request, name, None)

    async def versioned(request: Request, name: str, version: int):
        return await endpoint(request, name, version)

    return unversioned, versioned


for suffix, endpoint, method in (("", _metadata, "GET"), ("/ready", _ready, "GET"), ("/infer", _infer, "POST")):
    for path, function in zip((f"/models/{{name}}{suffix}", f"/models/{{name}}/versions/{{version}}{suffix}"),
                              _forms(endpoint)):
        router.add_api_route(path, function, methods=[method], dependencies=[Depends(require_reader)],
                             name=f"v2 {method} {path}")


# -- tensors -------------------------------------------------------------------------


def _tensor_spec(name: str, dtype: FeatureType) -> dict:
    scalar = dtype.item or dtype
    return {"name": name, "datatype": _DATATYPES.get(scalar.name, "BYTES"), "shape": [-1, -1] if dtype.item else [-1]}


def _input_table(version: ModelVersion, body: dict, max_rows: int) -> pa.Table:
    tensors = body.get("inputs")
    if type(tensors) is not list or not all(type(t) is dict for t in tensors):
        raise InputError('"inputs" must be a list of tensors: {"name", "shape", "datatype", "data"}')
    by_name = {t.get("name"): t for t in tensors}
    signature = version.signature
    if signature is None:  # no declared inputs: the tensors as sent, in order
        return pa.table({name: _column(t, None, max_rows) for name, t in by_name.items()})
    columns = {}
    for spec in signature.inputs:
        tensor = by_name.get(spec.name)
        if tensor is None:
            raise InputError(f"model {version.uri} needs input tensor {spec.name!r}; its inputs: "
                             f"{', '.join(signature.input_names)}")
        columns[spec.name] = _column(tensor, spec.dtype, max_rows)
    return pa.table(columns)


def _column(tensor: dict, dtype: FeatureType | None, max_rows: int) -> pa.Array:
    name, shape, data = tensor.get("name"), tensor.get("shape"), tensor.get("data")
    if type(shape) is not list or not shape or not all(type(d) is int and d >= 0 for d in shape):
        raise InputError(f"input tensor {name!r}: 'shape' must be a list of sizes, e.g. [2] or [2, 1]")
    if type(data) is not list:
        raise InputError(f"input tensor {name!r}: 'data' must be a list (row-major, flat or nested)")
    rows, width = shape[0], math.prod(shape[1:])
    if rows > max_rows:
        raise InputError(f"input tensor {name!r} has {rows:,} rows, more than this server's limit of "
                         f"{max_rows:,} (serving.max_entities); split the request")
    flat = _flatten(data)
    if len(flat) != rows * width:
        raise InputError(f"input tensor {name!r}: shape {shape} holds {rows * width} values, 'data' has {len(flat)}")
    listed = dtype is not None and dtype.item is not None
    if listed or (dtype is None and width != 1):
        values = [flat[i * width:(i + 1) * width] for i in range(rows)]
    elif width == 1:
        values = flat
    else:
        raise InputError(f"input tensor {name!r}: shape {shape} has {width} values per row, the model's input "
                         f"{name!r} takes one ({dtype}); send shape [{rows}] or [{rows}, 1]")
    try:
        return pa.array(values, type=dtype.to_arrow() if dtype is not None else None)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"input tensor {name!r}: its data are not {dtype} values ({exc})") from None


def _flatten(data: list) -> list:
    if not any(type(v) is list for v in data):
        return data
    flat: list = []
    for v in data:
        flat.extend(_flatten(v) if type(v) is list else (v,))
    return flat


def _wanted_outputs(body: dict) -> set[str] | None:
    outputs = body.get("outputs")
    if outputs is None:
        return None
    if type(outputs) is not list or not all(type(o) is dict and type(o.get("name")) is str for o in outputs):
        raise InputError('"outputs" must be a list of {"name": ...} objects')
    if any((o.get("parameters") or {}).get("binary_data") for o in outputs):
        raise InputError("binary output tensors are not supported; ask for JSON (binary_data=False)")
    return {o["name"] for o in outputs}


def _outputs(version: ModelVersion, predictions: list) -> list[dict]:
    """One tensor per declared output when the model answers one value per output per row,
    else one tensor of the predictions (named as the single output, or ``prediction``)."""
    declared = version.signature.outputs if version.signature else ()
    n = len(predictions)
    if len(declared) > 1 and all(type(p) is list and len(p) == len(declared) for p in predictions):
        return [_output(spec.name, [p[i] for p in predictions], n) for i, spec in enumerate(declared)]
    return [_output(declared[0].name if len(declared) == 1 else "prediction", predictions, n)]


def _output(name: str, values: list, n: int) -> dict:
    width = len(values[0]) if n and type(values[0]) is list else None
    flat = _flatten(values) if width is not None else values
    return {"name": name, "datatype": _datatype(flat), "shape": [n, width] if width is not None else [n],
            "data": flat}


def _datatype(values: list[Any]) -> str:
    sample = next((v for v in values if v is not None), 0.0)
    if isinstance(sample, bool):
        return "BOOL"
    if isinstance(sample, int):
        return "INT64"
    if isinstance(sample, float):
        return "FP64"
    return "BYTES"
