"""The HTTP app: ``create_app(store_or_repo_path)``.

``featurestore serve`` runs ``app_from_env`` under uvicorn; with ``--workers N`` every
worker process builds its own app (and store) from ``FEATURESTORE_REPO``. The endpoints and
their bodies are in docs/http-api.md; error answers in ``serving.errors``.
"""

from __future__ import annotations

import gc
import logging
import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import RedirectResponse

from featurestore.config import ServingConfig
from featurestore.store import FeatureStore
from monitoring.metrics import mark_process_dead
from serving.auth import APIKeyAuth
from serving.errors import install_error_handlers
from serving.instrumentation import MetricsMiddleware
from serving.model_cache import ModelCache
from serving.routes import (features, health, inference, jobs, materialize, models, monitoring, predict, push,
                            registry, rollouts)
from serving.state import ServingState
from serving.ui import create_ui

__all__ = ["app_from_env", "create_app"]

log = logging.getLogger("featurestore.serving")


def create_app(
    store: FeatureStore | str | os.PathLike = ".",
    *,
    serving: ServingConfig | None = None,
    watch_interval: float = 1.0,
) -> FastAPI:
    """An app serving ``store`` (or the repo at that path, opened now and closed at shutdown).

    ``serving`` overrides the repo's ``serving:`` settings (API keys, limits);
    ``watch_interval`` is how often, in seconds, to look for a new apply (0: never).
    """
    owned = not isinstance(store, FeatureStore)
    if owned:
        store = FeatureStore(repo_path=Path(store))
    config = serving or store.config.serving
    state = ServingState(
        store,
        APIKeyAuth(config.api_keys, config.auth_reads, config.auth_metrics),
        max_entities=config.max_entities,
        max_features=config.max_features,
        body_timeout=config.body_timeout,
        max_body_bytes=config.max_body_bytes,
        watch_interval=watch_interval,
        models=ModelCache(store, size=config.model_cache_size, default_alias=config.default_alias,
                          timeout=config.model_timeout, timeouts=config.model_timeouts,
                          inline_budget=config.inline_call_budget_ms / 1000,
                          inline_budgets={k: v / 1000 for k, v in config.inline_call_budgets_ms.items()}),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await state.start()
        if owned:  # a server process (featurestore serve), not an app inside someone's program
            # What startup built (libraries, definitions) lives as long as the process: out
            # of the collector's sight, a full collection no longer walks it, which took tens
            # of milliseconds every few thousand requests (a pause, and ~35 µs a request).
            gc.freeze()
            # A model load imports its library and builds the model, as long-lived: frozen
            # too (lightgbm, scikit-learn and pandas made a full collection take ~70 ms).
            # Frozen with them, the few objects of requests in flight stay until the exit.
            state.models.on_load = gc.freeze
        log.info("serving project %r (registry revision %d, %s online store)", store.project, state.revision,
                 state.store_type)
        try:
            yield
        finally:
            await state.stop()
            if owned:
                store.close()
            mark_process_dead(os.getpid())

    app = FastAPI(
        title="featurestore",
        summary="Online features, push and materialization over HTTP (Feast-compatible).",
        version=_version(),
        lifespan=lifespan,
        # No redirect from "/jobs/" to "/jobs": Starlette builds its Location from the
        # request's Host header, before any key is checked. A wrong path is a 404.
        redirect_slashes=False,
    )
    app.state.serving = state
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware)
    docs = {id(route) for route in app.router.routes}  # FastAPI's own: /openapi.json, /docs, /redoc
    # /predict's route sits on the app's router itself, as one declared with ``@app.post``
    # does: on FastAPI 0.165 an included router is one entry, and matching a request
    # through it walks its routes twice, through several layers (10 route checks a request
    # instead of 1). Its route has no dependencies an app's override could replace. It comes
    # first: /get-online-features then costs one more regex, while /predict skips matching
    # through the included router in front of it.
    app.router.routes.extend(predict.router.routes)
    app.include_router(features.router)
    for module in (push, materialize, jobs, registry, models, monitoring, inference, rollouts, health):
        app.include_router(module.router)
    # The router tries routes in order, and FastAPI put its docs routes first: they go last,
    # so the hot paths (/get-online-features, /predict) match first. (Whether an included
    # router shows up as its routes or as one entry depends on the FastAPI version.)
    app.router.routes.sort(key=lambda route: id(route) in docs)
    # The web UI (docs/ui.md): its own small app, with HTML error pages and a browser login.
    app.mount("/ui", create_ui(state, config.grafana_url))
    app.add_api_route("/ui", _to_ui, include_in_schema=False)
    return app


async def _to_ui() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=308)  # relative: the Host header is never echoed


def app_from_env() -> FastAPI:
    """The uvicorn factory ``featurestore serve`` uses: the repo in ``FEATURESTORE_REPO``."""
    return create_app(
        os.environ.get("FEATURESTORE_REPO", "."),
        watch_interval=float(os.environ.get("FEATURESTORE_WATCH_INTERVAL", "1")),
    )


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("featurestore")
    except PackageNotFoundError:
        return "0"
