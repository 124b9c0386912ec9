"""The UI's pages: each gathers its data with a page-data builder over the store, then
renders a template. Plain ``def`` routes: the registry reads block, so they run in the
thread pool, away from the online hot path."""

from __future__ import annotations

from datetime import datetime, timezone
from importlib import resources

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from featurestore.errors import NotFoundError
from serving.ui.definitions import definition_page, features_page, search
from serving.ui.jobs_page import jobs_page
from serving.ui.lineage_graph import lineage_page
from serving.ui.models_pages import model_page, models_page, rollout_page
from serving.ui.monitoring_pages import model_monitoring_page, monitoring_page
from serving.ui.overview import overview_page
from serving.ui.render import render
from serving.ui.session import log_in, log_out, login_form

__all__ = ["router"]

router = APIRouter()

# The UI's own stylesheet and scripts, shipped in the package; nothing else is served.
_STATIC = {path.name: path.read_bytes() for path in resources.files("serving.ui").joinpath("static").iterdir()
           if path.name.endswith((".css", ".js"))}
_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}


def _store(request: Request):
    return request.app.state.serving.store


@router.get("/", response_class=HTMLResponse)
def overview(request: Request) -> Response:
    store = _store(request)
    now = datetime.fromtimestamp(store.clock(), timezone.utc)
    return render(request, "overview.html", overview_page(store, now, request.state.trusted))


@router.get("/features", response_class=HTMLResponse)
def features(request: Request, q: str = "") -> Response:
    store = _store(request)
    return render(request, "features.html", {**features_page(store), **search(store, q)})


@router.get("/features/{kind}/{name:path}", response_class=HTMLResponse)
def definition(request: Request, kind: str, name: str) -> Response:
    return render(request, "definition.html", definition_page(_store(request), kind, name))


@router.get("/lineage", response_class=HTMLResponse)
def lineage(request: Request, kind: str | None = None, name: str | None = None) -> Response:
    return render(request, "lineage.html", lineage_page(_store(request), kind, name))


@router.get("/models", response_class=HTMLResponse)
def models(request: Request) -> Response:
    return render(request, "models.html", models_page(_store(request)))


@router.get("/models/{name}", response_class=HTMLResponse)
def model(request: Request, name: str) -> Response:
    return render(request, "model.html", model_page(_store(request), name))


@router.get("/models/{name}/rollout", response_class=HTMLResponse)
def rollout(request: Request, name: str) -> Response:
    return render(request, "rollout.html", rollout_page(_store(request), name))


@router.get("/monitoring", response_class=HTMLResponse)
def monitoring(request: Request) -> Response:
    return render(request, "monitoring.html", monitoring_page(_store(request)))


@router.get("/monitoring/{name}", response_class=HTMLResponse)
def model_monitoring(request: Request, name: str) -> Response:
    return render(request, "model_monitoring.html", model_monitoring_page(_store(request), name))


@router.get("/monitoring/{name}/runs/{run}/report", response_class=HTMLResponse)
def report(request: Request, name: str, run: int) -> Response:
    """The monitor report of one run (framed by the model's Monitoring page)."""
    page = request.app.state.ui.reports.report(_store(request), name, run)
    # Framed by the UI only; the page is self-contained (monitoring/report.py), so nothing else may load.
    return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                                  "img-src data:; frame-ancestors 'self'"})


@router.get("/jobs", response_class=HTMLResponse)
def jobs(request: Request, view: str | None = None, status: str | None = None,
         limit: int = Query(200, ge=1, le=1000)) -> Response:
    return render(request, "jobs.html", jobs_page(_store(request), view, status, request.state.trusted, limit))


@router.get("/static/{name}")
def static(name: str) -> Response:
    if name not in _STATIC:
        raise NotFoundError("UI file", name, list(_STATIC))
    return Response(_STATIC[name], media_type=_TYPES[name.rsplit(".", 1)[1]],
                    headers={"Cache-Control": "max-age=300"})


@router.get("/login", response_class=HTMLResponse)
def login(request: Request) -> Response:
    return login_form(request, None, target=request.query_params.get("next"))


router.add_api_route("/login", log_in, methods=["POST"], response_class=HTMLResponse)
router.add_api_route("/logout", log_out, methods=["GET"], response_class=HTMLResponse)
