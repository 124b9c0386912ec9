"""The router tries its routes in order: the hot paths match on the first routes it tries,
before FastAPI's docs routes and the other resources."""

from __future__ import annotations

from starlette.routing import Match

from serving.app import create_app


def _routes_tried(app, method: str, path: str) -> int:
    """How many routes the app's router tries before (and including) the one that takes ``path``."""
    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}
    for tried, route in enumerate(app.router.routes, start=1):
        if route.matches(dict(scope))[0] == Match.FULL:
            return tried
    raise AssertionError(f"no route takes {method} {path}")


def test_online_features_and_predict_are_tried_first(store):
    app = create_app(store, watch_interval=0)
    assert _routes_tried(app, "POST", "/predict/fraud") == 1
    assert _routes_tried(app, "POST", "/predict/fraud@champion") == 1
    assert _routes_tried(app, "POST", "/get-online-features") == 2


def test_docs_routes_still_answer_after_the_hot_paths(store):
    app = create_app(store, watch_interval=0)
    routes = len(app.router.routes)
    for path in ("/openapi.json", "/docs", "/redoc"):
        assert 2 < _routes_tried(app, "GET", path) <= routes
