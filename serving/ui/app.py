"""The UI as a small app of its own, mounted at ``/ui`` by ``serving.app.create_app``.

Its own app so that it answers errors as HTML pages rather than the API's JSON, keeps its
pages out of the OpenAPI document, and has its own gate (``serving.ui.session``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from featurestore.errors import FeatureStoreError
from serving.disclosure import public_message
from serving.errors import HTTPError, status_for
from serving.state import ServingState
from serving.ui.monitoring_pages import ReportCache
from serving.ui.render import render
from serving.ui.routes import router
from serving.ui.session import guard

__all__ = ["UISettings", "create_ui"]


@dataclass
class UISettings:
    project: str
    grafana_url: str | None = None
    reports: ReportCache = field(default_factory=ReportCache)


def create_ui(state: ServingState, grafana_url: str | None = None) -> FastAPI:
    """The UI app over the server's state (same store, same keys)."""
    ui = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    ui.state.serving = state
    ui.state.ui = UISettings(state.store.project, grafana_url)
    ui.middleware("http")(guard)
    ui.include_router(router)
    ui.add_exception_handler(FeatureStoreError, _store_error)
    ui.add_exception_handler(HTTPError, _http_error)
    ui.add_exception_handler(StarletteHTTPException, _starlette_error)
    ui.add_exception_handler(RequestValidationError, _bad_request)
    return ui


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)


async def _store_error(request: Request, exc: FeatureStoreError) -> Response:
    status = status_for(exc)
    trusted = getattr(request.state, "trusted", False)
    message = str(exc) if status < 500 or trusted else public_message(exc)
    return _error_page(request, status, type(exc).__name__, message)


async def _http_error(request: Request, exc: HTTPError) -> Response:
    return _error_page(request, exc.status, exc.type, exc.message)


async def _starlette_error(request: Request, exc: StarletteHTTPException) -> Response:
    message = "no such page in the UI" if exc.status_code == 404 else str(exc.detail)
    return _error_page(request, exc.status_code, "Not found" if exc.status_code == 404 else "Error", message)


async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
    problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in exc.errors())
    return _error_page(request, 400, "Bad request", problems)
