"""The one place that turns errors into HTTP answers.

Every error answer has the body of DESIGN.md, ``{"error": {"type": ..., "message": ...}}``,
where ``type`` is the error class (``NotFoundError``, ``InputError``, ...) and ``message``
names what is wrong and what to do. Status codes:

====================================  ======  ==============================================
error                                 status  when
====================================  ======  ==============================================
``HTTPError`` (raised by serving)     its own 400 malformed JSON, 401 no API key, 403 wrong
                                              key, 408 body too slow, 413 body too large,
                                              503 not ready; /predict and /v2: 503
                                              ``ModelUnavailable`` (a version that does not
                                              load), 500 ``PredictionError`` (the model
                                              raised), 504 ``ModelTimeout``
``NotFoundError``                     404     unknown feature view, feature, feature service,
                                              entity or push source (Feast answers 404 too)
``InputError``, ``SchemaError``,      422     valid JSON whose content is wrong: missing join
``DefinitionError``                           key, wrong value type, too many entities, ...
``ConflictError``                     409     another writer changed the registry; retry
``InUseError``                        409     the object is in use (an alias on a version
                                              to archive, a model on its training set)
``ArtifactError``                     500     a model's stored files changed or are missing
``ModelError``                        422     a model cannot be saved or loaded as asked
                                              (wrong flavor, untrusted pickle)
``RegistryError``                     503     the registry cannot be read
``StoreUnavailableError``             503     the online or offline store is unreachable
``ConfigError``, ``JobError``,        500     the server's setup or a job failed, or a stored
``IntegrityError``                            file changed (not the request's fault)
starlette's ``ClientDisconnect``       499     the client left before sending its whole body:
                                              nothing is sent (nobody listens), one log line,
                                              counted apart from errors in the metrics
request validation (path, query)      422
unknown route / method                404 / 405
anything else                         500     type ``InternalError``; logged with its traceback
====================================  ======  ==============================================

A user error is never answered with 500, and never logged with a traceback. A 5xx
message names no file path, host or pid unless the caller sent a valid API key (see
``serving.disclosure``); the server log always has the whole message.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from featurestore.errors import (
    ArtifactError,
    ConfigError,
    ConflictError,
    DefinitionError,
    FeatureStoreError,
    InUseError,
    InputError,
    IntegrityError,
    JobError,
    ModelError,
    NotFoundError,
    RegistryError,
    SchemaError,
    StoreUnavailableError,
)
from serving.disclosure import public_message, trusted

__all__ = ["CLIENT_CLOSED", "HTTPError", "describe", "error_response", "install_error_handlers", "status_for"]

log = logging.getLogger("featurestore.serving")

# Most specific first: ConflictError is a RegistryError.
_STATUS: tuple[tuple[type[FeatureStoreError], int], ...] = (
    (NotFoundError, 404),
    (InputError, 422),
    (SchemaError, 422),
    (DefinitionError, 422),
    (ConflictError, 409),
    (InUseError, 409),
    (ArtifactError, 500),
    (ModelError, 422),
    (RegistryError, 503),
    (StoreUnavailableError, 503),
    (ConfigError, 500),
    (JobError, 500),
    (IntegrityError, 500),
)

_HTTP_TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
               405: "MethodNotAllowed", 408: "RequestTimeout", 413: "PayloadTooLarge", 415: "UnsupportedMediaType"}

#: nginx's status for "client closed request": what the metrics count a client that left as.
CLIENT_CLOSED = 499


class HTTPError(Exception):
    """An error the serving layer itself raises (auth, limits, malformed JSON, not ready)."""

    def __init__(self, status: int, type: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.type, self.message, self.headers = status, type, message, headers


def status_for(exc: FeatureStoreError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 400  # a FeatureStoreError subclass added later: still the user's error


def error_response(status: int, type: str, message: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"error": {"type": type, "message": message}}).encode()
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def describe(request: Request, exc: FeatureStoreError | HTTPError) -> tuple[int, str, str]:
    """(status, type, message) of the answer to ``exc``; a 5xx is logged here."""
    if isinstance(exc, HTTPError):
        return exc.status, exc.type, exc.message
    status = status_for(exc)
    message = str(exc)
    if status >= 500:
        # The log has it all; the answer names no path, host or pid unless the caller has a key.
        log.warning("%s %s: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        if not trusted(request):
            message = public_message(exc)
    return status, type(exc).__name__, message


async def _feature_store_error(request: Request, exc: FeatureStoreError) -> Response:
    return error_response(*describe(request, exc), _request_id(request))


async def _http_error(request: Request, exc: HTTPError) -> Response:
    return error_response(exc.status, exc.type, exc.message, _request_id(request, exc.headers))


def _request_id(request: Request, headers: dict[str, str] | None = None) -> dict[str, str] | None:
    """``headers`` plus the request's X-Request-ID when the route gave it one (/predict)."""
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id is None:
        return headers
    return {**(headers or {}), "X-Request-ID": request_id}


async def _starlette_http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 404 and exc.detail == "Not Found":
        message = f"no endpoint {request.method} {request.url.path}; see /docs for the API"
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, _HTTP_TYPES.get(exc.status_code, "HTTPError"), message,
                          getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
    return error_response(422, "InputError", "; ".join(parts) or "invalid request", _request_id(request))


async def _client_gone(request: Request, exc: ClientDisconnect) -> Response:
    # Not the server's fault and nobody to answer: one line, no traceback, and a status of
    # its own so that featurestore_http_requests_total does not count it as an error.
    log.info("%s %s: the client disconnected before sending its whole body", request.method, request.url.path)
    return Response(status_code=CLIENT_CLOSED)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "InternalError", "internal error; the server log has the details",
                          _request_id(request))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FeatureStoreError, _feature_store_error)
    app.add_exception_handler(HTTPError, _http_error)
    app.add_exception_handler(StarletteHTTPException, _starlette_http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
